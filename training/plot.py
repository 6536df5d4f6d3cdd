"""Learning curves from run directories, without W&B:
`python -m training.plot RUN [RUN ...] --out curves.png [--metric KEY]`.

Reads each run's metrics.jsonl and draws KEY (default `eval/return_mean`) against `global_step`
(env steps for RL runs). Runs whose resolved configs (config.yaml) agree in everything but the
seed and the logging settings (`seed`, `wandb`, `threads`) form one group: a group of one run is
its curve; a group of several seeds is their mean with a band of +-1 standard deviation across
the seeds (population std), at the steps every seed logged. The legend names each group by
kind and task plus the config keys in which the groups differ, and its seed count.
Exit codes: 0 written; 2 bad input (a missing run, a metric no run logged), one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.config import read_yaml

# Config keys (dotted, or a section's prefix) that do not change what a run learns or how its
# curve is measured: runs that differ only in these are seeds of one group (a shorter run is the
# start of a longer one, so total_steps is among them).
NOT_GROUPED = ("seed", "total_steps", "threads", "wandb.", "checkpoint.", "log.", "eval.video")


@dataclass
class Curve:
    """One run's logged values of a metric."""

    run: Path
    config: dict[str, Any]
    steps: np.ndarray  # (T,) global_step
    values: np.ndarray  # (T,)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'agent': {'lr': 1}} -> {'agent.lr': 1}; lists become tuples (hashable)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = tuple(value) if isinstance(value, list) else value
    return flat


def _grouped(key: str) -> bool:
    """Whether the dotted config key `key` tells groups apart (it is not in NOT_GROUPED)."""
    return not any(key == skip or (skip.endswith(".") and key.startswith(skip))
                   for skip in NOT_GROUPED)


def read_curve(run: Path, metric: str) -> Curve:
    """`metric` against global_step from `run`/metrics.jsonl; ValueError (one line) when absent."""
    metrics_path = run / "metrics.jsonl"
    if not metrics_path.is_file():
        raise ValueError(f"{run} is not a run directory (no metrics.jsonl)")
    config = read_yaml(run / "config.yaml")
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    logged = [(row["global_step"], float(row[metric])) for row in rows if metric in row]
    if not logged:
        keys = sorted({key for row in rows for key in row} - {"global_step"})
        raise ValueError(f"{run} logged no {metric!r}; its metrics are: {', '.join(keys)}")
    steps, values = zip(*logged, strict=True)
    return Curve(run, config, np.asarray(steps), np.asarray(values))


def group_curves(curves: list[Curve]) -> dict[str, list[Curve]]:
    """Curves grouped by config (all but NOT_GROUPED keys), keyed by a legend label."""
    groups: dict[tuple[tuple[str, Any], ...], list[Curve]] = {}
    for curve in curves:
        flat = {key: value for key, value in _flatten(curve.config).items() if _grouped(key)}
        groups.setdefault(tuple(sorted(flat.items(), key=lambda kv: kv[0])), []).append(curve)
    varying = {key for config in groups for key, _ in config
               if len({dict(other).get(key) for other in groups}) > 1}
    labelled = {}
    for config, members in groups.items():
        flat = dict(config)
        task = flat.get("env.id") or flat.get("data.name") or ""
        differences = ", ".join(f"{key}={flat.get(key)}"
                                for key in sorted(varying - {"kind", "env.id"}))
        label = f"{flat.get('kind')} {task}" + (f" ({differences})" if differences else "")
        labelled[f"{label}, {len(members)} seed{'s' if len(members) > 1 else ''}"] = members
    return labelled


def mean_and_std(curves: list[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps every curve logged, and the mean and std across curves there: (S,), (S,), (S,)."""
    common = curves[0].steps
    for curve in curves[1:]:
        common = np.intersect1d(common, curve.steps)
    if common.size == 0:
        raise ValueError(f"the seeds of {curves[0].run} and the others logged at no common step")
    stacked = np.stack([c.values[np.searchsorted(c.steps, common)] for c in curves])  # (R, S)
    return common, stacked.mean(axis=0), stacked.std(axis=0)  # (R, S) -> (S,)


def plot(groups: dict[str, list[Curve]], metric: str, out: Path) -> None:
    """One line per group (its mean when it has several seeds, with a +-1 std band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.4), constrained_layout=True)
    for label, members in groups.items():
        steps, mean, std = mean_and_std(members)
        (line,) = ax.plot(steps, mean, label=textwrap.fill(label, 110))
        if len(members) > 1:
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("global_step (env steps)")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=8)  # below the axes: labels can be long
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.plot",
                                     description="Learning curves of train.py runs "
                                                 "from their metrics.jsonl.")
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    parser.add_argument("--out", required=True, type=Path, metavar="PNG",
                        help="where to write the figure")
    parser.add_argument("--metric", default="eval/return_mean",
                        help="metrics.jsonl key to draw (default eval/return_mean)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; bad input exits 2 via argparse with one line."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.out.suffix.lower() != ".png":
        parser.error(f"--out writes a PNG; give a path ending in .png, got {args.out}")
    try:
        groups = group_curves([read_curve(run, args.metric) for run in args.runs])
        plot(groups, args.metric, args.out)
    except ValueError as e:  # ConfigError (config.yaml), a missing run or metric
        print(f"error: {e}", file=sys.stderr)
        return 2
    for label, members in groups.items():
        print(f"{label}: {', '.join(str(m.run) for m in members)}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
