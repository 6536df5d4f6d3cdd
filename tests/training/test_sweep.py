"""sweep.py on a real local Ray instance: every trial is its train.py twin bit for bit, a killed
worker or driver loses nothing, Ctrl-C checkpoints every trial, and a small search stops trials
early and writes a run config train.py accepts. Tiny Pendulum-v1 budgets, no compile."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import train
from tests.test_train import assert_identical, learner_state
from training.config import load_config

REPO = Path(__file__).resolve().parents[2]
TINY = {"total_steps": 1200, "agent.learning_starts": 100, "agent.compile": False,
        "agent.hidden_sizes": [32, 32], "agent.batch_size": 32, "eval.every": 400,
        "eval.episodes": 1, "checkpoint.every": 300, "log.every": 100, "wandb.mode": "disabled"}
# The fewest bootstrap draws a report takes (its intervals are tested in test_report.py)
QUICK_REPORT = {"reps": 100, "curve_reps": 100}


def write_sweep(path: Path, name: str, **fields: object) -> Path:
    config = {"name": name, "runs": [str(REPO / "configs" / "sac_pendulum.yaml")], "seeds": [0],
              "overrides": TINY, "report": QUICK_REPORT, **fields}
    path.write_text(yaml.safe_dump(config))
    return path


def start_sweep(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(REPO / "sweep.py"), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_twin(trial: Path, out: Path, *overrides: str) -> subprocess.Popen[str]:
    """`python train.py` with a trial's config.yaml: the run the trial must equal."""
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), "--config",
                             str(trial / "config.yaml"), "--out", str(out), *overrides],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def train_py_pids(fragment: str) -> list[int]:
    """Processes running train.py whose command line mentions `fragment`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "train.py" in cmdline and fragment in cmdline:
                pids.append(int(entry.name))
    return pids


def wait_for(condition, timeout: float = 300, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def first_checkpoint(trial: Path) -> bool:
    return any((trial / "checkpoints").glob("step_*.pt.sha256"))


def summary(trial: Path) -> dict:
    return json.loads((trial / "summary.json").read_text())


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A completed 2-seed sweep with W&B offline, and beside it each trial's train.py twin."""
    tmp = tmp_path_factory.mktemp("sweep")
    config = write_sweep(tmp / "two.yaml", "two-seeds", seeds=[0, 1],
                         overrides={**TINY, "wandb.mode": "offline"})
    code, stderr = finish(start_sweep("--config", str(config), "--out", str(tmp / "out")))
    assert code == 0, stderr
    twins = [start_twin(trial, tmp / "twins" / trial.name, "wandb.mode=disabled")
             for trial in sorted((tmp / "out" / "trials").iterdir())]  # both at once: 2 CPUs
    for twin in twins:
        code, stderr = finish(twin)
        assert code == 0, stderr
    yield tmp


def test_each_trial_equals_its_train_py_twin_bit_for_bit(two_seeds: Path) -> None:
    trials = sorted((two_seeds / "out" / "trials").iterdir())
    assert [t.name for t in trials] == ["sac-Pendulum-v1-s0", "sac-Pendulum-v1-s1"]
    for trial in trials:
        twin = two_seeds / "twins" / trial.name
        assert (trial / "metrics.jsonl").read_bytes() == (twin / "metrics.jsonl").read_bytes()
        assert_identical(learner_state(trial), learner_state(twin))
        s = summary(trial)
        assert s["status"] == "completed" and s["total_steps"] == 1200 and s["resumed_from"] == []
        assert s["eval_return_mean"] == summary(twin)["eval_return_mean"]
    # the seeds really differ
    assert (trials[0] / "metrics.jsonl").read_bytes() != (trials[1] / "metrics.jsonl").read_bytes()


