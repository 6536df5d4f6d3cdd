"""The training loop (training/loop.py) driving a counting learner whose every number is known:
when it logs, evaluates and checkpoints, what summary.json and a checkpoint hold, how it stops
on a non-finite value, a signal, a second Ctrl-C or an error, and an exact resume.

The learner's step is a counter and its one parameter counts its advances, so each expected
file below is written out by hand. Runs take milliseconds; train.main's own tests
(tests/test_train.py, tests/test_resume.py, tests/training/test_guards.py) drive real learners.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.checkpoint import list_checkpoints, load_latest
from agents.sac import GradientCheckError
from envs.video import VideoWriter
from tests.training.test_guards import finished_wandb_records, history, item_name
from training import loop
from training.config import RunConfig, load_config, to_dict
from training.loop import (
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    NonFiniteError,
    Resume,
    StopFlag,
    check_finite,
    crossed,
    rng_state,
    seed_everything,
    set_rng_state,
    train,
    write_json_atomic,
)

Script = dict[int, Callable[["CountingLearner"], dict[str, float] | None]]


class CountingLearner:
    """`step` advances by `steps_per_advance`; `weight` counts advances. A logged advance returns
    `train/loss` = step plus one draw of each global RNG (python, numpy, torch), so a resumed
    run's metrics show whether the RNGs were restored. `script[step]` runs after the advance
    that reaches `step` and may replace the metrics, raise, or send a signal."""

    def __init__(self, steps_per_advance: int = 1, script: Script | None = None,
                 eval_script: Script | None = None, advance_s: float = 0.0) -> None:
        self.step, self.steps_per_advance = 0, steps_per_advance
        self.script, self.eval_script = script or {}, eval_script or {}
        self.weight = torch.zeros(2)
        self.advances: list[tuple[int, bool]] = []  # (step reached, log)
        self.evaluations: list[int] = []
        self.closed = 0
        self.advance_s = advance_s  # each advance sleeps this long
        self.spans: list[tuple[float, float]] = []  # each advance's perf_counter start and end

    def advance(self, log: bool) -> dict[str, float]:
        began = time.perf_counter()
        time.sleep(self.advance_s)
        self.step += self.steps_per_advance
        self.weight += 1.0
        self.advances.append((self.step, log))
        draws = {"rng/python": random.random(), "rng/numpy": float(np.random.rand()),
                 "rng/torch": float(torch.rand(()))}
        metrics = ({"train/loss": float(self.step), "train/episode_return": -float(self.step),
                    **draws} if log else {})
        if self.step in self.script:
            metrics = self.script[self.step](self) or metrics
        self.spans.append((began, time.perf_counter()))
        return metrics

    def evaluate(self) -> dict[str, float]:
        self.evaluations.append(self.step)
        metrics = {"eval/return_mean": 10.0 * self.step, "eval/return_std": 1.5,
                   "eval/episodes": 3.0}
        if self.step in self.eval_script:
            metrics = self.eval_script[self.step](self) or metrics
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"weight": self.weight.clone(), "counter": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weight, self.step = state["weight"].clone(), int(state["counter"])

    def summary(self) -> dict[str, Any]:
        return {"advances": len(self.advances)}

    def write_figures(self, out_dir: Path) -> list[Path]:
        return []

    def close(self) -> None:
        self.closed += 1


def config_of(*overrides: str) -> RunConfig:
    """A SAC run config (the loop reads only the sections every kind has)."""
    return load_config(None, ["threads=1", "wandb.mode=disabled", "checkpoint.keep=10",
                              "agent.learning_starts=1", *overrides], base={"kind": "sac"})


def run(run_dir: Path, learner: CountingLearner, *overrides: str,
        resume: Resume | None = None) -> int:
    config = config_of(*overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    stop = StopFlag()
    try:
        return train(config, to_dict(config), learner, run_dir, "counting", resume, stop)
    finally:
        stop.restore()


def rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def steps_of(run_dir: Path, key: str) -> list[int]:
    return [row["global_step"] for row in rows(run_dir) if key in row]


def checkpoint_steps(run_dir: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in list_checkpoints(run_dir / "checkpoints"))


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def send(signum: int, times: int = 1) -> Callable[[CountingLearner], None]:
    def deliver(learner: CountingLearner) -> None:
        for _ in range(times):
            os.kill(os.getpid(), signum)  # handled before os.kill returns to this frame
    return deliver


def set_weight(value: float) -> Callable[[CountingLearner], None]:
    def poison(learner: CountingLearner) -> None:
        learner.weight[1] = value
    return poison


def metrics_of(metrics: dict[str, float]) -> Callable[[CountingLearner], dict[str, float]]:
    return lambda learner: metrics


def raise_(error: Exception) -> Callable[[CountingLearner], None]:
    def fail(learner: CountingLearner) -> None:
        raise error
    return fail


# ---------------------------------------------------------------- the schedule


@pytest.mark.parametrize(("before", "after", "every", "expected"), [
    (0, 3, 3, True), (2, 3, 3, True), (3, 5, 3, False), (5, 6, 3, True), (3, 4, 3, False),
    (0, 10, 4, True), (4, 4, 4, False), (0, 10, 0, False), (0, 1, 1, True)])
def test_crossed_means_a_multiple_of_every_in_the_half_open_interval(
        before: int, after: int, every: int, expected: bool) -> None:
    assert crossed(before, after, every) is expected


def test_one_step_advances_log_evaluate_and_checkpoint_at_the_multiples_and_once_at_the_end(
        tmp_path: Path) -> None:
    learner = CountingLearner()
    assert run(tmp_path, learner, "total_steps=10", "log.every=3", "eval.every=4",
               "checkpoint.every=5") == EXIT_COMPLETED
    assert learner.advances == [(s, s in (3, 6, 9, 10)) for s in range(1, 11)]
    assert steps_of(tmp_path, "train/loss") == [3, 6, 9, 10]  # the last step is always logged
    assert learner.evaluations == [4, 8, 10]  # 10 once: the final evaluation, not the schedule's
    assert steps_of(tmp_path, "eval/return_mean") == [4, 8, 10]
    assert checkpoint_steps(tmp_path) == [5, 10]
    assert [row["global_step"] for row in rows(tmp_path)] == [3, 4, 6, 8, 9, 10, 10]
    assert learner.closed == 1


def test_multi_step_advances_act_on_every_multiple_they_pass_and_may_overshoot(
        tmp_path: Path) -> None:
    """3 steps an advance to total 10: steps 3, 6, 9, 12. Logging every 4 passes 4 in (3, 6],
    8 in (6, 9] and ends at 12; evaluating every 5 passes 5 in (3, 6] only (10 is in (9, 12],
    the last advance, which the final evaluation covers); checkpoints every 6 at 6, then 12."""
    learner = CountingLearner(steps_per_advance=3)
    assert run(tmp_path, learner, "total_steps=10", "log.every=4", "eval.every=5",
               "checkpoint.every=6") == EXIT_COMPLETED
    assert learner.advances == [(3, False), (6, True), (9, True), (12, True)]
    assert learner.evaluations == [6, 12]
    assert checkpoint_steps(tmp_path) == [6, 12]
    assert summary(tmp_path)["total_steps"] == 12


def test_every_zero_evaluates_and_checkpoints_only_at_the_end(tmp_path: Path) -> None:
    learner = CountingLearner()
    assert run(tmp_path, learner, "total_steps=6", "log.every=2", "eval.every=0",
               "checkpoint.every=0") == EXIT_COMPLETED
    assert learner.evaluations == [6]
    assert checkpoint_steps(tmp_path) == [6]


def test_checkpoints_beyond_keep_are_pruned_oldest_first(tmp_path: Path) -> None:
    assert run(tmp_path, CountingLearner(), "total_steps=10", "eval.every=0",
               "checkpoint.every=2", "checkpoint.keep=3") == EXIT_COMPLETED
    assert checkpoint_steps(tmp_path) == [6, 8, 10]


def test_summary_and_the_final_checkpoint_hold_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learner = CountingLearner()
    started = time.perf_counter()
    assert run(tmp_path, learner, "total_steps=8", "log.every=4", "eval.every=4",
               "checkpoint.every=0", "seed=7") == EXIT_COMPLETED
    took = time.perf_counter() - started
    # the progress bar: named after the run, 8 of 8 steps, the last logged and evaluated returns
    bar = capsys.readouterr().err.split("\r")[-1]
    assert bar.startswith("counting: 100%") and "8/8 [" in bar
    assert "episode_return=-8.0" in bar and "return_mean=80.0" in bar
    done = summary(tmp_path)
    assert {k: done[k] for k in ("kind", "seed", "status", "total_steps", "resumed_from",
                                 "impl", "advances")} == {
        "kind": "sac", "seed": 7, "status": "completed", "total_steps": 8, "resumed_from": [],
        "impl": "ours", "advances": 8}
    assert (done["eval_return_mean"], done["eval_return_std"], done["eval_episodes"]) == (
        80.0, 1.5, 3)
    assert "message" not in done and "torch" in done["versions"]
    wall = done["wall_time_s"]  # both rounded to 3 decimals
    assert 0 < wall <= took + 5e-4 and wall == round(wall, 3)
    assert 8 / (wall + 5e-4) - 5e-4 <= done["steps_per_s"] <= 8 / (wall - 5e-4) + 5e-4
    state, path = load_latest(tmp_path / "checkpoints")
    assert path.name == "step_000000000008.pt" and state["step"] == 8
    assert torch.equal(state["learner"]["weight"], torch.full((2,), 8.0))
    assert state["run"]["last_eval"] == {"eval/return_mean": 80.0, "eval/return_std": 1.5,
                                         "eval/episodes": 3.0}
    assert state["run"]["wandb_id"] is None  # W&B disabled
    assert 0 < state["run"]["wall_time_s"] <= done["wall_time_s"]
    assert not list(tmp_path.glob("*.tmp"))


class MediaLearner(CountingLearner):
    """Films each evaluation (a 4-frame MP4) and draws one PNG at the end, as the RL learners
    built with a video_dir do."""

    def __init__(self, out_dir: Path, script: Script | None = None) -> None:
        super().__init__(script=script, advance_s=0.01)
        self.out_dir, self.video = out_dir, None

    def evaluate(self) -> dict[str, float]:
        self.video = VideoWriter(self.out_dir / "videos" / f"step_{self.step}.mp4", fps=4)
        for shade in range(4):
            self.video.append(np.full((8, 8, 3), 60 * shade, dtype=np.uint8))
        self.video.close()
        return super().evaluate()

    def pop_video(self) -> Path | None:
        video, self.video = self.video, None
        return None if video is None else video.path

    def write_figures(self, out_dir: Path) -> list[Path]:
        import matplotlib.pyplot as plt

        path = out_dir / "returns.png"
        plt.imsave(path, np.zeros((4, 4)))
        return [path]


def test_an_offline_wandb_run_and_its_resume_hold_one_run_with_rows_rate_threads_and_media(
        tmp_path: Path) -> None:
    """Interrupted at step 4 and resumed to 6: two offline W&B files of one run id (the id is in
    the checkpoint), the run's name, project, group, tags and config, every metrics.jsonl row on
    the global_step axis, steps/s and threads at each logging step, each evaluation's video
    under eval/video and the final figure under media/."""
    settings = ("total_steps=6", "log.every=2", "eval.every=3", "checkpoint.every=0",
                "wandb.mode=offline", "wandb.project=loop-spec", "wandb.group=g1",
                "wandb.tags=[t1, t2]", "wandb.entity=lab")
    first = MediaLearner(tmp_path, script={4: send(signal.SIGTERM)})
    calls = [time.perf_counter()]
    assert run(tmp_path, first, *settings) == EXIT_INTERRUPTED
    calls.append(time.perf_counter())
    state, _ = load_latest(tmp_path / "checkpoints")
    second = MediaLearner(tmp_path)
    second.load_state_dict(state["learner"])
    calls.append(time.perf_counter())
    assert run(tmp_path, second, *settings, resume=Resume.from_checkpoint(state)) == (
        EXIT_COMPLETED)
    calls.append(time.perf_counter())

    files = sorted(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2
    parts = [finished_wandb_records(path.parent, pattern=path.name) for path in files]
    parts.sort(key=lambda records: history(records)[0]["global_step"])
    runs = [r.run for records in parts for r in records if r.WhichOneof("record_type") == "run"]
    assert {r.run_id for r in runs} == {state["run"]["wandb_id"]}
    assert all((r.entity, r.project, r.display_name, r.run_group, list(r.tags)) ==
               ("lab", "loop-spec", "counting", "g1", ["t1", "t2"]) for r in runs)
    config = {item_name(i): json.loads(i.value_json) for i in runs[0].config.update}
    assert (config["total_steps"], config["eval"]["every"]) == (6, 3)
    assert [r.exit.exit_code for records in parts for r in records
            if r.WhichOneof("record_type") == "exit"] == [EXIT_INTERRUPTED, EXIT_COMPLETED]

    rows_logged = [row for records in parts for row in history(records)]
    timing = [row for row in rows_logged if "time/steps_per_s" in row]
    assert [row["global_step"] for row in timing] == [2, 4, 6]
    assert all(row["time/threads"] == 1 for row in timing)
    # steps/s over each logging interval, which holds the advances since the last log (their
    # spans, each 10 ms asleep: the lower bound on its length) and lies between the end of the
    # last logged advance (or the call's start) and the start of the next advance (or the
    # call's end): the upper bound
    rates = [row["time/steps_per_s"] for row in timing]
    (a1, a2, a3, a4), (a5, a6) = first.spans, second.spans
    bounds = [(a2[1] - a1[0], a3[0] - calls[0]), (a4[1] - a3[0], calls[1] - a2[1]),
              (a6[1] - a5[0], calls[3] - calls[2])]
    for rate, (shortest, longest) in zip(rates, bounds, strict=True):
        assert 2 / longest <= rate <= 2 / shortest
    skip = ("_", "time/", "media/", "eval/video")
    metrics = [{k: v for k, v in row.items() if not k.startswith(skip)} for row in rows_logged]
    assert [row for row in metrics if len(row) > 1] == rows(tmp_path)
    # media are logged as their file's fields (eval/video/path, .../_type, ...)
    videos = [row for row in rows_logged if "eval/video/_type" in row]
    assert [(row["global_step"], row["eval/video/_type"]) for row in videos] == [
        (3, "video-file"), (6, "video-file")]
    (figure,) = [row for row in rows_logged if "media/returns/_type" in row]
    assert (figure["global_step"], figure["media/returns/_type"]) == (6, "image-file")


# ---------------------------------------------------------------- stopping on a non-finite value


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_finite_names_the_metric_its_value_and_the_step(bad: float) -> None:
    check_finite({"a": 1.0, "b": -2.0}, 3)
    with pytest.raises(NonFiniteError, match=rf"^non-finite b = {bad} at step 5$"):
        check_finite({"a": 1.0, "b": bad}, 5)


def test_a_non_finite_logged_metric_fails_the_run_and_keeps_the_last_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learner = CountingLearner(script={7: metrics_of({"train/loss": math.nan})})
    assert run(tmp_path, learner, "total_steps=10", "log.every=1", "eval.every=0",
               "checkpoint.every=5") == EXIT_FAILED
    reason = ("training stopped: non-finite train/loss = nan at step 7; the last good "
              "checkpoint checkpoints/step_000000000005.pt is kept")
    assert f"error: {reason}" in capsys.readouterr().err
    assert steps_of(tmp_path, "train/loss") == [1, 2, 3, 4, 5, 6]
    assert checkpoint_steps(tmp_path) == [5]
    done = summary(tmp_path)
    assert (done["status"], done["message"], done["total_steps"]) == ("failed", reason, 7)
    assert learner.closed == 1


def test_a_non_finite_metric_in_an_unlogged_advance_is_not_looked_at(tmp_path: Path) -> None:
    """Only logged metrics are checked (the learner computes the others lazily or not at all);
    the parameters are checked at every checkpoint."""
    learner = CountingLearner(script={3: metrics_of({"train/loss": math.nan})})
    assert run(tmp_path, learner, "total_steps=4", "log.every=4", "eval.every=0") == (
        EXIT_COMPLETED)


def test_a_non_finite_evaluation_fails_the_run_and_stays_out_of_summary_and_checkpoints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learner = CountingLearner(eval_script={4: metrics_of({"eval/return_mean": math.inf})})
    assert run(tmp_path, learner, "total_steps=10", "log.every=1", "eval.every=2",
               "checkpoint.every=3") == EXIT_FAILED
    assert "non-finite eval/return_mean = inf at step 4; the last good checkpoint " \
        "checkpoints/step_000000000003.pt is kept" in capsys.readouterr().err
    done = summary(tmp_path)
    assert done["eval_return_mean"] == 20.0  # the step-2 evaluation, the last finite one
    assert steps_of(tmp_path, "eval/return_mean") == [2]
    assert checkpoint_steps(tmp_path) == [3]
    assert learner.advances[-1] == (4, True)


def test_a_non_finite_parameter_is_refused_at_the_next_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learner = CountingLearner(script={3: set_weight(math.nan)})
    assert run(tmp_path, learner, "total_steps=10", "log.every=10", "eval.every=0",
               "checkpoint.every=5") == EXIT_FAILED
    reason = ("non-finite value in weight at step 5; no checkpoint had been written yet")
    assert reason in capsys.readouterr().err
    assert checkpoint_steps(tmp_path) == []
    assert summary(tmp_path)["status"] == "failed"


def test_a_failed_gradient_check_fails_the_run_with_its_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learner = CountingLearner(script={2: raise_(GradientCheckError("critic gradients differ"))})
    assert run(tmp_path, learner, "total_steps=5", "checkpoint.every=1",
               "eval.every=0") == EXIT_FAILED
    assert ("training stopped: critic gradients differ; the last good checkpoint "
            "checkpoints/step_000000000001.pt is kept") in capsys.readouterr().err


def test_an_unexpected_error_is_raised_after_summary_json_and_wandb_record_it(
        tmp_path: Path) -> None:
    learner = CountingLearner(script={2: raise_(ValueError("boom"))})
    with pytest.raises(ValueError, match="boom"):
        run(tmp_path, learner, "total_steps=5", "eval.every=0", "wandb.mode=offline")
    done = summary(tmp_path)
    assert (done["status"], done["message"], done["total_steps"]) == (
        "failed", "ValueError: boom", 2)
    assert learner.closed == 1
    (exit_record,) = [r.exit for r in finished_wandb_records(tmp_path)
                      if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == EXIT_FAILED


@pytest.mark.parametrize("adapt", [True, False])
def test_the_thread_governor_gets_the_configured_threads_and_adapt_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adapt: bool) -> None:
    built: list[tuple[int, bool]] = []

    class Recorded(loop.ThreadGovernor):
        def __init__(self, max_threads: int, adapt: bool = True) -> None:
            built.append((max_threads, adapt))
            super().__init__(max_threads, adapt=False)  # the test process keeps its threads

    monkeypatch.setattr(loop, "ThreadGovernor", Recorded)
    assert run(tmp_path, CountingLearner(), "total_steps=2", "threads=3",
               f"adapt_threads={str(adapt).lower()}") == EXIT_COMPLETED
    assert built == [(3, adapt)]


# ---------------------------------------------------------------- signals


def test_a_signal_stops_after_the_update_with_a_checkpoint_and_exit_130(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learner = CountingLearner(script={4: send(signal.SIGTERM)})
    assert run(tmp_path, learner, "total_steps=10", "log.every=1", "eval.every=3",
               "checkpoint.every=0") == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert ("SIGTERM: finishing the current update, then checkpointing (press Ctrl-C again to "
            "abort without a checkpoint)") in err
    assert (f"interrupted at step 4; checkpoint checkpoints/step_000000000004.pt written. "
            f"Resume with: python train.py --resume {tmp_path}") in err
    assert learner.advances[-1] == (4, True) and learner.evaluations == [3]  # no final one
    assert checkpoint_steps(tmp_path) == [4]
    done = summary(tmp_path)
    assert (done["status"], done["total_steps"], done["eval_return_mean"]) == (
        "interrupted", 4, 30.0)


def test_a_signal_during_the_last_update_completes_the_run(tmp_path: Path) -> None:
    learner = CountingLearner(script={5: send(signal.SIGINT)})
    assert run(tmp_path, learner, "total_steps=5", "eval.every=0") == EXIT_COMPLETED
    assert summary(tmp_path)["status"] == "completed" and learner.evaluations == [5]


def test_a_second_ctrl_c_aborts_without_a_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learner = CountingLearner(script={4: send(signal.SIGINT, times=2)})
    assert run(tmp_path, learner, "total_steps=10", "eval.every=0",
               "checkpoint.every=3") == EXIT_INTERRUPTED
    assert "aborted without a checkpoint" in capsys.readouterr().err.splitlines()
    assert checkpoint_steps(tmp_path) == [3]
    done = summary(tmp_path)
    assert (done["status"], done["message"]) == (
        "interrupted", "aborted by a second Ctrl-C; no checkpoint written")
    assert learner.closed == 1


def test_stop_flag_sigterm_twice_only_asks_and_sigint_after_it_aborts() -> None:
    stops: list[int] = []
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    flag = StopFlag(message="stopping", on_stop=lambda: stops.append(1))
    try:
        assert flag.signal is None
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert (flag.signal, len(stops)) == (signal.SIGTERM, 2)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert len(stops) == 2  # the abort does not ask again
    finally:
        flag.restore()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# ---------------------------------------------------------------- resume


def test_seed_everything_seeds_python_numpy_and_torch() -> None:
    seed_everything(5)
    drawn = (random.random(), np.random.rand(), torch.rand(()))
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    assert drawn == (random.random(), np.random.rand(), torch.rand(()))


def test_rng_state_restores_python_numpy_and_torch_draws_exactly() -> None:
    np.random.randn()  # leaves numpy's cached second Gaussian in the state
    state = rng_state()
    first = (random.random(), np.random.randn(), np.random.randn(), torch.randn(3))
    set_rng_state(state)
    again = (random.random(), np.random.randn(), np.random.randn(), torch.randn(3))
    assert first[:3] == again[:3] and torch.equal(first[3], again[3])


def test_resume_from_checkpoint_appends_its_step_to_the_earlier_resumes() -> None:
    run_state = {"wandb_id": "abc", "wall_time_s": 12, "last_eval": {"eval/return_mean": 1.0}}
    first = Resume.from_checkpoint({"step": 40, "rng": {}, "run": run_state})
    assert (first.resumed_from, first.wandb_id, first.wall_time_s, first.last_eval) == (
        [40], "abc", 12.0, {"eval/return_mean": 1.0})
    later = Resume.from_checkpoint(
        {"step": 90, "rng": {}, "run": {**run_state, "resumed_from": [40]}})
    assert later.resumed_from == [40, 90]


def test_a_resumed_run_writes_the_metrics_of_an_uninterrupted_one(tmp_path: Path) -> None:
    """Run A goes straight to 12. Run B fails at step 7 after a checkpoint at 4 (rows 5-6 are in
    metrics.jsonl); resumed from step 4 it drops those rows, restores the RNGs and writes the
    same file as A, draw for draw."""
    settings = ("total_steps=12", "log.every=1", "eval.every=3", "checkpoint.every=4")
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    assert run(tmp_path / "a", CountingLearner(), *settings) == EXIT_COMPLETED

    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    with pytest.raises(ValueError):
        run(tmp_path / "b", CountingLearner(script={7: raise_(ValueError("crash"))}), *settings)
    assert steps_of(tmp_path / "b", "train/loss")[-1] == 6  # the crash came before 7's row
    interrupted = summary(tmp_path / "b")["wall_time_s"]
    state, _ = load_latest(tmp_path / "b" / "checkpoints")
    assert state["step"] == 4
    torch.manual_seed(99), np.random.seed(99), random.seed(99)  # what the restore must undo
    learner = CountingLearner()
    learner.load_state_dict(state["learner"])
    started = time.perf_counter()
    assert run(tmp_path / "b", learner, *settings,
               resume=Resume.from_checkpoint(state)) == EXIT_COMPLETED
    took = time.perf_counter() - started

    assert rows(tmp_path / "b") == rows(tmp_path / "a")
    assert learner.advances[0] == (5, True) and learner.evaluations == [6, 9, 12]
    assert torch.equal(learner.weight, torch.full((2,), 12.0))
    done = summary(tmp_path / "b")
    assert done["resumed_from"] == [4] and done["status"] == "completed"
    # wall time goes on from the checkpoint's: earlier runs' time plus this one's
    assert (state["run"]["wall_time_s"] - 5e-4 <= done["wall_time_s"]
            <= state["run"]["wall_time_s"] + took + 5e-4)
    assert state["run"]["wall_time_s"] <= interrupted
    final, _ = load_latest(tmp_path / "b" / "checkpoints")
    assert final["run"]["resumed_from"] == [4]
    assert final["run"]["wall_time_s"] == pytest.approx(done["wall_time_s"], abs=0.05)


def test_write_json_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("old")
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
