"""Pathwise vs score-function encoder gradients on the same VAE, several seeds each.

    python -m vae.compare [--steps 3000] [--seeds 0 1 2] [--threads 1] [--json OUT]
                          [--plot OUT.png] [--figures DIR]
    python -m vae.compare --posteriors diagonal planar coupling [--flow-steps 4] [...]
    python -m vae.compare --posteriors diagonal planar coupling --time-rounds 10 [--json OUT]

Trains the model of configs/vae_digits.yaml (the dataclass defaults, which that file repeats)
once per (estimator, seed) for the same number of optimizer steps, then prints the test ELBO
and IWAE bound (nats per example, higher is better), the training wall time, and the ratio
of the encoder-gradient variance traces, score function / pathwise, measured at the same
parameters and minibatch every ``--grad-variance-every`` steps. ``--plot`` draws validation
ELBO and both variance traces against the step; ``--figures`` writes the three VAE figures of
the first pathwise run.

With ``--posteriors`` it compares posteriors instead, all trained with the pathwise estimator
for the same budget: the diagonal Gaussian and that Gaussian pushed through ``--flow-steps``
planar or affine coupling steps. It prints the test ELBO, the IWAE bound (K=64, weighted by
the flow's exact log q), their gap and the median wall-clock time of a training step.
``--time-rounds R`` trains nothing to the end: it times ``TIMED_STEPS`` training steps of
each posterior in turn, R rounds, so every posterior sees the same load on a shared machine,
and prints the median milliseconds per step.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from vae.config import DataConfig, ModelConfig, OptimConfig
from vae.objectives import ESTIMATORS
from vae.trainer import VAELearner

# --posteriors choices: the diagonal Gaussian, or it pushed through planar / coupling flow steps.
POSTERIORS = ("diagonal", "planar", "coupling")
# Training steps of one posterior per timing round (--time-rounds).
TIMED_STEPS = 50


def train_one(estimator: str, seed: int, steps: int, every: int, device: torch.device,
              model: ModelConfig | None = None) -> dict[str, Any]:
    """Train one model; the curve has validation ELBO and gradient statistics every ``every`` steps.

    ``step_ms`` is the median wall-clock time of the steps that log nothing (no diagnostics).
    """
    torch.manual_seed(seed)  # the global RNG drives the latent noise, as train.py seeds it
    learner = VAELearner(DataConfig(), model or ModelConfig(), OptimConfig(), estimator, every,
                         seed, device)
    curve: list[dict[str, float]] = []
    train_seconds = 0.0
    quiet_seconds = []
    while learner.step < steps:
        log = (learner.step + 1) % every == 0
        started = time.perf_counter()
        metrics = learner.advance(log)
        seconds = time.perf_counter() - started
        train_seconds += seconds
        if log:
            curve.append(
                {"step": learner.step, **metrics, "val/elbo": learner.evaluate()["val/elbo"]}
            )
        else:
            quiet_seconds.append(seconds)
    step_ms = 1e3 * statistics.median(quiet_seconds) if quiet_seconds else math.nan
    return {"estimator": estimator, "seed": seed, "train_seconds": train_seconds,
            "step_ms": step_ms, "curve": curve, **learner.summary(), "learner": learner}


def mean_and_stdev(
    runs: list[dict[str, Any]], keys: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Across-seed mean and sample standard deviation (0 for one seed) of each key."""
    return {key: {"mean": statistics.mean(r[key] for r in runs),
                  "stdev": statistics.stdev(r[key] for r in runs) if len(runs) > 1 else 0.0}
            for key in keys}


def posterior_config(posterior: str, flow_steps: int) -> ModelConfig:
    """The default model with the named posterior: diagonal, or a planar / coupling flow."""
    if posterior == "diagonal":
        return ModelConfig()
    return ModelConfig(posterior="flow", flow="planar" if posterior == "planar" else "coupling",
                       flow_steps=flow_steps)


