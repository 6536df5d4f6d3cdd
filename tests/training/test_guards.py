"""The non-finite guard on every path (a parameter before a checkpoint, an evaluation, REINFORCE
and VAE runs) and W&B: failing in `log` or `finish` mid-run, and what an offline run holds,
read back from its .wandb file, and the threads it logs under load. Runs go through train.main
in this process.

A failed run exits 1, writes summary.json as strict JSON (no NaN literals) with status failed
and the reason, keeps its last good checkpoint, and never writes a non-finite one.
"""

import contextlib
import json
import math
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import train
from agents.checkpoint import list_checkpoints, load_latest
from tests.training.conftest import busy_processes

REPO = Path(__file__).resolve().parents[2]
TINY_SAC = ["agent.hidden_sizes=[32, 32]", "agent.batch_size=32", "agent.learning_starts=100",
            "agent.compile=false", "eval.episodes=1", "eval.every=300", "log.every=100",
            "checkpoint.every=200", "wandb.mode=disabled"]
# 4 sub-envs x 25 steps: one update, and one log row, per 100 env steps.
TINY_REINFORCE = ["env.num_envs=4",
                  "agent.rollout_steps=25", "agent.hidden_sizes=[16]", "eval.episodes=1",
                  "eval.every=0", "log.every=100", "checkpoint.every=500", "wandb.mode=disabled"]
TINY_VAE = ["model.hidden_sizes=[8]",
            "log.every=3", "eval.every=0", "checkpoint.every=4", "wandb.mode=disabled"]


def strict_json(path: Path) -> dict[str, Any]:
    """json.loads that refuses NaN / Infinity, which are not JSON."""
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path.name} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def assert_failed(out: Path, err: str, reason: str, kept_step: int) -> None:
    assert f"error: training stopped: {reason}" in err, err
    assert f"the last good checkpoint checkpoints/step_{kept_step:012d}.pt is kept" in err
    summary = strict_json(out / "summary.json")
    assert summary["status"] == "failed" and reason in summary["message"]
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == [f"step_{kept_step:012d}.pt"]
    assert load_latest(out / "checkpoints")[0]["step"] == kept_step
    for line in (out / "metrics.jsonl").read_text().splitlines():  # what was logged is finite
        assert all(not isinstance(v, str) for v in json.loads(line).values()), line


def test_a_non_finite_parameter_is_caught_before_it_reaches_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """A NaN put in a target critic weight at step 300 shows in no logged metric before the next
    log (step 1000): only the parameter check at the step-400 checkpoint can stop it."""
    from agents.sac import SACLearner

    real_advance = SACLearner.advance

    def advance(self: SACLearner, log: bool) -> dict[str, float]:
        metrics = real_advance(self, log)
        if self.step == 300:
            with torch.no_grad():
                next(self.agent.target_critic.parameters()).view(-1)[0] = float("nan")
        return metrics

    monkeypatch.setattr(SACLearner, "advance", advance)
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=1000", *TINY_SAC, "log.every=1000",
                       "eval.every=0"]) == 1
    err = capsys.readouterr().err
    assert "at step 400;" in err  # by then the NaN has spread from the target into every network
    assert_failed(out, err, "non-finite value in agent.", kept_step=200)


def test_a_non_finite_evaluation_fails_the_run_and_stays_out_of_summary_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from agents.sac import SACLearner

    real_evaluate = SACLearner.evaluate

    def evaluate(self: SACLearner) -> dict[str, float]:
        return real_evaluate(self) | {"eval/return_mean": float("nan")}

    monkeypatch.setattr(SACLearner, "evaluate", evaluate)
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=1000", *TINY_SAC]) == 1
    err = capsys.readouterr().err
    assert_failed(out, err, "non-finite eval/return_mean = nan at step 300", kept_step=200)
    assert "eval_return_mean" not in strict_json(out / "summary.json")  # no evaluation succeeded


