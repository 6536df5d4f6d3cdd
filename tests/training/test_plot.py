"""python -m training.plot: runs grouped by config, mean and spread across seeds, PNG out."""

import json
from pathlib import Path

import numpy as np
import pytest

from training import plot
from training.config import load_config, save_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def fake_run(directory: Path, overrides: list[str], rows: list[dict[str, float]]) -> Path:
    """A run directory with a real resolved config.yaml and the given metrics.jsonl rows."""
    directory.mkdir(parents=True)
    save_config(load_config(CONFIGS / "sac_pendulum.yaml", overrides), directory / "config.yaml")
    (directory / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return directory


def evals(values: dict[int, float]) -> list[dict[str, float]]:
    return [{"global_step": step, "eval/return_mean": value, "loss/actor": -value}
            for step, value in values.items()]


def test_seeds_of_one_config_become_a_mean_with_a_std_band(tmp_path: Path) -> None:
    seeds = [fake_run(tmp_path / f"s{seed}", [f"seed={seed}", f"wandb.name=s{seed}", "threads=2"],
                      evals(values))
             for seed, values in enumerate([{1000: -900.0, 2000: -500.0, 3000: -200.0},
                                            {1000: -1100.0, 2000: -300.0, 3000: -150.0},
                                            # the last stopped early
                                            {1000: -1000.0, 2000: -400.0}])]
    other = fake_run(tmp_path / "lr", ["agent.lr=0.01"], evals({1000: -1200.0, 2000: -1000.0}))
    groups = plot.group_curves(
        [plot.read_curve(run, "eval/return_mean") for run in [*seeds, other]]
    )
    assert list(groups) == ["sac Pendulum-v1 (agent.lr=0.001), 3 seeds",
                            "sac Pendulum-v1 (agent.lr=0.01), 1 seed"]
    steps, mean, std = plot.mean_and_std(groups["sac Pendulum-v1 (agent.lr=0.001), 3 seeds"])
    np.testing.assert_array_equal(steps, [1000, 2000])  # the steps every seed logged
    np.testing.assert_allclose(mean, [-1000.0, -400.0])
    # deviations 100, -100, 0
    np.testing.assert_allclose(std, [np.sqrt(20000 / 3), np.sqrt(20000 / 3)])

    out = tmp_path / "curves.png"
    assert plot.main([*map(str, [*seeds, other]), "--out", str(out), "--metric", "loss/actor"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = fake_run(tmp_path / "run", [], evals({1000: -900.0}))
    assert plot.main([str(run), "--out", str(tmp_path / "c.png"), "--metric", "loss/critic"]) == 2
    err = capsys.readouterr().err
    assert (len(err.splitlines()) == 1
            and "logged no 'loss/critic'; its metrics are: eval/return_mean, loss/actor" in err)
    assert plot.main([str(tmp_path / "missing"), "--out", str(tmp_path / "c.png")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
