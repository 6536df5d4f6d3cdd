"""Sweep configs: what trials a sweep is made of, and bad input refused with one line, exit 2,
before anything starts (no Ray instance is needed for any of this)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import sweep as sweep_cli
from training.runtime import resolve_threads
from training.sweep_config import expand, load_sweep_config

REPO = Path(__file__).resolve().parents[2]
PENDULUM = str(REPO / "configs" / "sac_pendulum.yaml")
HOPPER = str(REPO / "configs" / "sac_hopper.yaml")


def write(tmp_path: Path, **config: object) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "study", "runs": [PENDULUM], **config}))
    return path


def test_variants_times_grid_times_runs_times_seeds_in_that_order(tmp_path: Path) -> None:
    path = write(tmp_path, runs=[PENDULUM, HOPPER], seeds=[3, 4],
                 overrides={"total_steps": 20000, "agent": {"learning_starts": 100}},
                 variants={"fast": {"agent.lr": 1.0e-3, "agent.autotune_alpha": False},
                           "paper": {}},
                 grid={"agent.tau": [0.005, 0.01]})
    trials = expand(load_sweep_config(path, []))
    assert [t.name for t in trials[:5]] == [
        "fast_tau0.005-Pendulum-v1-s3", "fast_tau0.005-Pendulum-v1-s4",
        "fast_tau0.005-Hopper-v5-s3", "fast_tau0.005-Hopper-v5-s4", "fast_tau0.01-Pendulum-v1-s3"]
    assert len(trials) == 2 * 2 * 2 * 2
    by_name = {t.name: t.config for t in trials}
    fast, paper = by_name["fast_tau0.01-Hopper-v5-s4"], by_name["paper_tau0.01-Hopper-v5-s4"]
    assert ((fast["agent"]["lr"], fast["agent"]["autotune_alpha"], fast["agent"]["tau"])
            == (1.0e-3, False, 0.01))
    # the config's own
    assert (paper["agent"]["lr"], paper["agent"]["autotune_alpha"]) == (3.0e-4, True)
    assert (fast["seed"] == 4 and fast["total_steps"] == 20000
            and fast["agent"]["learning_starts"] == 100)
    assert fast["env"]["id"] == "Hopper-v5"
    assert fast["threads"] == "auto"
    assert (fast["wandb"]["group"] == "study"
            and fast["wandb"]["name"] == "fast_tau0.01-Hopper-v5-s4")
    assert fast["wandb"]["tags"] == ["fast_tau0.01", "agent.autotune_alpha=false", "agent.lr=0.001",
                                     "agent.tau=0.01"]


def test_without_a_grid_the_variant_is_the_kind_and_cli_overrides_apply(tmp_path: Path) -> None:
    path = write(tmp_path, seeds=[0])
    trials = expand(
        load_sweep_config(path, ["seeds=[1, 2]", "overrides.total_steps=500", "name=other"])
    )
    assert [t.name for t in trials] == ["sac-Pendulum-v1-s1", "sac-Pendulum-v1-s2"]
    assert trials[0].config["total_steps"] == 500 and trials[0].config["wandb"]["group"] == "other"


def test_grid_keys_sharing_a_last_part_are_named_in_full(tmp_path: Path) -> None:
    path = write(tmp_path, grid={"eval.every": [1000], "checkpoint.every": [2000]})
    (trial,) = expand(load_sweep_config(path, []))
    # yaml.safe_dump sorted the keys
    assert trial.variant == "sac_checkpoint-every2000_eval-every1000"


@pytest.mark.parametrize(("config", "message"), [
    ({"seeds": [0], "sedes": [1]}, "unknown key 'sedes' (did you mean 'seeds'?)"),
    ({"seeds": "0, 1"}, "seeds must be a list"),
    ({"seeds": [0, 0]}, "seeds must be distinct"),
    ({"max_failures": -1}, "max_failures must be >= 0"),
    ({"resources": {"cpus_per_trial": 0}}, "resources.cpus_per_trial must be > 0"),
    ({"runs": ["configs/missing.yaml"]}, "config file not found: configs/missing.yaml"),
    ({"overrides": {"agent.batch_sise": 8}},
     "unknown key 'agent.batch_sise' (did you mean 'batch_size'?)"),
    ({"grid": {"agent.lr": [1.0e-3, -1.0]}}, "sac_lr-1: agent.lr must be > 0"),
    ({"grid": {"agent.lr": [1.0e-3]},
      "search": {"distributions": {"agent.tau": {"uniform": [0.0, 0.1]}}}},
     "a sweep takes grid / variants or search, not both"),
    ({"search": {"distributions": {"agent.lr": {"gaussian": [0, 1]}}}},
     "search.distributions.agent.lr must be one of"),
    ({"search": {"distributions": {"agent.lr": {"loguniform": [0.0, 1.0]}}}}, "needs low > 0"),
    ({"search": {"distributions": {"agent.lr": {"uniform": [1.0, 0.5]}}}}, "low < high"),
    ({"search": {"distributions": {"agent.lrr": {"uniform": [0.1, 0.5]}}}},
     "unknown key 'agent.lrr'"),
    ({"name": "a b"}, "name must be letters, digits"),
    ({"report": {"reps": 99}}, "report.reps must be >= 100 bootstrap draws, got 99"),
    ({"report": {"curve_reps": 2.5}}, "report.curve_reps must be an integer"),
])
def test_a_malformed_sweep_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict, message: str
) -> None:
    path = write(tmp_path, **config)
    assert sweep_cli.main(["--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "out").exists()  # nothing started


def test_a_sweep_refuses_a_non_empty_directory_and_resume_needs_a_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "something").write_text("")
    assert sweep_cli.main(["--config", str(write(tmp_path)), "--out", str(tmp_path / "out")]) == 2
    assert "is not empty; continue it with --resume" in capsys.readouterr().err
    assert sweep_cli.main(["--resume", str(tmp_path / "out")]) == 2
    assert "is not a sweep directory (no sweep.yaml)" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--resume", "DIR", "seeds=[1]"], "overrides go with --config"),
    (["--resume", "DIR", "--out", "elsewhere"], "--out goes with --config"),
    (["--report", "DIR", "seeds=[1]"], "with --report, overrides may set report.* only"),
    (["--report", "DIR", "report.reps=10"], "report.reps must be >= 100 bootstrap draws, got 10"),
    (["--report", "DIR", "report.repz=1000"], "unknown key 'report.repz' (did you mean 'reps'?)"),
    (["--report", "DIR", "--address", "auto"], "--address goes with --config or --resume"),
    (["--resume", "DIR", "--address", "head-node"], "--address must be auto or host:port"),
])
def test_resume_and_report_refuse_what_does_not_apply_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """--resume continues a sweep as it was configured; --report may change only the report's
    own settings. Exit 2 (argparse's, or ours), one line, and the directory untouched."""
    sweep_dir = tmp_path / "done"
    sweep_dir.mkdir()
    (sweep_dir / "sweep.yaml").write_text(write(tmp_path).read_text())
    argv = [str(sweep_dir) if a == "DIR" else a for a in argv]
    try:
        code: int | str | None = sweep_cli.main(argv)
    except SystemExit as e:  # argparse's usage error
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # argparse's usage line comes before it
    assert "error: " in last and message in last, err
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["sweep.yaml"]


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("address", "message"), [
    ("10.0.0.1", "--address must be auto or host:port (e.g. 10.0.0.1:6379), got '10.0.0.1'"),
    ("host:port", "--address must be auto or host:port"),
    (":6379", "--address must be auto or host:port"),
    ("127.0.0.1:CLOSED", "no Ray cluster answers at 127.0.0.1:CLOSED (Connection refused): "
                         "start one with `ray start --head`"),
    ("ray://127.0.0.1:CLOSED", "no Ray cluster answers at ray://127.0.0.1:CLOSED"),
])
def test_an_address_that_names_no_reachable_cluster_exits_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], address: str, message: str
) -> None:
    """Ray would retry an unreachable address for minutes: sweep.py tries one TCP connection
    and refuses in one line."""
    port = str(closed_port())
    address, message = address.replace("CLOSED", port), message.replace("CLOSED", port)
    argv = ["--config", str(write(tmp_path)), "--out", str(tmp_path / "out"), "--address", address]
    assert sweep_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_address_auto_without_a_cluster_exits_2_and_the_sweep_can_be_resumed(
    tmp_path: Path
) -> None:
    """`auto` finds this machine's cluster through Ray's temp dir (RAY_TMPDIR): an empty one has
    none. The sweep directory is written, no trial ran, and --resume can start it later."""
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(REPO / "sweep.py"), "--config", str(write(tmp_path)), "--out",
         str(out), "--address", "auto"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "RAY_TMPDIR": str(tmp_path / "no-ray")})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: cannot join the Ray cluster at auto: Could not find "
                                    "any running Ray instance"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"python sweep.py --resume {out} --address" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [".lock", "sweep.yaml", "trials.json"]


def test_a_sweep_directory_whose_sweep_yaml_is_not_yaml_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sweep.yaml").write_text("name: [unclosed\n")
    for argv in (["--resume", str(tmp_path)], ["--report", str(tmp_path)]):
        assert sweep_cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot parse {tmp_path / 'sweep.yaml'} at line 2")
        assert err.count("\n") == 1, err


def test_threads_auto_follows_omp_num_threads_else_the_cpus_of_this_process(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve_threads("auto") == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resolve_threads("auto") == len(__import__("os").sched_getaffinity(0))
    assert resolve_threads(5) == 5


def test_every_shipped_sweep_config_loads_and_expands() -> None:
    paths = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))
    assert paths
    for path in paths:
        trials = expand(load_sweep_config(path, []))
        assert trials and all(t.config["total_steps"] >= 1 for t in trials), path