def test_a_trial_keeps_the_train_py_contract_with_its_threads_and_wandb_group(
    two_seeds: Path
) -> None:
    trial = two_seeds / "out" / "trials" / "sac-Pendulum-v1-s1"
    config = yaml.safe_load((trial / "config.yaml").read_text())
    assert config["seed"] == 1 and config["total_steps"] == 1200
    assert config["threads"] == 1  # cpus_per_trial 1 -> OMP_NUM_THREADS=1, resolved in config.yaml
    assert config["wandb"]["group"] == "two-seeds" and config["wandb"]["name"] == trial.name
    assert "sac" in config["wandb"]["tags"]
    assert len(list((trial / "wandb").glob("offline-run-*/run-*.wandb"))) == 1  # a real offline run
    rows = [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in rows if "loss/critic" in r] == list(range(200, 1201, 100))
    assert [r["global_step"] for r in rows if "eval/return_mean" in r] == [400, 800, 1200]
    report = json.loads((two_seeds / "out" / "report.json").read_text())
    assert (report["bootstrap_reps"], report["curve_bootstrap_reps"]) == (100, 100)  # the sweep's
    (group,) = report["groups"]
    assert group["seeds"] == [0, 1]
    assert group["returns"] == [
        summary(two_seeds / "out" / "trials" / f"sac-Pendulum-v1-s{s}")["eval_return_mean"]
        for s in (0, 1)]
    assert (two_seeds / "out" / "figures" / "sample_efficiency_Pendulum-v1.png").stat().st_size > 0


def test_a_killed_worker_is_retried_from_the_trials_last_checkpoint(two_seeds: Path,
                                                                    tmp_path: Path) -> None:
    sweep = start_sweep("--config", str(write_sweep(tmp_path / "s.yaml", "worker")),
                        "--out", str(tmp_path / "out"))
    trial = tmp_path / "out" / "trials" / "sac-Pendulum-v1-s0"
    wait_for(lambda: first_checkpoint(trial), what="the first checkpoint")
    (child,) = train_py_pids(str(tmp_path / "out"))
    worker = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
    os.kill(worker, signal.SIGKILL)  # the Ray worker running the trial
    code, stderr = finish(sweep)
    assert code == 0, stderr
    s = summary(trial)
    assert s["status"] == "completed"
    assert len(s["resumed_from"]) == 1 and s["resumed_from"][0] >= 300  # resumed, not restarted
    twin = two_seeds / "twins" / "sac-Pendulum-v1-s0"
    assert (trial / "metrics.jsonl").read_bytes() == (twin / "metrics.jsonl").read_bytes()
    assert_identical(learner_state(trial), learner_state(twin))


