"""The sweep report against statistics computed here independently (scipy, a hand count, and
rliable called directly), on run directories written by hand in the train.py layout."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from rliable import library as rly
from rliable import metrics

import sweep as sweep_cli
from training import report as report_module
from training.sweep_config import ReportConfig

RETURNS = {  # (variant, task) -> final eval return of seeds 0..7
    ("fast", "Hopper-v5"): [3100.0, 250.0, 2900.0, 3300.0, 1200.0, 2800.0, 3000.0, 900.0],
    ("paper", "Hopper-v5"): [1500.0, 1700.0, 300.0, 2600.0, 1100.0, 1900.0, 800.0, 2000.0],
    ("fast", "Walker2d-v5"): [2500.0, 400.0, 1800.0, 2200.0, 3900.0, 1000.0, 2700.0, 150.0],
    ("paper", "Walker2d-v5"): [900.0, 1400.0, 200.0, 2100.0, 1300.0, 600.0, 1700.0, 1000.0],
}
REFERENCES = {"Hopper-v5": {"random": 20.0, "reference": 2620.0, "source": "test"},
              "Walker2d-v5": {"random": 2.0, "reference": 1302.0, "source": "test"}}


def make_sweep(out: Path) -> None:
    trials = []
    for (variant, task), returns in RETURNS.items():
        for seed, final in enumerate(returns):
            name = f"{variant}-{task}-s{seed}"
            run = out / "trials" / name
            run.mkdir(parents=True)
            curve = [final * f for f in (0.25, 0.5, 1.0)]
            run.joinpath("metrics.jsonl").write_text("".join(
                json.dumps({"global_step": 5000 * (i + 1), "eval/return_mean": r}) + "\n"
                for i, r in enumerate(curve)))
            run.joinpath("summary.json").write_text(json.dumps(
                {"kind": "sac", "seed": seed, "status": "completed", "env_id": task,
                 "eval_return_mean": final}))
            trials.append({"name": name, "variant": variant, "task": task, "seed": seed,
                           "config": {"kind": "sac"}})
    # a trial that has not finished is listed but left out of the statistics
    trials.append({"name": "fast-Hopper-v5-s8", "variant": "fast", "task": "Hopper-v5", "seed": 8,
                   "config": {"kind": "sac"}})
    (out / "trials.json").write_text(json.dumps(trials))
    (out / "sweep.yaml").write_text("name: test\nruns: [x.yaml]\n")


# Fewer bootstrap draws than a study's (the tests compare with rliable at the report's count)
FEWER = ReportConfig(reps=2000, curve_reps=500)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report")
    make_sweep(out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report_module, "read_references", lambda path=None: REFERENCES)
        assert sweep_cli.main(["--report", str(out), "--json", str(out / "copy.json"),
                               f"report.reps={FEWER.reps}",
                               f"report.curve_reps={FEWER.curve_reps}"]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_each_group_has_its_seeds_returns_and_iqm_as_scipy_and_rliable_compute_them(
    written: tuple[Path, dict]
) -> None:
    out, report = written
    assert report["metric"] == "eval_return_mean"
    assert (report["bootstrap_reps"], report["curve_bootstrap_reps"]) == (2000, 500)  # the CLI's
    assert len(report["groups"]) == 4
    for group in report["groups"]:
        x = np.asarray(RETURNS[(group["variant"], group["env_id"])])
        assert group["seeds"] == list(range(8)) and group["returns"] == x.tolist()
        assert group["mean"] == pytest.approx(x.mean()) and group["std"] == pytest.approx(x.std())
        assert group["median"] == pytest.approx(np.median(x))
        assert group["iqm"] == pytest.approx(scipy.stats.trim_mean(x, 0.25))  # the middle 4 of 8
        assert group["iqm"] == pytest.approx(np.sort(x)[2:6].mean())
        np.random.seed(0)  # rliable also draws from numpy's global RNG
        _, ci = rly.get_interval_estimates({"g": x[:, None]},
                                           lambda s: np.array([metrics.aggregate_iqm(s)]),
                                           reps=report["bootstrap_reps"],
                                           random_state=np.random.RandomState(0))
        assert group["iqm_ci"] == pytest.approx([ci["g"][0, 0], ci["g"][1, 0]])
        assert group["iqm_ci"][0] < group["iqm"] < group["iqm_ci"][1]
    (fast_hopper,) = [g for g in report["groups"]
                      if g["variant"] == "fast" and g["env_id"] == "Hopper-v5"]
    assert fast_hopper["missing"] == ["fast-Hopper-v5-s8"]
    assert json.loads((out / "copy.json").read_text()) == report


def test_the_aggregate_normalizes_by_the_references_and_pools_the_tasks(
    written: tuple[Path, dict]
) -> None:
    _, report = written
    agg = report["aggregate"]
    assert agg["tasks"] == ["Hopper-v5", "Walker2d-v5"]
    for variant in ("fast", "paper"):
        normalized = np.stack([(np.asarray(RETURNS[(variant, t)]) - REFERENCES[t]["random"])
                               / (REFERENCES[t]["reference"] - REFERENCES[t]["random"])
                               for t in agg["tasks"]], axis=1)
        a = agg["variants"][variant]
        assert a["runs"] == 8
        assert a["iqm"] == pytest.approx(scipy.stats.trim_mean(normalized.ravel(), 0.25))
        assert a["mean"] == pytest.approx(normalized.mean())
        assert a["optimality_gap"] == pytest.approx(np.mean(1 - np.minimum(normalized, 1)))
        for key in ("iqm", "mean", "optimality_gap"):
            assert a[f"{key}_ci"][0] <= a[key] <= a[f"{key}_ci"][1]
    # P(fast > paper): per task, the fraction of seed pairs where fast wins (ties count half)
    per_task = []
    for task in agg["tasks"]:
        x, y = np.asarray(RETURNS[("fast", task)]), np.asarray(RETURNS[("paper", task)])
        per_task.append(((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])).mean())
    poi = agg["probability_of_improvement"]
    assert poi["fast,paper"]["p"] == pytest.approx(np.mean(per_task))
    assert poi["paper,fast"]["p"] == pytest.approx(1 - np.mean(per_task))


def test_the_markdown_table_and_the_figures(written: tuple[Path, dict]) -> None:
    out, report = written
    text = (out / "report.md").read_text()
    (group,) = [g for g in report["groups"]
                if g["variant"] == "paper" and g["env_id"] == "Walker2d-v5"]
    assert ("| paper | Walker2d-v5 | 8 | 900.0 / 1400.0 / 200.0 / 2100.0 / 1300.0 / 600.0 / "
            f"1700.0 / 1000.0 | 1150.0 +- {group['std']:.1f} |") in text
    assert "Not (yet) completed, left out: fast-Hopper-v5-s8." in text
    assert "P(fast > paper)" in text
    for name in ("sample_efficiency_Hopper-v5", "sample_efficiency_Walker2d-v5",
                 "performance_profile", "aggregate_intervals"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(report["figures"]) == sorted(f"figures/{p.name}"
                                               for p in (out / "figures").iterdir())


def test_a_reference_run_made_reportable_joins_the_report_by_its_summary(tmp_path: Path) -> None:
    make_sweep(tmp_path)
    sb3 = tmp_path / "trials" / "sb3-Hopper-v5-s0"
    sb3.mkdir()
    sb3.joinpath("summary.json").write_text(json.dumps({"kind": "sac", "seed": 0,
                                                        "status": "completed",
                                                        "env_id": "Hopper-v5",
                                                        "eval_return_mean": 1234.5,
                                                        "impl": "sb3", "variant": "sb3"}))
    report, _ = report_module.build_report(tmp_path, FEWER)
    (group,) = [g for g in report["groups"] if g["variant"] == "sb3"]
    assert (group["env_id"], group["seeds"], group["returns"]) == ("Hopper-v5", [0], [1234.5])


def test_a_published_curve_is_drawn_beside_our_runs_and_never_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    make_sweep(tmp_path)
    running = tmp_path / "trials" / "fast-Hopper-v5-s8"  # listed, still running: half a curve
    running.mkdir()
    running.joinpath("metrics.jsonl").write_text(
        json.dumps({"global_step": 5000, "eval/return_mean": 1.0})
    )
    published = {"steps": [0, 5000, 10000, 15000], "returns": [10.0, 300.0, 900.0, 1500.0],
                 "label": "published mean"}
    references = {**REFERENCES, "Hopper-v5": {**REFERENCES["Hopper-v5"], "curve": published},
                  "Ant-v5": {"random": -50.0, "reference": 1000.0, "source": "test",
                             "curve": published}}
    monkeypatch.setattr(report_module, "read_references", lambda path=None: references)
    drawn: list[tuple[str, list[float]]] = []
    plot = matplotlib.axes.Axes.plot

    def recording_plot(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append((kwargs.get("label", ""), list(args[1])))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording_plot)
    bands: list[tuple[list[float], list[float]]] = []
    fill_between = matplotlib.axes.Axes.fill_between

    def recording_fill_between(self, x, low, high, **kwargs):  # type: ignore[no-untyped-def]
        bands.append((list(low), list(high)))
        return fill_between(self, x, low, high, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", recording_fill_between)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "sample_efficiency_Ant-v5.png").write_bytes(b"an older report's")
    report, results = report_module.build_report(tmp_path, ReportConfig(reps=100, curve_reps=300))
    figures = report_module.write_figures(report, results, tmp_path / "figures")
    assert sorted(figures) == sorted((tmp_path / "figures").glob("*.png"))
    names = {p.name for p in figures}
    assert "sample_efficiency_Hopper-v5.png" in names
    assert "sample_efficiency_Ant-v5.png" not in names  # no run of ours on Ant: no figure
    assert drawn.count(("published mean", published["returns"])) == 1  # Hopper's figure only
    ours = [values for label, values in drawn if label.startswith("fast (")]  # "fast (8 seeds)"
    assert [len(values) for values in ours] == [3, 3]  # every completed seed's whole curve
    # the first band (fast on Hopper): rliable's per-step IQM interval at curve_reps draws
    curves = np.array([[final * f for f in (0.25, 0.5, 1.0)]
                       for final in RETURNS[("fast", "Hopper-v5")]])  # (seeds, steps)
    np.random.seed(0)  # rliable also draws from numpy's global RNG
    _, ci = rly.get_interval_estimates(
        {"g": curves[:, None, :]},
        lambda s: np.array([metrics.aggregate_iqm(s[..., i]) for i in range(s.shape[-1])]),
        reps=300, random_state=np.random.RandomState(0))
    assert bands[0] == (pytest.approx(ci["g"][0]), pytest.approx(ci["g"][1]))
