"""The lint rules pyproject.toml declares hold on the whole tree (ruff: pycodestyle with the
100-column limit, pyflakes, import order, pyupgrade, bugbear, simplify, ruff's own)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing_in_the_tree() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(REPO)],
                            capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