def test_a_killed_driver_is_finished_by_resume_identically(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # 3000 steps: the trial must still be running when the driver dies, on a fast machine too
    config = write_sweep(tmp_path / "s.yaml", "driver", overrides={**TINY, "total_steps": 3000})
    sweep = start_sweep("--config", str(config), "--out", str(out))
    trial = out / "trials" / "sac-Pendulum-v1-s0"
    wait_for(lambda: first_checkpoint(trial), what="the first checkpoint")
    sweep.kill()  # SIGKILL: no handler runs
    sweep.communicate()
    wait_for(lambda: not train_py_pids(str(out)), timeout=60,
             what="the trial to die with the driver")
    assert not (trial / "summary.json").exists() or summary(trial)["status"] == "interrupted"
    twin = tmp_path / "twin"
    twin_run = start_twin(trial, twin)  # beside the resumed sweep's one trial: 2 CPUs
    code, stderr = finish(start_sweep("--resume", str(out)))
    assert code == 0, stderr
    s = summary(trial)
    assert s["status"] == "completed" and len(s["resumed_from"]) == 1
    code, stderr = finish(twin_run)
    assert code == 0, stderr
    assert (trial / "metrics.jsonl").read_bytes() == (twin / "metrics.jsonl").read_bytes()
    assert_identical(learner_state(trial), learner_state(twin))
    # a finished sweep resumed again runs nothing and rewrites the report
    code, stderr = finish(start_sweep("--resume", str(out)))
    assert code == 0 and "every trial" in stderr


def test_ctrl_c_checkpoints_every_trial_and_exits_130(two_seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    sweep = start_sweep("--config", str(write_sweep(tmp_path / "s.yaml", "sigint", seeds=[0, 1])),
                        "--out", str(out))
    trials = [out / "trials" / f"sac-Pendulum-v1-s{s}" for s in (0, 1)]
    wait_for(lambda: all(first_checkpoint(t) for t in trials),
             what="both trials' first checkpoints")
    sweep.send_signal(signal.SIGINT)
    code, stderr = finish(sweep)
    assert code == 130, stderr
    assert "--resume" in stderr
    for trial in trials:
        s = summary(trial)
        assert s["status"] == "interrupted"
        # written on the stop
        assert (trial / "checkpoints" / f"step_{s['total_steps']:012d}.pt").is_file()
    code, stderr = finish(start_sweep("--resume", str(out)))
    assert code == 0, stderr
    twin = two_seeds / "twins" / "sac-Pendulum-v1-s0"
    assert (trials[0] / "metrics.jsonl").read_bytes() == (twin / "metrics.jsonl").read_bytes()
    assert summary(trials[1])["status"] == "completed"


def test_a_trial_that_fails_for_its_own_reason_does_not_stop_the_others(tmp_path: Path) -> None:
    # lr = 1e9 blows the critic up: that trial stops on its NaN guard, the other completes
    out = tmp_path / "out"
    config = write_sweep(tmp_path / "s.yaml", "nan", overrides={**TINY, "total_steps": 600},
                         grid={"agent.lr": [1.0e-3, 1.0e9]})
    code, stderr = finish(start_sweep("--config", str(config), "--out", str(out)))
    assert code == 1
    ok, bad = (summary(out / "trials" / "sac_lr0.001-Pendulum-v1-s0"),
               summary(out / "trials" / "sac_lr1e+09-Pendulum-v1-s0"))
    assert ok["status"] == "completed"
    assert bad["status"] == "failed" and "non-finite" in bad["message"]
    assert "trial sac_lr1e+09-Pendulum-v1-s0 failed: training stopped: non-finite" in stderr


def test_a_search_stops_trials_early_and_writes_a_run_config(tmp_path: Path) -> None:
    out = tmp_path / "out"
    search = {"distributions": {"agent.lr": {"loguniform": [1.0e-4, 3.0e-3]},
                                "agent.tau": {"uniform": [0.001, 0.05]}},
              "metric": "eval/return_mean", "mode": "max", "samples": 4,
              "scheduler": {"name": "asha", "grace_period": 400, "reduction_factor": 2}}
    config = write_sweep(tmp_path / "s.yaml", "search", search=search)
    code, stderr = finish(start_sweep("--config", str(config), "--out", str(out)))
    assert code == 0, stderr
    samples = json.loads((out / "search.json").read_text())["samples"]
    assert len(samples) == 4
    assert any(s["status"] == "stopped early" and s["global_step"] < 1200 for s in samples)
    assert any(s["status"] == "completed" for s in samples)
    for s in samples:
        trial_config = yaml.safe_load((out / "trials" / s["trial"] / "config.yaml").read_text())
        assert trial_config["agent"]["lr"] == pytest.approx(s["values"]["agent.lr"])
        assert 1.0e-4 <= s["values"]["agent.lr"] <= 3.0e-3
    best = out / "best_config.yaml"
    config_obj = load_config(best, [])
    assert config_obj.agent.tau == pytest.approx(max(
        (s for s in samples if s["global_step"] == 1200),
        key=lambda s: s["eval/return_mean"])["values"]["agent.tau"])
    assert train.main(["--config", str(best), "--out", str(tmp_path / "best"), "total_steps=200",
                       "eval.every=0"]) == 0


def test_the_progress_bar_of_a_resumed_sweep_counts_only_this_runs_steps() -> None:
    from training.sweep import SweepProgress

    progress = SweepProgress(300, 3, {"a": 100})
    try:
        assert (progress.bar.n, progress.bar.initial, progress.counts["done"]) == (100, 100, 1)
        progress.result("b", 40)
        progress.result("b", 70)   # Tune reports a trial's global_step, not an increment
        progress.result("a", 100)  # a finished trial reported again adds nothing
        assert progress.bar.n == 170
        assert progress.bar.format_dict["n"] - progress.bar.format_dict["initial"] == 70
    finally:
        progress.close()