def test_a_nan_in_a_reinforce_run_fails_it_at_the_logged_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import agents.reinforce as reinforce

    real_surrogate = reinforce.policy_surrogate
    calls = {"n": 0}

    # NaN from the 7th update (step 700) on
    def poisoned(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1
        return real_surrogate(*args, **kwargs) * (float("nan") if calls["n"] >= 7 else 1.0)

    monkeypatch.setattr(reinforce, "policy_surrogate", poisoned)
    out = tmp_path / "run"
    assert train.main(["--config", str(REPO / "configs" / "reinforce_pendulum.yaml"),
                       "--out", str(out), "total_steps=2000", *TINY_REINFORCE]) == 1
    assert_failed(out, capsys.readouterr().err, "non-finite loss/actor = nan at step 700",
                  kept_step=500)
    assert strict_json(out / "summary.json")["env_id"] == "Pendulum-v1"


def test_a_nan_in_a_vae_run_fails_it_and_summary_json_stays_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import vae.trainer as trainer

    real_objective = trainer.elbo_objective
    calls = {"n": 0}

    def poisoned(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        calls["n"] += 1  # NaN at the 5th optimizer step: its gradient makes every weight NaN
        objective, info = real_objective(*args, **kwargs)
        return objective * (float("nan") if calls["n"] == 5 else 1.0), info

    monkeypatch.setattr(trainer, "elbo_objective", poisoned)
    out = tmp_path / "run"
    assert train.main(["--config", str(REPO / "configs" / "vae_digits.yaml"), "--out", str(out),
                       "total_steps=12", *TINY_VAE]) == 1
    # step 5 is not logged; step 6's loss is computed by NaN weights
    assert_failed(out, capsys.readouterr().err, "non-finite loss/elbo = nan at step 6", kept_step=4)


# ---------------------------------------------------------------- W&B


def wandb_records(run_dir: Path, pattern: str = "wandb/offline-run-*/run-*.wandb",
                  ) -> Iterator[Any]:
    """The protobuf records of the one offline W&B run file matching `pattern` under run_dir.

    A .wandb file is a LevelDB-style log (wandb/sdk/internal/datastore in wandb < 0.20; later
    versions read it in Go only): a 7-byte header (":W&B", magic, version), then 32 KiB blocks
    of chunks, each a 7-byte header (crc32 uint32, length uint16, type uint8: 1 full, 2 first,
    3 middle, 4 last) and its bytes; a block's last < 7 bytes are zero padding.
    """
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob(pattern)
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, record = 32768, 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # padding to the end of the block
            pos += left
            continue
        record += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            parsed = wandb_internal_pb2.Record()
            parsed.ParseFromString(record)
            record = b""
            yield parsed


def finished_wandb_records(run_dir: Path, pattern: str = "wandb/offline-run-*/run-*.wandb",
                           timeout_s: float = 60.0) -> list[Any]:
    """The records once the run's exit record is in the file. W&B's service process writes the
    file: `finish()` can return before it has flushed (measured: 1 run in 6 read back right
    after finish held only the 7-byte header)."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = list(wandb_records(run_dir, pattern))
        if (any(r.WhichOneof("record_type") == "exit" for r in records)
                or time.monotonic() > deadline):
            return records
        time.sleep(0.2)


def item_name(item: Any) -> str:
    """A history / config item's name: `key`, or (wandb >= 0.2x) the one-part `nested_key`."""
    return item.key or "/".join(item.nested_key)


def history(records: list[Any]) -> list[dict[str, Any]]:
    """The history rows of a run's records, {metric name: value}."""
    return [{item_name(item): json.loads(item.value_json) for item in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]


def test_an_offline_wandb_run_holds_the_metrics_on_the_global_step_axis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=400", *TINY_SAC, "wandb.mode=offline",
                       "wandb.name=readback", "wandb.tags=[t1]"]) == 0
    records = finished_wandb_records(out)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.project, run.display_name, list(run.tags)) == ("reparam-rl", "readback", ["t1"])
    assert run.run_id == load_latest(out / "checkpoints")[0]["run"]["wandb_id"]
    config = {item_name(item): json.loads(item.value_json) for item in run.config.update}
    assert config["total_steps"] == 400 and config["agent"]["hidden_sizes"] == [32, 32]
    # global_step is the x-axis of every metric
    metrics = [r.metric for r in records if r.WhichOneof("record_type") == "metric"]
    assert any(m.name == "global_step" for m in metrics)
    assert any(m.glob_name == "*" and m.step_metric == "global_step" for m in metrics)
    # every metrics.jsonl row is a W&B history row with the same values at the same global_step
    rows = history(records)
    assert all("global_step" in row for row in rows)
    local = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [{k: v for k, v in row.items() if not k.startswith(("_", "time/"))} for row in rows]
    assert [row for row in logged if len(row) > 1] == [pytest.approx(row) for row in local]
    assert {"loss/critic", "loss/actor", "loss/alpha", "stats/alpha", "stats/entropy",
            "stats/q_mean", "stats/log_std_mean", "train/episode_return", "eval/return_mean"} <= {
        key for row in rows for key in row}
    assert [row["global_step"] for row in rows if "time/steps_per_s" in row] == [100, 200, 300, 400]
    (exit_record,) = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == 0


