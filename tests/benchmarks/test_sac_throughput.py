"""benchmarks/sac_throughput.py end to end on Pendulum-v1 with a few steps: both implementations
run, and the JSON holds every figure the README's performance table is built from."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_throughput_benchmark_reports_both_rates_their_ratio_the_phases_and_the_flops(tmp_path: Path) -> None:
    config = REPO / "configs" / "sac_pendulum.yaml"
    out = tmp_path / "throughput.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sac_throughput.py"), "--config", str(config),
         "--rounds", "2", "--steps", "20", "--warmup", "0", "--learning-starts", "64",
         "--profile-steps", "10", "--threads", "1", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())

    assert set(figures["steps_per_s"]) == {"ours", "sb3"}
    assert all(len(rates) == 2 and min(rates) > 0 for rates in figures["steps_per_s"].values())
    ours, sb3 = figures["median_steps_per_s"]["ours"], figures["median_steps_per_s"]["sb3"]
    assert 0 < figures["median_ratio"] < 100 and ours > 0 and sb3 > 0
    phases = figures["ms_per_step_by_phase"]
    assert {"act", "env_step", "sample", "critic_update", "actor_update", "target_update"} <= set(phases)
    assert phases["critic_update"] > 0 and phases["actor_update"] > 0 and phases["env_step"] > 0
    # Pendulum-v1 (obs 3, act 1), 256-256 networks, batch 256: the matmuls alone are > 100 MFLOP
    assert figures["update_mflop"] > 100
    assert 0 < figures["ceiling_fraction"] < 1
    assert "| ours | " in result.stdout and "| sb3 | " in result.stdout  # the printed table


def test_a_config_that_is_not_sac_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sac_throughput.py"),
         "--config", str(REPO / "configs" / "reinforce_pendulum.yaml")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "is a reinforce config; this benchmark needs kind: sac" in result.stderr
