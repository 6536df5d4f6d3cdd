"""Bayesian regression: the three weight-noise estimators next to a plain network, and the
gradient variance of each estimator against the minibatch size.

    nice -n 5 python benchmarks/bnn_estimators.py --config configs/bnn_diabetes.yaml --seeds 0 1 2 \
        --json benchmarks/results/bnn_diabetes.json --plot docs/bnn_grad_variance.png

For each seed the config's model is trained once per estimator (global, local, flipout) and
once with point weights (`model.bayesian=false`, the plain network), each for the config's
`total_steps`, seeded and driven the way train.py drives a run (no sinks or checkpoints).
The first table gives test RMSE and test log-likelihood (nats per example, in the target's
units) as mean +- std over seeds.

Then, at the trained parameters of each seed's run with the config's own estimator, the trace
of the covariance of the minibatch ELBO gradient in the weights' (mu, rho) is measured for
every estimator on the same minibatch (the first B training examples) for each B in
`--batch-sizes`, from `--repeats` independent estimates each. The second table gives the
traces and the ratios global / local and global / flipout (mean +- std over seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from bnn.layers import ESTIMATORS  # noqa: E402
from bnn.trainer import RNG_SEED_OFFSET, BNNLearner, weight_gradient_variance  # noqa: E402
from estimators.variance import seeded_rng  # noqa: E402
from training.config import BNNRunConfig, ConfigError, load_config  # noqa: E402
from training.loop import seed_everything  # noqa: E402
from training.runtime import configure_torch  # noqa: E402

# The variants trained per seed: each estimator, and the plain network ("point" weights).
VARIANTS = (*ESTIMATORS, "plain")


def train(config: BNNRunConfig, variant: str, seed: int) -> tuple[BNNLearner, float]:
    """One run to total_steps; returns the learner and the seconds its advance() calls took."""
    seed_everything(seed)
    estimator = config.estimator if variant == "plain" else variant
    model = (dataclasses.replace(config.model, bayesian=False) if variant == "plain"
             else config.model)
    learner = BNNLearner(config.data, model, config.optim, estimator, 0, seed, torch.device("cpu"))
    started = time.perf_counter()
    while learner.step < config.total_steps:
        learner.advance(log=False)
    return learner, time.perf_counter() - started


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def variance_by_batch_size(learner: BNNLearner, batch_sizes: list[int],
                           repeats: int) -> dict[str, dict[str, float]]:
    """Per batch size B: the weight-gradient variance trace of every estimator
    on the first B examples."""
    data = learner.dataset
    result = {}
    for batch in batch_sizes:
        with seeded_rng(learner.seed + 3 * RNG_SEED_OFFSET + batch, learner.device):
            result[str(batch)] = weight_gradient_variance(learner.model, data.train_x[:batch],
                                                          data.train_y[:batch], learner.num_train,
                                                          ESTIMATORS, repeats)
    return result


def plot(by_batch: dict[str, dict[str, dict[str, float]]], path: Path, title: str) -> None:
    """Variance trace against B, log-log, one line per estimator (mean over seeds, +-1 std)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = figure.subplots()
    sizes = [int(b) for b in by_batch]
    for name, colour in zip(ESTIMATORS, ("tab:red", "tab:blue", "tab:green"), strict=True):
        mean = [by_batch[str(b)][name]["mean"] for b in sizes]
        std = [by_batch[str(b)][name]["std"] for b in sizes]
        ax.errorbar(sizes, mean, yerr=std, marker="o", capsize=3, color=colour, label=name)
    ax.set(xscale="log", yscale="log", xlabel="minibatch size B",
           ylabel="trace of the weight-gradient covariance", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "bnn_diabetes.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--repeats", type=int, default=64,
                        help="gradient estimates per variance, >= 2")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--plot", type=Path,
                        help="write the variance-against-batch-size figure here (PNG)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, as for train.py")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as e:
        parser.error(str(e))
    if not isinstance(config, BNNRunConfig):
        parser.error(f"{args.config} is a kind: {config.kind} config; "
                     "this benchmark needs kind: bnn")
    if args.repeats < 2 or min(args.batch_sizes) < 1:
        parser.error("--repeats must be >= 2 and every --batch-sizes entry >= 1")
    configure_torch(config.threads)

    runs: list[dict[str, Any]] = []
    variance_runs = []
    for seed in args.seeds:
        for variant in VARIANTS:
            learner, seconds = train(config, variant, seed)
            summary = learner.summary()
            runs.append({"variant": variant, "seed": seed, "train_seconds": seconds, **summary})
            print(f"{variant:<8} seed {seed}: test RMSE {summary['test_rmse']:.3f}, "
                  f"test LL {summary['test_log_likelihood']:.3f}, {seconds:.0f} s", flush=True)
            if variant == config.estimator:
                too_big = [b for b in args.batch_sizes if b > learner.num_train]
                if too_big:
                    parser.error(f"--batch-sizes {too_big} exceed the "
                                 f"{learner.num_train} training examples")
                variance_runs.append(
                    variance_by_batch_size(learner, args.batch_sizes, args.repeats)
                )

    by_variant = {variant: {key: spread([r[key] for r in runs if r["variant"] == variant])
                            for key in ("test_rmse", "test_log_likelihood", "train_seconds")}
                  for variant in VARIANTS}
    by_batch: dict[str, dict[str, dict[str, float]]] = {}
    for batch in map(str, args.batch_sizes):
        per_seed = [run[batch] for run in variance_runs]
        by_batch[batch] = {name: spread([v[name] for v in per_seed]) for name in ESTIMATORS} | {
            "ratio_global_local": spread([v["global"] / v["local"] for v in per_seed]),
            "ratio_global_flipout": spread([v["global"] / v["flipout"] for v in per_seed]),
        }

    print(f"\n{config.data.name}, {config.total_steps} steps, seeds {args.seeds} (mean +- std)\n")
    print("| weights | test RMSE | test log-likelihood (nats) |")
    print("| --- | --- | --- |")
    for variant, row in by_variant.items():
        name = "plain network" if variant == "plain" else f"mean-field, {variant}"
        print(f"| {name} | {row['test_rmse']['mean']:.2f} +- {row['test_rmse']['std']:.2f} | "
              f"{row['test_log_likelihood']['mean']:.3f} +- "
              f"{row['test_log_likelihood']['std']:.3f} |")
    print(f"\nweight-gradient variance trace at the trained `{config.estimator}` parameters, "
          f"{args.repeats} estimates each\n")
    print("| B | global | local | flipout | global / local | global / flipout |")
    print("| --- | --- | --- | --- | --- | --- |")
    for batch, row in by_batch.items():
        cells = [f"{row[name]['mean']:.3g}" for name in ESTIMATORS]
        ratios = [f"{row[key]['mean']:.2f} +- {row[key]['std']:.2f}"
                  for key in ("ratio_global_local", "ratio_global_flipout")]
        print(f"| {batch} | {' | '.join(cells)} | {' | '.join(ratios)} |")

    result = {"config": str(args.config), "overrides": args.overrides, "dataset": config.data.name,
              "total_steps": config.total_steps, "seeds": args.seeds, "repeats": args.repeats,
              "by_variant": by_variant, "grad_var_trace_by_batch_size": by_batch,
              "runs": runs, "variance_runs": variance_runs}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        plot(by_batch, args.plot,
             f"{config.data.name}: weight-gradient variance at trained parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
