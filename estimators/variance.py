"""Statistics of repeated gradient estimates, and the toy-problem command line.

Library part: draw K independent gradient estimates of any parameter set
(`gradient_samples`) and summarise them (`gradient_stats`): per-parameter mean and variance,
the variance trace, the signal-to-noise ratio and the cosine similarity to a reference.

Command line (DESIGN.md, "Estimator toy problems"):

    python -m estimators.variance --problem {linear,quadratic,residual,lognormal} \
        --mu M --sigma S --samples N [--seed K] [--json OUT] [--plot OUT.png]

compares, for E_{z ~ N(M, S^2)}[f(z)], the sample mean and variance of N one-sample estimates
of (d/dmu, d/dsigma) with the closed forms of `estimators.problems`. The plot sweeps sigma
over [S/100, S] on log axes: measured variances as markers, closed forms as lines.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from estimators.problems import (
    ESTIMATORS,
    PROBLEMS,
    GradientMoments,
    ToyProblem,
    one_sample_gradients,
)

__all__ = ["GradientStats", "gradient_samples", "gradient_stats", "main"]


@dataclass(frozen=True)
class GradientStats:
    """Summary of K gradient estimates g_1..g_K of P parameters.

    Shapes: mean (P,), var (P,); the rest are python scalars.
    """

    # Per-parameter sample mean of the estimates.
    mean: Tensor
    # Per-parameter unbiased sample variance (divides by K - 1).
    var: Tensor
    # Sum of `var`: the trace of the estimator's covariance matrix.
    var_trace: float
    # ||mean||_2 / sqrt(var_trace) (Rainforth et al. 2018, generalised from one parameter);
    # inf for a noise-free nonzero gradient, 0 when the mean is exactly 0.
    snr: float
    # Mean over the K estimates of cos(g_k, reference); None without a reference.
    cosine_to_reference: float | None
    # K, the number of estimates summarised.
    num_samples: int


@contextmanager
def seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block on a private copy of torch's global RNG (CPU, and `device` if CUDA),
    seeded with `seed`; the global state is restored on exit. Gradient statistics measured
    inside it are reproducible and never shift the noise a training run draws next."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def gradient_samples(
    estimate: Callable[[], Tensor], params: Sequence[Tensor], num_samples: int
) -> Tensor:
    """K independent gradient estimates: calls `estimate()` K times and differentiates each.

    `estimate()` must draw fresh noise and return a 0-dim surrogate (e.g. from
    `estimators.gradients`). Parameters it does not use get zero gradient. The parameters'
    `.grad` fields are left untouched.

    Shapes: params P_i-element tensors (P = sum P_i) -> returns (K, P), detached.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    params = list(params)
    if not params or not all(p.requires_grad for p in params):
        raise ValueError("params must be a non-empty sequence of tensors with requires_grad=True")
    rows = []
    for _ in range(num_samples):
        surrogate = estimate()
        if surrogate.dim() != 0:
            raise ValueError(f"estimate() must return a 0-dim surrogate, got shape {tuple(surrogate.shape)}")
        if surrogate.grad_fn is None:
            raise ValueError("estimate() returned a surrogate that does not depend on params (no grad_fn)")
        grads = torch.autograd.grad(surrogate, params, allow_unused=True)
        flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
        rows.append(torch.cat([g.reshape(-1) for g in flat]))  # P_i each -> (P,)
    return torch.stack(rows)  # K x (P,) -> (K, P)


def gradient_stats(samples: Tensor, reference: Tensor | None = None) -> GradientStats:
    """Mean, variance, variance trace, SNR and cosine to `reference` of K estimates.

    Shapes: samples (K, P) with K >= 2; reference (P,) or None.
    """
    if samples.dim() != 2 or samples.shape[0] < 2:
        raise ValueError(f"samples must have shape (K, P) with K >= 2, got {tuple(samples.shape)}")
    mean = samples.mean(dim=0)  # (K, P) -> (P,)
    var = samples.var(dim=0, correction=1)  # (K, P) -> (P,)
    var_trace = float(var.sum())  # (P,) -> ()
    norm = float(mean.norm())  # (P,) -> ()
    noise_free = math.inf if norm > 0 else 0.0
    snr = norm / math.sqrt(var_trace) if var_trace > 0 else noise_free
    cosine = None
    if reference is not None:
        if reference.shape != samples.shape[1:]:
            raise ValueError(
                f"shape mismatch: reference {tuple(reference.shape)} vs one sample {tuple(samples.shape[1:])}"
            )
        cosines = F.cosine_similarity(samples, reference.unsqueeze(0), dim=1)  # (K, P) -> (K,)
        cosine = float(cosines.mean())  # (K,) -> ()
    return GradientStats(mean, var, var_trace, snr, cosine, int(samples.shape[0]))


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

# Toy-problem gradients are estimated for these parameters, in this order.
PARAM_NAMES = ("mu", "sigma")


