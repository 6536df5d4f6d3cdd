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


def test_compare_posteriors_reports_the_gap_and_step_time_of_each(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    try:
        code = main(["--posteriors", "diagonal", "planar", "--flow-steps", "2", "--steps", "3",
                     "--seeds", "0", "--grad-variance-every", "2",
                     "--json", str(tmp_path / "post.json")])
        timing = main(["--posteriors", "diagonal", "coupling", "--time-rounds", "1",
                       "--json", str(tmp_path / "t.json")])
    finally:
        torch.set_num_threads(threads)
    assert code == timing == 0
    result = json.loads((tmp_path / "post.json").read_text())
    assert [(r["posterior"], r["seed"]) for r in result["runs"]] == [("diagonal", 0), ("planar", 0)]
    for run in result["runs"]:
        assert run["gap"] == run["test_iwae"] - run["test_elbo"] and run["step_ms"] > 0
    assert (set(json.loads((tmp_path / "t.json").read_text())["median_ms_per_step"])
            == {"diagonal", "coupling"})
