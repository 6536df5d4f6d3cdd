"""`python -m vae.compare`: runs both estimators and writes its JSON and plot."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vae.compare import main


def test_compare_trains_both_estimators_and_reports_the_variance_ratio(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    try:
        code = main(["--steps", "2", "--seeds", "0", "--grad-variance-every", "2",
                     "--json", str(tmp_path / "out.json"), "--plot", str(tmp_path / "out.png")])
    finally:
        torch.set_num_threads(threads)  # main sets the thread count for its process
    assert code == 0
    result = json.loads((tmp_path / "out.json").read_text())
    assert [(r["estimator"], r["seed"], len(r["curve"])) for r in result["runs"]] == [
        ("pathwise", 0, 1), ("score_function", 0, 1)]
    assert result["by_estimator"]["score_function"]["var_ratio_median"]["mean"] > 1
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"