def _measure(
    problem: ToyProblem, mu: float, sigma: float, num_samples: int, seed: int
) -> dict[str, tuple[GradientStats, GradientMoments]]:
    """Per estimator: statistics of N one-sample estimates, and the closed form."""
    return {
        name: (
            gradient_stats(one_sample_gradients(problem, name, mu, sigma, num_samples, seed)),
            problem.moments(name, mu, sigma),
        )
        for name in ESTIMATORS
    }


def _table(
    problem: ToyProblem, mu: float, sigma: float, num_samples: int, seed: int,
    results: dict[str, tuple[GradientStats, GradientMoments]],
) -> str:
    """The stdout report: one row per (estimator, parameter)."""
    header = (
        f"problem {problem.name}: {problem.formula}, z ~ N(mu={mu:g}, sigma={sigma:g}^2); "
        f"{num_samples} one-sample estimates, seed {seed}"
    )
    columns = f"{'estimator':<24} {'grad':<8} {'mean':>12} {'analytic':>12} {'std.err':>10} {'var':>12} {'analytic':>12}"
    lines = [header, columns, "-" * len(columns)]
    for name, (stats, moments) in results.items():
        for i, param in enumerate(PARAM_NAMES):
            mean, var = float(stats.mean[i]), float(stats.var[i])
            std_err = math.sqrt(var / num_samples)  # standard error of the sample mean
            lines.append(
                f"{name:<24} {'d/d' + param:<8} {mean:>12.5g} {moments.mean[i]:>12.5g} "
                f"{std_err:>10.2g} {var:>12.5g} {moments.var[i]:>12.5g}"
            )
    return "\n".join(lines)


def _plot(problem: ToyProblem, mu: float, sigma: float, num_samples: int, seed: int, out: Path) -> None:
    """Variance of each estimator against sigma in [sigma/100, sigma], one panel per parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sigmas = [sigma * 10.0 ** (k / 6.0 - 2.0) for k in range(13)]  # log-spaced, sigma/100 .. sigma
    measured = [_measure(problem, mu, s, num_samples, seed) for s in sigmas]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    for i, (ax, param) in enumerate(zip(axes, PARAM_NAMES, strict=True)):
        positive = []
        for name, color in zip(ESTIMATORS, ("tab:blue", "tab:red", "tab:orange"), strict=True):
            analytic = [m[name][1].var[i] for m in measured]
            sampled = [float(m[name][0].var[i]) for m in measured]
            ax.plot(sigmas, analytic, color=color, label=f"{name} (closed form)")
            ax.plot(sigmas, sampled, "o", color=color, markersize=4, label=f"{name} (measured)")
            positive += [v for v in analytic if v > 0]
        ax.set_xscale("log")
        if len(positive) < len(ESTIMATORS) * len(sigmas):
            # A zero variance (e.g. pathwise d/dmu of the linear f) has no place on a log axis:
            # symlog keeps it visible as a flat line at 0.
            linthresh = 10.0 ** math.floor(math.log10(min(positive)))
            ax.set_yscale("symlog", linthresh=linthresh)
            ax.set_ylim(bottom=-0.5 * linthresh)  # variances are >= 0: show only a margin below 0
        else:
            ax.set_yscale("log")
        ax.set_xlabel("sigma")
        ax.set_ylabel(f"variance of one-sample d/d{param} estimate")
        ax.set_title(f"d/d{param}")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(f"{problem.formula}, z ~ N(mu={mu:g}, sigma^2); {num_samples} estimates per point")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m estimators.variance",
        description="Mean and variance of one-sample gradient estimators of E_{z~N(mu,sigma^2)}[f(z)] "
        "next to their closed forms.",
    )
    parser.add_argument("--problem", required=True, choices=list(PROBLEMS), help="toy objective f")
    parser.add_argument("--mu", required=True, type=float, help="mean of z (residual: must be 0)")
    parser.add_argument("--sigma", required=True, type=float, help="standard deviation of z, > 0")
    parser.add_argument("--samples", required=True, type=int, help="number N of one-sample estimates, >= 2")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draws")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--plot", type=Path, help="write a PNG sweeping sigma over [sigma/100, sigma]")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m estimators.variance`; bad input exits 2 via argparse."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error(f"--samples must be >= 2 (a variance needs two estimates), got {args.samples}")
    problem = PROBLEMS[args.problem]
    try:
        problem.check(args.mu, args.sigma)
    except ValueError as err:
        parser.error(str(err))

    results = _measure(problem, args.mu, args.sigma, args.samples, args.seed)
    print(_table(problem, args.mu, args.sigma, args.samples, args.seed, results))
    if args.json is not None:
        report = {
            "problem": problem.name,
            "mu": args.mu,
            "sigma": args.sigma,
            "samples": args.samples,
            "estimators": {
                name: {
                    "mean": stats.mean.tolist(),
                    "var": stats.var.tolist(),
                    "analytic_mean": list(moments.mean),
                    "analytic_var": list(moments.var),
                }
                for name, (stats, moments) in results.items()
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot is not None:
        _plot(problem, args.mu, args.sigma, args.samples, args.seed, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