def time_posteriors(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Median ms per training step of each posterior, timed in interleaved rounds."""
    torch.manual_seed(0)
    learners = {p: VAELearner(DataConfig(), posterior_config(p, args.flow_steps), OptimConfig(),
                              "pathwise", 0, 0, device) for p in args.posteriors}
    rounds: dict[str, list[float]] = {p: [] for p in args.posteriors}
    for _ in range(args.time_rounds):
        for posterior, learner in learners.items():
            started = time.perf_counter()
            for _ in range(TIMED_STEPS):
                learner.advance(False)
            rounds[posterior].append(1e3 * (time.perf_counter() - started) / TIMED_STEPS)
    print(f"{'posterior':<10} {'median ms/step':>14} {'min':>8} {'max':>8}   "
          f"({args.time_rounds} rounds of {TIMED_STEPS})")
    for posterior, times in rounds.items():
        print(f"{posterior:<10} {statistics.median(times):>14.2f} {min(times):>8.2f} "
              f"{max(times):>8.2f}")
    return {"threads": args.threads, "flow_steps": args.flow_steps, "timed_steps": TIMED_STEPS,
            "ms_per_step_by_round": rounds,
            "median_ms_per_step": {p: statistics.median(t) for p, t in rounds.items()}}


def compare_posteriors(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Each posterior x seed with the pathwise estimator; prints one row per run and a summary."""
    runs = []
    print(f"{'posterior':<10} {'seed':>4} {'test_elbo':>10} {'test_iwae':>10} {'gap':>6} "
          f"{'ms/step':>8}")
    for posterior in args.posteriors:
        model = posterior_config(posterior, args.flow_steps)
        for seed in args.seeds:
            run = train_one("pathwise", seed, args.steps, args.grad_variance_every, device, model)
            del run["learner"]
            run |= {"posterior": posterior, "gap": run["test_iwae"] - run["test_elbo"]}
            print(f"{posterior:<10} {seed:>4} {run['test_elbo']:>10.2f} {run['test_iwae']:>10.2f} "
                  f"{run['gap']:>6.2f} {run['step_ms']:>8.2f}", flush=True)
            runs.append(run)
    result: dict[str, Any] = {"steps": args.steps, "seeds": args.seeds, "threads": args.threads,
                              "flow_steps": args.flow_steps, "by_posterior": {}}
    for posterior in args.posteriors:
        summary = mean_and_stdev([r for r in runs if r["posterior"] == posterior],
                                 ("test_elbo", "test_iwae", "gap", "test_kl", "step_ms"))
        result["by_posterior"][posterior] = summary
        print(f"{posterior}: test ELBO "
              f"{summary['test_elbo']['mean']:.2f} +- {summary['test_elbo']['stdev']:.2f}, "
              f"IWAE {summary['test_iwae']['mean']:.2f} +- {summary['test_iwae']['stdev']:.2f}, "
              f"gap {summary['gap']['mean']:.2f} +- {summary['gap']['stdev']:.2f}, "
              f"{summary['step_ms']['mean']:.2f} ms/step")
    result["runs"] = runs
    return result


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """Validation ELBO and encoder-gradient variance traces against the step, one line per run."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    elbo_ax, var_ax = figure.subplots(1, 2)
    colours = {"pathwise": "tab:blue", "score_function": "tab:red"}
    for run in runs:
        steps = [point["step"] for point in run["curve"]]
        label = f"{run['estimator']} (seed {run['seed']})"
        elbo_ax.plot(steps, [p["val/elbo"] for p in run["curve"]], color=colours[run["estimator"]],
                     label=label)
        var_ax.plot(steps, [p["grad/encoder_var_trace"] for p in run["curve"]],
                    color=colours[run["estimator"]], label=label, marker="o", markersize=3)
    elbo_ax.set(xlabel="optimizer step", ylabel="validation ELBO (nats / image)",
                title="ELBO: same model, same budget, two encoder gradients")
    var_ax.set(xlabel="optimizer step", ylabel="trace of encoder-gradient covariance", yscale="log",
               title="variance of the estimator each run trains with")
    elbo_ax.legend(fontsize=7)
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000,
                        help="optimizer steps per run (configs/vae_digits.yaml)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--grad-variance-every", type=int, default=250,
                        help="curve and diagnostics interval")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest for this small model)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--plot", type=Path, help="write the ELBO / variance figure here (PNG)")
    parser.add_argument("--figures", type=Path,
                        help="write the first pathwise run's VAE figures into this folder")
    parser.add_argument("--posteriors", nargs="+", choices=POSTERIORS,
                        help="compare these posteriors (pathwise estimator) "
                             "instead of the two estimators")
    parser.add_argument("--flow-steps", type=int, default=4, help="steps of each flow posterior")
    parser.add_argument("--time-rounds", type=int, default=0,
                        help="with --posteriors: only time training steps, "
                             "in this many interleaved rounds")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.grad_variance_every < 1 or args.threads < 1 or args.flow_steps < 1:
        parser.error("--steps, --grad-variance-every, --threads and --flow-steps must be positive")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    if args.posteriors:
        if args.plot or args.figures:
            parser.error("--plot and --figures belong to the estimator comparison, "
                         "not --posteriors")
        posterior_result = (time_posteriors(args, device) if args.time_rounds > 0
                            else compare_posteriors(args, device))
        if args.json:
            args.json.write_text(json.dumps(posterior_result, indent=2) + "\n")
        return 0

    runs = []
    print(f"{'estimator':<15} {'seed':>4} {'test_elbo':>10} {'test_iwae':>10} {'var ratio':>10} "
          f"{'train s':>8}")
    for estimator in ESTIMATORS:
        for seed in args.seeds:
            run = train_one(estimator, seed, args.steps, args.grad_variance_every, device)
            run["var_ratio_median"] = statistics.median(p["grad/encoder_var_ratio"]
                                                        for p in run["curve"])
            print(f"{estimator:<15} {seed:>4} {run['test_elbo']:>10.2f} {run['test_iwae']:>10.2f} "
                  f"{run['var_ratio_median']:>10.1f} {run['train_seconds']:>8.1f}", flush=True)
            if args.figures and estimator == "pathwise" and seed == args.seeds[0]:
                run["learner"].write_figures(args.figures)
            del run["learner"]
            runs.append(run)

    result: dict[str, Any] = {"steps": args.steps, "seeds": args.seeds, "threads": args.threads,
                              "by_estimator": {}}
    for estimator in ESTIMATORS:
        mine = [r for r in runs if r["estimator"] == estimator]
        result["by_estimator"][estimator] = mean_and_stdev(
            mine, ("test_elbo", "test_iwae", "test_recon_nll", "test_kl", "train_seconds",
                   "var_ratio_median"))
        summary = result["by_estimator"][estimator]
        print(f"{estimator}: test ELBO "
              f"{summary['test_elbo']['mean']:.2f} +- {summary['test_elbo']['stdev']:.2f}, "
              f"IWAE {summary['test_iwae']['mean']:.2f}, "
              "median variance ratio (score function / pathwise) "
              f"{summary['var_ratio_median']['mean']:.1f}")
    result["runs"] = runs
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        plot(runs, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
