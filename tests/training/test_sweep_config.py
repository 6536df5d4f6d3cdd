"""Sweep configs: what trials a sweep is made of, and bad input refused with one line, exit 2,
before anything starts (no Ray instance is needed for any of this)."""

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
