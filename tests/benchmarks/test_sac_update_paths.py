"""benchmarks/sac_update_paths.py end to end with a few updates: all four gradient paths run
(the two compiled ones included) and the JSON and the printed table hold their timings."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a speed run: four gradient paths, two of them compiled, about 20 s
def test_update_paths_benchmark_times_autograd_explicit_and_compiled(tmp_path: Path) -> None:
    out = tmp_path / "paths.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sac_update_paths.py"), "--rounds", "2",
         "--updates", "3", "--threads", "1", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert set(figures["median_ms_per_update"]) == {"autograd", "explicit", "explicit + compile",
                                                    "func + compile"}
    assert all(len(ms) == 2 and min(ms) > 0 for ms in figures["ms_per_update"].values())
    assert figures["median_ratio_to_explicit_compile"]["explicit + compile"] == 1.0
    assert "| explicit + compile | " in result.stdout and "| func + compile | " in result.stdout
    assert "torch.compile of" not in result.stderr  # the compile worked: no fall-back warning
