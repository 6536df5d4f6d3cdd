"""The training loop shared by every kind: drive a Learner, log, evaluate, checkpoint, stop well.

A `Learner` (agents.sac.SACLearner, agents.reinforce.ReinforceLearner, vae.trainer.VAELearner)
does the work in `advance()`; this loop decides when to log, evaluate and checkpoint, turns
SIGINT/SIGTERM into a checkpoint and exit 130, and stops on a non-finite value before it can
reach a checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from agents.checkpoint import first_non_finite, list_checkpoints, save_checkpoint
from agents.sac import GradientCheckError
from training.config import RunConfig
from training.runtime import ThreadGovernor, library_versions, resolve_threads
from training.sinks import MetricsFile, Progress, WandbSink

EXIT_COMPLETED, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class Learner(Protocol):
    """What the loop drives; see each implementation for its units of `step`."""

    step: int
    steps_per_advance: int

    def advance(self, log: bool) -> dict[str, float]: ...
    def evaluate(self) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def summary(self) -> dict[str, Any]: ...
    def write_figures(self, out_dir: Path) -> list[Path]: ...
    def close(self) -> None: ...


@runtime_checkable
class FilmedLearner(Protocol):
    """A Learner whose evaluations can be filmed (RL learners built with a video_dir)."""

    def pop_video(self) -> Path | None: ...


class NonFiniteError(RuntimeError):
    """A loss, metric or parameter became NaN or infinite."""


# ---------------------------------------------------------------- global RNGs


def seed_everything(seed: int) -> None:
    """Seed python, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        # numpy's uint32 key array becomes an int64 tensor: torch.load(weights_only) reads tensors
        "numpy": (kind, torch.from_numpy(np.asarray(keys).astype(np.int64)), pos, has_gauss,
                  cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- signals


class StopFlag:
    """SIGINT/SIGTERM ask the loop to stop after the current update; a second SIGINT aborts."""

    def __init__(self, message: str = "finishing the current update, then checkpointing (press "
                 "Ctrl-C again to abort without a checkpoint)",
                 on_stop: Callable[[], None] | None = None) -> None:
        self.signal: int | None = None
        self.message, self.on_stop = message, on_stop  # what the first signal says and does
        self._previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in self._previous:
            signal.signal(s, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        if self.on_stop is not None:
            self.on_stop()
        print(f"\n{signal.Signals(signum).name}: {self.message}", file=sys.stderr, flush=True)

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


# ---------------------------------------------------------------- the loop


def crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of `every` lies in (before, after]."""
    return every > 0 and after // every > before // every


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def check_finite(metrics: dict[str, float], step: int) -> None:
    for key, value in metrics.items():
        if not math.isfinite(value):
            raise NonFiniteError(f"non-finite {key} = {value} at step {step}")


@dataclass
class Resume:
    """What a checkpoint restores besides the learner."""

    rng: dict[str, Any]
    wandb_id: str | None
    wall_time_s: float
    last_eval: dict[str, float]
    # the steps of every resume so far, this one last (summary.json `resumed_from`)
    resumed_from: list[int]

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> Resume:
        run = state["run"]
        # absent before resumes were recorded
        earlier = [int(s) for s in run.get("resumed_from", [])]
        return cls(state["rng"], run["wandb_id"], float(run["wall_time_s"]), dict(run["last_eval"]),
                   [*earlier, int(state["step"])])


def train(config: RunConfig, config_data: dict[str, Any], learner: Learner, run_dir: Path,
          run_name: str, resume: Resume | None, stop: StopFlag) -> int:
    """Run `learner` to `config.total_steps`; return the process exit code.

    Writes metrics.jsonl, checkpoints/, summary.json and (unless disabled) the W&B run into
    `run_dir`. The caller has seeded the global RNGs and built the learner; with `resume`,
    the learner already holds its checkpointed state and the RNGs are restored here.
    """
    ckpt_dir = run_dir / "checkpoints"
    start_step = learner.step
    last_eval: dict[str, float] = {}
    wall_before = 0.0
    resumed_from: list[int] = []
    if resume is not None:
        set_rng_state(resume.rng)
        last_eval, wall_before, resumed_from = (resume.last_eval, resume.wall_time_s,
                                                resume.resumed_from)
    metrics_file = MetricsFile(run_dir / "metrics.jsonl",
                               resume_step=start_step if resume else None)
    wandb = WandbSink(mode=config.wandb.mode, run_dir=run_dir, config=config_data, name=run_name,
                      project=config.wandb.project, entity=config.wandb.entity,
                      group=config.wandb.group, tags=config.wandb.tags,
                      run_id=resume.wandb_id if resume else None)
    progress = Progress(config.total_steps, start_step, run_name)
    # fewer torch threads while other processes use this run's CPUs (training/runtime.py)
    governor = ThreadGovernor(resolve_threads(config.threads), adapt=config.adapt_threads)
    started = time.perf_counter()
    rate_clock, rate_step = started, start_step

    def elapsed() -> float:
        return wall_before + time.perf_counter() - started

    def checkpoint() -> Path:
        state = {"step": learner.step, "learner": learner.state_dict(), "rng": rng_state(),
                 "run": {"wandb_id": wandb.run_id, "wall_time_s": elapsed(), "last_eval": last_eval,
                         "resumed_from": resumed_from}}
        bad = first_non_finite(state["learner"])
        if bad is not None:
            raise NonFiniteError(f"non-finite value in {bad} at step {learner.step}")
        return save_checkpoint(state, ckpt_dir, learner.step, keep=config.checkpoint.keep)

    def log(metrics: dict[str, float]) -> None:
        if not metrics:
            return
        check_finite(metrics, learner.step)
        metrics_file.write(learner.step, metrics)
        wandb.log(learner.step, metrics)

    def evaluate() -> None:
        nonlocal last_eval
        metrics = learner.evaluate()
        # checked first: a non-finite evaluation never reaches summary.json or a checkpoint
        log(metrics)
        last_eval = metrics
        if isinstance(learner, FilmedLearner) and (video := learner.pop_video()) is not None:
            wandb.log_video(learner.step, "eval/video", video)
        progress.update(0, last_eval)

    def finish(status: str, code: int, note: str | None = None) -> int:
        progress.close()
        wall = elapsed()
        summary = {"kind": config.kind, "seed": config.seed, "status": status,
                   "total_steps": learner.step, "wall_time_s": round(wall, 3),
                   "steps_per_s": round(learner.step / wall, 3) if wall > 0 else 0.0,
                   "resumed_from": resumed_from, "impl": "ours", "versions": library_versions(),
                   **learner.summary()}
        if "eval/return_mean" in last_eval:
            summary |= {"eval_return_mean": last_eval["eval/return_mean"],
                        "eval_return_std": last_eval["eval/return_std"],
                        "eval_episodes": int(last_eval["eval/episodes"])}
        if note:
            summary["message"] = note
        write_json_atomic(run_dir / "summary.json", summary)
        metrics_file.close()
        wandb.finish(exit_code=code)
        learner.close()
        return code

    try:
        while learner.step < config.total_steps and stop.signal is None:
            before = learner.step
            after = before + learner.steps_per_advance
            logging = crossed(before, after, config.log.every) or after >= config.total_steps
            metrics = learner.advance(logging)
            governor.poll()
            now = learner.step
            if logging:
                clock = time.perf_counter()
                steps_per_s = (now - rate_step) / max(clock - rate_clock, 1e-9)
                rate_clock, rate_step = clock, now
                log(metrics)
                wandb.log(now, {"time/steps_per_s": steps_per_s, "time/threads": governor.threads})
            progress.update(now - before, metrics if logging else None)
            if now < config.total_steps:
                if crossed(before, now, config.eval.every):
                    evaluate()
                if crossed(before, now, config.checkpoint.every):
                    checkpoint()
        if stop.signal is not None and learner.step < config.total_steps:
            path = checkpoint()
            progress.close()  # first, so the message starts a line of its own
            print(f"interrupted at step {learner.step}; "
                  f"checkpoint {path.relative_to(run_dir)} written. "
                  f"Resume with: python train.py --resume {run_dir}", file=sys.stderr)
            return finish("interrupted", EXIT_INTERRUPTED)
        evaluate()
        checkpoint()
        wandb.log_images(learner.step, learner.write_figures(run_dir))
        return finish("completed", EXIT_COMPLETED)
    except (NonFiniteError, GradientCheckError) as e:
        kept = list_checkpoints(ckpt_dir)
        where = (f"the last good checkpoint {kept[0].relative_to(run_dir)} is kept" if kept
                 else "no checkpoint had been written yet")
        message = f"training stopped: {e}; {where}"
        progress.close()
        print(f"error: {message}", file=sys.stderr)
        return finish("failed", EXIT_FAILED, message)
    except KeyboardInterrupt:
        progress.close()
        print("aborted without a checkpoint", file=sys.stderr)
        return finish("interrupted", EXIT_INTERRUPTED,
                      "aborted by a second Ctrl-C; no checkpoint written")
    except Exception as e:
        finish("failed", EXIT_FAILED, f"{type(e).__name__}: {e}")
        raise
