"""benchmarks/sac_learning.py writes stable-baselines3's runs as run directories
the sweep report reads."""

import json
import os
import subprocess
import sys
from pathlib import Path

from training.report import build_report

REPO = Path(__file__).resolve().parents[2]


def test_sb3_runs_are_reportable_beside_a_sweeps_trials(tmp_path: Path) -> None:
    trials = tmp_path / "trials"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sac_learning.py"),
         "--config", str(REPO / "configs" / "sac_pendulum.yaml"), "--steps", "450", "--seeds", "0",
         "--impl", "sb3", "--eval-episodes", "1", "--eval-every", "200",
         "--trials-dir", str(trials)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob("SB3-*"))  # SB3's default logger's empty folder: not made
    run = trials / "sb3-Pendulum-v1-s0"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # train.py's schedule: every 200, then the end
    assert [r["global_step"] for r in rows] == [200, 400, 450]
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["impl"] == "sb3" and summary["status"] == "completed"
            and summary["total_steps"] == 450)
    assert summary["eval_return_mean"] == rows[-1]["eval/return_mean"]
    assert "stable-baselines3" in summary["versions"] and "torch" in summary["versions"]
    report, results = build_report(tmp_path)
    (group,) = report["groups"]
    assert ((group["variant"], group["env_id"], group["returns"])
            == ("sb3", "Pendulum-v1", [summary["eval_return_mean"]]))
    (trial,) = results
    assert trial.curve == {r["global_step"]: r["eval/return_mean"] for r in rows}
