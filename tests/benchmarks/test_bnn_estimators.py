"""benchmarks/bnn_estimators.py end to end with a tiny budget: every variant trains, and the
JSON, the tables and the figure hold the variance of all three estimators per batch size."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # the variance study end to end, about 15 s
def test_bnn_benchmark_reports_every_variant_and_the_variance_by_batch_size(tmp_path: Path) -> None:
    out, png = tmp_path / "bnn.json", tmp_path / "bnn.png"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bnn_estimators.py"),
         "--config", str(REPO / "configs" / "bnn_gap1d.yaml"), "--seeds", "0", "1",
         "--batch-sizes", "1", "8", "--repeats", "3", "--json", str(out), "--plot", str(png),
         "total_steps=3", "model.hidden_sizes=[4]", "model.predictive_samples=2"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert set(figures["by_variant"]) == {"global", "local", "flipout", "plain"}
    assert [(r["variant"], r["seed"]) for r in figures["runs"]][:4] == [
        ("global", 0), ("local", 0), ("flipout", 0), ("plain", 0)]
    by_batch = figures["grad_var_trace_by_batch_size"]
    assert set(by_batch) == {"1", "8"} and all(by_batch[b]["global"]["mean"] > 0 for b in by_batch)
    assert "| plain network |" in result.stdout and "| 8 |" in result.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_non_bnn_config_exits_2_with_one_line() -> None:
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bnn_estimators.py"),
                             "--config", str(REPO / "configs" / "vae_digits.yaml")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "needs kind: bnn" in result.stderr
