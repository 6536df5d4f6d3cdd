"""The sweep report: per (variant, task) statistics over seeds and across-task aggregates, with
rliable (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice").

Per group: each seed's final score (a completed trial's summary.json), mean +- std (population,
ddof 0, as the README's tables), median, interquartile mean (IQM) and its 95% stratified-bootstrap
CI. Across tasks, scores are normalized `(score - random) / (reference - random)` with the
numbers in training/reference_scores.yaml (each with its source); per variant the IQM, mean and
optimality gap of the normalized scores with CIs, and for two or more variants the probability
of improvement. Figures: sample-efficiency curves (IQM over seeds against steps, CI band) per
task, the performance profile, and the aggregate intervals. The bootstrap draws are the
sweep's `report` settings (training.sweep_config.ReportConfig): the report's time grows with them.

Trials are those of DIR/trials.json plus any other run directory under DIR/trials/ whose
summary.json names its `variant` (reference runs made reportable, e.g. stable-baselines3's).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from training.registry import ALGORITHMS
from training.sweep_config import ReportConfig

REFERENCE_SCORES = Path(__file__).resolve().parent / "reference_scores.yaml"
CI_SIZE = 0.95
SEED = 0             # the bootstrap's random state: the same report twice


@dataclass
class TrialResult:
    name: str
    variant: str
    task: str
    seed: int
    status: str
    score: float | None                     # the final score of a completed trial
    curve: dict[int, float] = field(default_factory=dict)  # step -> evaluation score


def _read_curve(path: Path, key: str) -> dict[int, float]:
    if not path.is_file():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {int(r["global_step"]): float(r[key])
            for r in rows if isinstance(r.get(key), int | float)}


def load_results(out: Path) -> tuple[list[TrialResult], str]:
    """Every reportable trial of sweep directory `out`, and the name of the score."""
    listed = (json.loads((out / "trials.json").read_text()) if (out / "trials.json").is_file()
              else [])
    entries = {t["name"]: (t["variant"], t["task"], int(t["seed"]), t["config"]["kind"])
               for t in listed}
    trials_dir = out / "trials"
    for run_dir in sorted(trials_dir.iterdir()) if trials_dir.is_dir() else []:
        summary = run_dir / "summary.json"
        if run_dir.name not in entries and summary.is_file():
            s = json.loads(summary.read_text())
            if "variant" in s:
                task = s.get("env_id") or s.get("dataset") or s["kind"]
                entries[run_dir.name] = (s["variant"], task, int(s["seed"]), s["kind"])
    results, score_names = [], set()
    for name, (variant, task, seed, kind) in entries.items():
        score_key, curve_key = ALGORITHMS[kind].score
        score_names.add(score_key)
        run_dir = trials_dir / name
        summary = (json.loads((run_dir / "summary.json").read_text())
                   if (run_dir / "summary.json").is_file() else {})
        status = summary.get("status", "not run")
        score = summary.get(score_key) if status == "completed" else None
        results.append(TrialResult(name, variant, task, seed, status,
                                   float(score) if isinstance(score, int | float) else None,
                                   _read_curve(run_dir / "metrics.jsonl", curve_key)))
    return results, "/".join(sorted(score_names)) or "eval_return_mean"


# The statistics, in numpy: the bootstrap calls them once per replication, and scipy's versions
# (which rliable's metrics call) cost about 1 ms a call here, 50x these. tests/training/
# test_report.py checks them against scipy and rliable's own.


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean of all runs x tasks: the mean of the middle half, after cutting
    floor(n/4) scores from each end (= scipy.stats.trim_mean(x, 0.25), rliable's IQM).
    (runs, tasks[, steps]) -> (steps,) or ()."""
    flat = scores.reshape(-1, *scores.shape[2:])                 # (runs * tasks, ...)
    cut = flat.shape[0] // 4
    return np.sort(flat, axis=0)[cut: flat.shape[0] - cut].mean(axis=0)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over tasks, ties counted half (the Mann-Whitney U statistic / (n m)).
    x (n, tasks), y (m, tasks) -> ()."""
    wins = (x[:, None, :] > y[None, :, :]) + 0.5 * (x[:, None, :] == y[None, :, :])  # (n, m, tasks)
    return wins.mean(axis=(0, 1)).mean()


def aggregates(scores: np.ndarray) -> np.ndarray:
    """IQM, mean and optimality gap (mean shortfall below 1) of normalized scores (runs, tasks)."""
    return np.array([iqm(scores), scores.mean(), np.mean(1.0 - np.minimum(scores, 1.0))])


def _iqm(scores: np.ndarray) -> np.ndarray:
    return np.array([iqm(scores)])


def interval(scores: np.ndarray, func: Any, reps: int) -> tuple[np.ndarray, np.ndarray]:
    """Point estimate and 95% stratified-bootstrap CI (2, k) of `func` on scores (runs, tasks)."""
    points, cis = _bootstrap({"x": scores}, func, reps)
    return points["x"], cis["x"]


def _bootstrap(
    scores: dict[str, Any], func: Any, reps: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """rliable's stratified bootstrap with this report's CI size, seeded: besides its random_state,
    rliable's resampling also draws from numpy's global RNG (seen: the same call gave 2775 and
    2825 as a CI bound), so that is seeded here too, and restored afterwards."""
    from rliable import library as rly

    outside = np.random.get_state()
    np.random.seed(SEED)
    try:
        with warnings.catch_warnings():  # rliable hands arch a RandomState, which arch 7 deprecates
            warnings.simplefilter("ignore", FutureWarning)
            return rly.get_interval_estimates(scores, func, reps=reps,
                                              confidence_interval_size=CI_SIZE,
                                              random_state=np.random.RandomState(SEED))
    finally:
        np.random.set_state(outside)


def group_stats(returns: list[float], reps: int) -> dict[str, Any]:
    """mean, std, median, IQM and its CI (`reps` bootstrap draws) of one (variant, task)'s final
    scores."""
    x = np.asarray(returns, dtype=np.float64)
    (point,), ci = interval(x[:, None], _iqm, reps)
    return {"mean": float(x.mean()), "std": float(x.std()), "median": float(np.median(x)),
            "iqm": float(point), "iqm_ci": [float(ci[0, 0]), float(ci[1, 0])]}


def read_references(path: Path = REFERENCE_SCORES) -> dict[str, dict[str, Any]]:
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def _aggregate(groups: list[dict[str, Any]], references: dict[str, dict[str, Any]],
               reps: int) -> dict[str, Any]:
    """Normalized scores across the tasks every variant has with a reference; IQM, mean,
    optimality gap and their CIs per variant; probability of improvement per pair (CIs from
    `reps` bootstrap draws)."""
    variants = sorted({g["variant"] for g in groups})
    tasks = sorted({g["env_id"] for g in groups if g["env_id"] in references})
    tasks = [t for t in tasks
             if all(any(g["variant"] == v and g["env_id"] == t for g in groups) for v in variants)]
    if not tasks:
        return {"tasks": [],
                "note": "no task has a reference score in training/reference_scores.yaml"}
    normalized: dict[str, np.ndarray] = {}
    for v in variants:
        columns = []
        for t in tasks:
            (g,) = [g for g in groups if g["variant"] == v and g["env_id"] == t]
            ref = references[t]
            columns.append(
                (np.asarray(g["returns"]) - ref["random"]) / (ref["reference"] - ref["random"])
            )
        runs = min(len(c) for c in columns)  # a matrix needs as many runs on every task
        normalized[v] = np.stack([c[:runs] for c in columns], axis=1)  # (runs, tasks)

    points, cis = _bootstrap(normalized, aggregates, reps)
    result: dict[str, Any] = {
        "tasks": tasks, "normalization": {t: references[t] for t in tasks},
        "variants": {v: {"runs": int(normalized[v].shape[0]),
                         **{name: float(points[v][i])
                            for i, name in enumerate(("iqm", "mean", "optimality_gap"))},
                         **{f"{name}_ci": [float(cis[v][0, i]), float(cis[v][1, i])]
                            for i, name in enumerate(("iqm", "mean", "optimality_gap"))}}
                     for v in variants},
        "normalized_scores": {v: normalized[v].tolist() for v in variants},
    }
    if len(variants) >= 2:
        pairs = {f"{x},{y}": [normalized[x], normalized[y]]
                 for x in variants for y in variants if x != y}
        poi, poi_ci = _bootstrap(pairs, probability_of_improvement, reps)
        result["probability_of_improvement"] = {
            k: {"p": float(np.squeeze(poi[k])),
                "ci": [float(np.squeeze(poi_ci[k][0])), float(np.squeeze(poi_ci[k][1]))]}
            for k in pairs}
    return result


def build_report(out: Path, config: ReportConfig | None = None
                 ) -> tuple[dict[str, Any], list[TrialResult]]:
    """The statistics of sweep directory `out` (report.json's content) and its trials."""
    config = config or ReportConfig()
    results, score = load_results(out)
    groups = []
    for variant in sorted({r.variant for r in results}):
        for task in sorted({r.task for r in results if r.variant == variant}):
            done = sorted((r for r in results if r.variant == variant and r.task == task
                           and r.score is not None),
                          key=lambda r: r.seed)
            group: dict[str, Any] = {"variant": variant, "env_id": task,
                                     "seeds": [r.seed for r in done],
                                     "returns": [r.score for r in done],
                                     "missing": sorted(r.name for r in results
                                                       if r.variant == variant and r.task == task
                                                       and r.score is None)}
            if done:
                group |= group_stats([r.score for r in done if r.score is not None], config.reps)
            groups.append(group)
    report = {"metric": score, "ci": CI_SIZE, "bootstrap_reps": config.reps,
              "curve_bootstrap_reps": config.curve_reps, "groups": groups,
              "aggregate": _aggregate([g for g in groups if g["returns"]], read_references(),
                                      config.reps)}
    return report, results


def _fmt(x: float) -> str:
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Sweep report\n\nFinal score: `{report['metric']}` of each completed trial; IQM "
             f"with its {report['ci']:.0%} stratified-bootstrap CI ({report['bootstrap_reps']} "
             "replications).\n",
             "| variant | task | seeds | per seed | mean +- std | median | IQM [95% CI] |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for g in report["groups"]:
        if not g["returns"]:
            lines.append(f"| {g['variant']} | {g['env_id']} | 0 | | | | |")
            continue
        per_seed = " / ".join(_fmt(x) for x in g["returns"])
        lines.append(f"| {g['variant']} | {g['env_id']} | {len(g['seeds'])} | {per_seed} | "
                     f"{_fmt(g['mean'])} +- {_fmt(g['std'])} | {_fmt(g['median'])} | "
                     f"{_fmt(g['iqm'])} [{_fmt(g['iqm_ci'][0])}, {_fmt(g['iqm_ci'][1])}] |")
    missing = [name for g in report["groups"] for name in g["missing"]]
    if missing:
        lines.append(f"\nNot (yet) completed, left out: {', '.join(missing)}.")
    agg = report["aggregate"]
    if agg.get("tasks"):
        lines += ["", f"## Across tasks: normalized scores on {', '.join(agg['tasks'])}", "",
                  "`(score - random) / (reference - random)`, references in "
                  "training/reference_scores.yaml:", ""]
        lines += [f"- {t}: random {_fmt(r['random'])}, "
                  f"reference {_fmt(r['reference'])} ({r['source']})"
                  for t, r in agg["normalization"].items()]
        lines += ["", "| variant | runs | IQM [95% CI] | mean [95% CI] | optimality gap [95% CI] |",
                  "| --- | --- | --- | --- | --- |"]
        for v, a in agg["variants"].items():
            cells = [f"{a[k]:.3f} [{a[k + '_ci'][0]:.3f}, {a[k + '_ci'][1]:.3f}]"
                     for k in ("iqm", "mean", "optimality_gap")]
            lines.append(f"| {v} | {a['runs']} | {' | '.join(cells)} |")
        if "probability_of_improvement" in agg:
            lines += ["", "| P(X > Y) | [95% CI] |", "| --- | --- |"]
            for pair, p in agg["probability_of_improvement"].items():
                x, y = pair.split(",")
                lines.append(f"| P({x} > {y}) = {p['p']:.3f} | "
                             f"[{p['ci'][0]:.3f}, {p['ci'][1]:.3f}] |")
    elif agg.get("note"):
        lines += ["", f"Across tasks: {agg['note']}."]
    return "\n".join(lines) + "\n"


def _curves(
    results: list[TrialResult], variant: str, task: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """Steps every completed seed evaluated at, and the scores (seeds, steps) there (a running
    trial's shorter curve would cut every seed's to its length)."""
    runs = [r for r in results if r.variant == variant and r.task == task and r.curve
            and r.status == "completed"]
    if not runs:
        return None
    steps = sorted(set.intersection(*(set(r.curve) for r in runs)))
    if not steps:
        return None
    return np.asarray(steps), np.asarray([[r.curve[s] for s in steps] for r in runs])


def write_figures(report: dict[str, Any], results: list[TrialResult], figures: Path
                  ) -> list[Path]:
    """The sample-efficiency curves and, with an aggregate, the performance profile and the
    aggregate intervals, as PNGs in `figures` (curves and profile with the report's
    `curve_bootstrap_reps` draws)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library as rly
    from rliable import plot_utils

    figures.mkdir(parents=True, exist_ok=True)
    for stale in figures.glob("*.png"):  # the report owns this folder: no figure of an older report
        stale.unlink()
    written = []
    references = read_references()
    for task in sorted({r.task for r in results}):
        fig, ax = plt.subplots(figsize=(6, 4))
        drawn = False
        for variant in sorted({r.variant for r in results if r.task == task}):
            found = _curves(results, variant, task)
            if found is None:
                continue
            steps, scores = found

            points, cis = _bootstrap({"x": scores[:, None, :]}, iqm,
                                     report["curve_bootstrap_reps"])
            line, = ax.plot(steps, points["x"], label=f"{variant} ({scores.shape[0]} seeds)")
            ax.fill_between(steps, cis["x"][0], cis["x"][1], alpha=0.2, color=line.get_color())
            drawn = True
        curve = references.get(task, {}).get("curve")
        if curve and drawn:  # a published curve is drawn beside runs of ours, never alone
            ax.plot(curve["steps"], curve["returns"], "k--", label=curve["label"])
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"evaluation score, IQM over seeds ({CI_SIZE:.0%} CI)")
        ax.set_title(task)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        path = figures / f"sample_efficiency_{task}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    agg = report["aggregate"]
    if agg.get("tasks"):
        normalized = {v: np.asarray(s) for v, s in agg["normalized_scores"].items()}
        taus = np.linspace(min(0.0, min(s.min() for s in normalized.values())),
                           max(1.0, max(s.max() for s in normalized.values())), 101)
        profiles, profile_cis = rly.create_performance_profile(
            normalized, taus, reps=report["curve_bootstrap_reps"])
        fig, ax = plt.subplots(figsize=(6, 4))
        plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=profile_cis,
                                             ax=ax, xlabel=r"normalized score $\tau$",
                                             ylabel=r"fraction of runs with score $> \tau$")
        ax.legend(list(normalized), fontsize=8)
        path = figures / "performance_profile.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
        names = ("iqm", "mean", "optimality_gap")
        points = {v: np.array([a[k] for k in names]) for v, a in agg["variants"].items()}
        cis = {v: np.array([[a[k + "_ci"][0] for k in names], [a[k + "_ci"][1] for k in names]])
               for v, a in agg["variants"].items()}
        fig, _ = plot_utils.plot_interval_estimates(points, cis,
                                                    metric_names=["IQM", "Mean", "Optimality gap"],
                                                    algorithms=list(points),
                                                    xlabel="normalized score")
        path = figures / "aggregate_intervals.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def write_report(out: Path, config: ReportConfig, json_path: Path | None = None
                 ) -> dict[str, Any]:
    """Write DIR/report.md, DIR/report.json (or `json_path` too) and DIR/figures/*.png."""
    report, results = build_report(out, config)
    report["figures"] = [str(p.relative_to(out))
                         for p in write_figures(report, results, out / "figures")]
    text = json.dumps(report, indent=1)
    (out / "report.json").write_text(text + "\n")
    (out / "report.md").write_text(markdown(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n")
    return report
