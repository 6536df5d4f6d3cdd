"""Where metrics go: metrics.jsonl, Weights & Biases, and the progress bar.

Only train.py writes to sinks. W&B is never allowed to stop training: any failure in it is
reported once on stderr and the run continues with local files only.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class MetricsFile:
    """`metrics.jsonl`: one JSON object per logging step, `global_step` first.

    Only deterministic quantities go here, so one seed gives the same file twice; wall-clock
    figures (steps/s) go to W&B, the progress bar and summary.json.
    """

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        if resume_step is not None and path.exists():
            # Drop lines written after the checkpoint we resume from: they will be written again.
            kept = [
                line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line)["global_step"] <= resume_step
            ]
            path.write_text("".join(line + "\n" for line in kept))
        self._file = open(path, "a")  # noqa: SIM115 (held open for the run)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        row = {"global_step": step,
               **{k: (v if math.isfinite(v) else str(v)) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class WandbSink:
    """A W&B run with `global_step` as the x-axis; degrades to a no-op when W&B fails."""

    def __init__(self, *, mode: Literal["offline", "online", "disabled"], run_dir: Path,
                 config: dict[str, Any], name: str, project: str | None, entity: str | None,
                 group: str | None, tags: list[str], run_id: str | None) -> None:
        self.run: Any = None
        self.run_id = run_id
        if mode == "disabled":
            return
        # wandb.init advertises W&B Weave whenever a module named like an LLM library is
        # imported, and it takes our `agents` package for the OpenAI Agents SDK. Its documented
        # switch WANDB_DISABLE_WEAVE turns off that integration (and its banner) only; W&B's own
        # messages, warnings and errors still print. A value the user set is kept.
        os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
        try:
            import wandb

            self.run = wandb.init(
                mode=mode, dir=str(run_dir), config=config, name=name,
                project=project or "reparam-rl", entity=entity, group=group, tags=tags,
                id=run_id, resume="allow" if run_id else None,
            )
            self.run.define_metric("global_step")
            self.run.define_metric("*", step_metric="global_step")
            self.run_id = self.run.id
        except Exception as e:  # W&B must never stop training
            self._fail(e)

    def _fail(self, error: Exception) -> None:
        _say(f"warning: W&B failed ({type(error).__name__}: "
             f"{str(error).splitlines()[0] if str(error) else ''}); "
             "continuing with metrics.jsonl only")
        self.run = None

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.log({**metrics, "global_step": step})
        except Exception as e:
            self._fail(e)

    def log_images(self, step: int, paths: list[Path]) -> None:
        if self.run is None or not paths:
            return
        try:
            import wandb

            self.run.log(
                {f"media/{p.stem}": wandb.Image(str(p)) for p in paths} | {"global_step": step}
            )
        except Exception as e:
            self._fail(e)

    def log_video(self, step: int, key: str, path: Path) -> None:
        """An MP4 file as a `wandb.Video` at `step` (copied into the run's media files)."""
        if self.run is None:
            return
        try:
            import wandb

            self.run.log({key: wandb.Video(str(path), format="mp4"), "global_step": step})
        except Exception as e:
            self._fail(e)

    def finish(self, exit_code: int) -> None:
        if self.run is None:
            return
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as e:
            self._fail(e)


class Progress:
    """A tqdm bar over steps showing the latest return (or ELBO) and steps/s."""

    SHOWN = ("train/episode_return", "eval/return_mean", "train/elbo", "val/elbo")

    def __init__(self, total: int, start: int, description: str) -> None:
        self.bar = tqdm(total=total, initial=start, desc=description, unit="step",
                        dynamic_ncols=True, mininterval=1.0, file=sys.stderr)
        self.shown: dict[str, str] = {}

    def update(self, steps: int, metrics: dict[str, float] | None = None) -> None:
        if metrics:
            for key in self.SHOWN:
                if key in metrics:
                    self.shown[key.split("/")[-1]] = f"{metrics[key]:.1f}"
            self.bar.set_postfix(self.shown, refresh=False)
        self.bar.update(steps)

    def close(self) -> None:
        self.bar.close()