@pytest.fixture
def reference_metrics(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("reference") / "run"
    assert train.main(["--out", str(out), "total_steps=400", *TINY_SAC]) == 0
    return (out / "metrics.jsonl").read_text()


@pytest.mark.parametrize("method", ["log", "finish"])
def test_wandb_failing_mid_run_warns_once_and_the_run_completes_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    reference_metrics: str, method: str,
) -> None:
    import wandb
    from wandb.sdk.wandb_run import Run

    real = getattr(Run, method)
    calls = {"n": 0}

    def failing(self: Run, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if method == "log" and calls["n"] < 3:  # log fails from its 3rd call (step 200) on
            return real(self, *args, **kwargs)
        if method == "finish":
            real(self, *args, **kwargs)  # the run's files are closed; then the upload "fails"
        raise wandb.errors.CommError("the W&B server went away")

    monkeypatch.setattr(Run, method, failing)
    out = tmp_path / "run"
    capsys.readouterr()
    code = train.main(["--out", str(out), "total_steps=400", *TINY_SAC, "wandb.mode=offline"])
    if method == "log":
        wandb.finish()  # the sink dropped its run after the failure; close it for the next test
    assert code == 0
    err = capsys.readouterr().err
    warning = ("warning: W&B failed (CommError: the W&B server went away); "
               "continuing with metrics.jsonl only")
    assert err.count(warning) == 1, err
    assert strict_json(out / "summary.json")["status"] == "completed"
    assert (out / "metrics.jsonl").read_text() == reference_metrics
    assert calls["n"] == (3 if method == "log" else 1)  # after a failure the sink calls W&B no more
    assert math.isfinite(strict_json(out / "summary.json")["eval_return_mean"])


@pytest.mark.parametrize("adapt", ["true", "false"])
def test_a_run_logs_its_threads_and_steps_down_to_one_under_load(
        tmp_path: Path, two_cpus: set[int], adapt: str) -> None:
    """With adapt_threads, two processes spinning on the run's two CPUs take it to one torch
    thread (the loop's governor reads /proc/stat once a second), and W&B's `time/threads` shows it.
    Without, and idle, it keeps the two it was given (under load it would collapse: README)."""
    out = tmp_path / "run"
    load = busy_processes(two_cpus, 2) if adapt == "true" else contextlib.nullcontext()
    # long enough for several of the governor's one-second readings under load
    total = 1500 if adapt == "true" else 500
    with load:
        assert train.main(["--out", str(out), f"total_steps={total}", *TINY_SAC, "threads=2",
                           f"adapt_threads={adapt}", "wandb.mode=offline"]) == 0
    rows = history(finished_wandb_records(out))
    threads = [row["time/threads"] for row in rows if "time/threads" in row]
    assert len(threads) == total // 100  # a row per 100 steps
    assert threads[-1] == 1 if adapt == "true" else set(threads) == {2}
