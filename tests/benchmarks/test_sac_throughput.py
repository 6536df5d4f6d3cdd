"""benchmarks/sac_throughput.py end to end on Pendulum-v1 with a few steps: each implementation
runs in its own process, a missing sbx is reported as such, and the JSON holds every figure the
README's performance table is built from."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a speed run: six train.py / SB3 processes, about 1.5 min
def test_throughput_benchmark_reports_the_rates_their_ratio_the_phases_and_the_flops(
    tmp_path: Path
) -> None:
    config = REPO / "configs" / "sac_pendulum.yaml"
    out = tmp_path / "throughput.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sac_throughput.py"), "--config", str(config),
         # this python has no sbx
         "--impl", "ours-eager", "sb3", "sbx", "--sbx-python", sys.executable,
         "--rounds", "1", "--steps", "150", "450", "--learning-starts", "100",
         "--profile-steps", "10", "--threads", "1", "--json", str(out),
         "agent.hidden_sizes=[32,32]", "agent.batch_size=32"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())

    assert set(figures["steps_per_s"]) == {"ours-eager", "sb3"}
    assert figures["not_installed"] == ["sbx"]
    assert all(len(rates) == 1 and rates[0] > 0 for rates in figures["steps_per_s"].values())
    assert figures["ratio_of"] == "ours-eager" and set(figures["median_ratio"]) == {"sb3"}
    ours, sb3 = figures["median_steps_per_s"]["ours-eager"], figures["median_steps_per_s"]["sb3"]
    assert figures["median_ratio"]["sb3"] == ours / sb3  # one round: the ratio of the two rates
    phases = figures["ms_per_step_by_phase"]
    assert {"act", "env_step", "sample", "critic_update", "actor_update",
            "target_update"} <= set(phases)
    assert phases["critic_update"] > 0 and phases["actor_update"] > 0 and phases["env_step"] > 0
    # Pendulum-v1 (obs 3, act 1), 32-32 networks, batch 32: one twin-critic forward alone is
    # 2 critics * 2 * 32 * (4*32 + 32*32 + 32) = 0.15 MFLOP, and an update holds several
    assert figures["update_mflop"] > 0.5
    assert figures["ceiling_fraction"] > 0
    assert "| ours-eager | " in result.stdout and "| sb3 | " in result.stdout
    assert "| sbx | not installed |" in result.stdout


def test_a_config_that_is_not_sac_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sac_throughput.py"),
         "--config", str(REPO / "configs" / "reinforce_pendulum.yaml")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "is a reinforce config; this benchmark needs kind: sac" in result.stderr
