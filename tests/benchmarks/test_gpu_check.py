"""benchmarks/gpu_check.sh without a GPU: the dry run checks the wheel folder against
benchmarks/gpu_wheels.txt and prints its commands; a real run falls back to the brief CPU parts
(the cuda tests skip with their reason, a short CPU benchmark writes its figures)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def run(tmp_path: Path, *args: str, wheels: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"GPU_WHEELS": str(wheels), "PYTHON": sys.executable,
                        "OUT": str(tmp_path / "out")}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_dry_run_names_each_wheel_missing_for_this_python(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "gymnasium-1.4.0-py3-none-any.whl").write_bytes(b"")  # present; the rest is not
    result = run(tmp_path, "--dry-run", wheels=wheels)
    assert result.returncode == 2
    missing = [line for line in result.stderr.splitlines() if line.startswith("missing wheel: ")]
    pins = [line for line in (REPO / "benchmarks" / "gpu_wheels.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert len(missing) == len(pins) - 1
    assert not any("gymnasium==" in line for line in missing)


def test_the_dry_run_prints_the_install_the_tests_and_the_benchmark(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    for pin in (REPO / "benchmarks" / "gpu_wheels.txt").read_text().splitlines():
        if pin and not pin.startswith("#"):
            name, version = pin.split("==")
            (wheels / f"{name.replace('-', '_')}-{version}-{tag}-{tag}-"
                      "manylinux_2_28_x86_64.whl").write_bytes(b"")
    result = run(tmp_path, "--dry-run", wheels=wheels)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("would run: ") and "pip install" in line and "--no-index" in line
               for line in lines)
    assert any("pytest tests/cuda -m cuda" in line for line in lines)
    assert any("sac_throughput.py" in line for line in lines)
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


@pytest.mark.slow  # the throughput benchmark of test_sac_throughput.py again, about 1.5 min
@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the script runs its full check")
def test_without_a_gpu_it_runs_the_cpu_parts_briefly(tmp_path: Path) -> None:
    result = run(tmp_path, wheels=tmp_path / "no-wheels")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "gpu_check: passed" in result.stdout
    assert "skipped" in (tmp_path / "out" / "cuda_tests.txt").read_text()
    figures = json.loads((tmp_path / "out" / "sac_throughput_cpu_fallback.json").read_text())
    assert figures["device"] == "cpu" and figures["median_ratio"]["sb3"] > 0
