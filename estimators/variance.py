"""Statistics of repeated gradient estimates, and the toy-problem command line.

Library part: draw K independent gradient estimates of any parameter set
(`gradient_samples`) and summarise them (`gradient_stats`): per-parameter mean and variance,
the variance trace, the signal-to-noise ratio and the cosine similarity to a reference.

Command line (README.md, "The estimator core"):

    python -m estimators.variance --problem {linear,quadratic,residual,lognormal} \
        --mu M --sigma S [--distribution {normal,laplace,logistic}] --samples N \
        [--seed K] [--json OUT] [--plot OUT.png]

compares, for E_{z = M + S eps}[f(z)] with eps from the family (normal: z ~ N(M, S^2)), the
sample mean and variance of N one-sample estimates of (d/dmu, d/dsigma) with the closed forms
of `estimators.problems`. The plot sweeps sigma over [S/100, S] on log axes: measured
variances as markers, closed forms as lines.

    python -m estimators.variance --problem exponential --rate R --samples N ...

does the same for d/drate E_{x ~ Exp(R)}[x^2] through the inverse-CDF sampler
(`estimators.exponential_problem`), and

    python -m estimators.variance --problem categorical --logits a,b,c --costs x,y,z \
        [--temperature T] [--temperatures T1,T2,...] [--draws S] --samples N ...

measures the five estimators of `estimators.categorical` (N estimates of S draws each)
against the exact gradient: mean, variance and bias per logit and their norms, at T, and with
--temperatures a sweep of the Gumbel-Softmax bias and variance (with --plot, a PNG of it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from estimators.categorical import CATEGORICAL_ESTIMATORS, CategoricalProblem
from estimators.exponential_problem import ExponentialSecondMoment
from estimators.problems import (
    ESTIMATORS,
    FAMILIES,
    PROBLEM_TYPES,
    GradientMoments,
    ToyProblem,
    one_sample_gradients,
    toy_problem,
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
            raise ValueError("estimate() must return a 0-dim surrogate, got shape "
                             f"{tuple(surrogate.shape)}")
        if surrogate.grad_fn is None:
            raise ValueError("estimate() returned a surrogate that does not depend on params "
                             "(no grad_fn)")
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
                f"shape mismatch: reference {tuple(reference.shape)} vs one sample "
                f"{tuple(samples.shape[1:])}"
            )
        cosines = F.cosine_similarity(samples, reference.unsqueeze(0), dim=1)  # (K, P) -> (K,)
        cosine = float(cosines.mean())  # (K,) -> ()
    return GradientStats(mean, var, var_trace, snr, cosine, int(samples.shape[0]))


# --------------------------------------------------------------------------------------------
# Command line: location-scale and exponential problems
# --------------------------------------------------------------------------------------------

# Toy-problem gradients are estimated for these parameters, in this order.
PARAM_NAMES = ("mu", "sigma")
# How a table names the distribution of z, per family.
FAMILY_LABELS = {
    "normal": "z ~ N(mu, sigma^2)",
    "laplace": "z ~ Laplace(loc mu, scale sigma)",
    "logistic": "z ~ Logistic(loc mu, scale sigma)",
}

# Per estimator: statistics of N one-sample estimates, and the closed form.
Results = dict[str, tuple[GradientStats, GradientMoments]]


def _measure(problem: ToyProblem, mu: float, sigma: float, num_samples: int, seed: int) -> Results:
    """Per estimator: statistics of N one-sample estimates, and the closed form."""
    return {
        name: (
            gradient_stats(one_sample_gradients(problem, name, mu, sigma, num_samples, seed)),
            problem.moments(name, mu, sigma),
        )
        for name in ESTIMATORS
    }


def _table(header: str, param_names: Sequence[str], num_samples: int, results: Results) -> str:
    """The stdout report: one row per (estimator, parameter)."""
    columns = (f"{'estimator':<24} {'grad':<8} {'mean':>12} {'analytic':>12} {'std.err':>10} "
               f"{'var':>12} {'analytic':>12}")
    lines = [header, columns, "-" * len(columns)]
    for name, (stats, moments) in results.items():
        for i, param in enumerate(param_names):
            mean, var = float(stats.mean[i]), float(stats.var[i])
            std_err = math.sqrt(var / num_samples)  # standard error of the sample mean
            lines.append(
                f"{name:<24} {'d/d' + param:<8} {mean:>12.5g} {moments.mean[i]:>12.5g} "
                f"{std_err:>10.2g} {var:>12.5g} {moments.var[i]:>12.5g}"
            )
    return "\n".join(lines)


def _estimators_json(results: Results) -> dict[str, dict[str, list[float]]]:
    return {
        name: {
            "mean": stats.mean.tolist(),
            "var": stats.var.tolist(),
            "analytic_mean": list(moments.mean),
            "analytic_var": list(moments.var),
        }
        for name, (stats, moments) in results.items()
    }


def _plot(
    problem: ToyProblem, mu: float, sigma: float, num_samples: int, seed: int, out: Path
) -> None:
    """Variance of each estimator against sigma in [sigma/100, sigma], one panel per parameter."""
    plt = _pyplot()
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
    label = FAMILY_LABELS[problem.family.name]
    fig.suptitle(f"{problem.formula}, {label}, mu={mu:g}; {num_samples} estimates per point")
    _save(fig, out)


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, imported only when a plot is asked for."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    _pyplot().close(fig)


def _run_location_scale(args: argparse.Namespace) -> dict[str, object]:
    problem = toy_problem(args.problem, args.distribution)
    results = _measure(problem, args.mu, args.sigma, args.samples, args.seed)
    header = (
        f"problem {problem.name}: {problem.formula}, {FAMILY_LABELS[args.distribution]}, "
        f"mu={args.mu:g}, sigma={args.sigma:g}; "
        f"{args.samples} one-sample estimates, seed {args.seed}"
    )
    print(_table(header, PARAM_NAMES, args.samples, results))
    if args.plot is not None:
        _plot(problem, args.mu, args.sigma, args.samples, args.seed, args.plot)
    return {
        "problem": problem.name,
        "distribution": args.distribution,
        "mu": args.mu,
        "sigma": args.sigma,
        "samples": args.samples,
        "estimators": _estimators_json(results),
    }


def _run_exponential(args: argparse.Namespace) -> dict[str, object]:
    problem = ExponentialSecondMoment()
    results = {
        name: (
            gradient_stats(problem.one_sample_gradients(name, args.rate, args.samples, args.seed)),
            problem.moments(name, args.rate),
        )
        for name in ESTIMATORS
    }
    header = (
        f"problem {problem.name}: {problem.formula}, rate={args.rate:g}, x = -log(1 - u) / rate; "
        f"{args.samples} one-sample estimates, seed {args.seed}"
    )
    print(_table(header, problem.param_names, args.samples, results))
    return {
        "problem": problem.name,
        "rate": args.rate,
        "samples": args.samples,
        "estimators": _estimators_json(results),
    }


# --------------------------------------------------------------------------------------------
# Command line: the categorical problem and its temperature sweep
# --------------------------------------------------------------------------------------------

# The estimators whose bias and variance depend on the temperature.
RELAXED = ("gumbel_softmax", "straight_through")


@dataclass(frozen=True)
class CategoricalResult:
    """One estimator's N estimates of S draws each, summarised against the exact gradient."""

    # Mean, variance, ... of the N estimates.
    stats: GradientStats
    # Closed-form mean and variance; None where there is none.
    moments: GradientMoments | None
    # mean - exact gradient, per logit: (K,).
    bias: Tensor

    @property
    def bias_norm(self) -> float:
        return float(self.bias.norm())  # (K,) -> ()

    @property
    def noise_floor(self) -> float:
        """sqrt(trace var / N): the size of |bias| the N estimates cannot tell from 0."""
        return math.sqrt(self.stats.var_trace / self.stats.num_samples)


def _measure_categorical(
    problem: CategoricalProblem, names: Sequence[str], temperature: float, draws: int,
    num_samples: int, seed: int,
) -> dict[str, CategoricalResult]:  # fmt: skip
    exact = torch.tensor(problem.exact_gradient(), dtype=torch.float64)
    results = {}
    for name in names:
        stats = gradient_stats(problem.estimates(name, temperature, draws, num_samples, seed))
        results[name] = CategoricalResult(stats, problem.moments(name, draws), stats.mean - exact)
    return results


def _categorical_table(
    problem: CategoricalProblem, args: argparse.Namespace, results: dict[str, CategoricalResult]
) -> str:
    exact = problem.exact_gradient()
    header = (
        f"problem categorical: f(z) = costs . z, z ~ Categorical(softmax(logits)), "
        f"logits {list(problem.logits)}, costs {list(problem.costs)}, "
        f"temperature {args.temperature:g}; {args.samples} estimates of {args.draws} draws "
        f"each, seed {args.seed}\n"
        f"exact gradient p * (c - p . c) = [{', '.join(f'{g:.5g}' for g in exact)}]"
    )
    columns = (
        f"{'estimator':<24} {'grad':<11} {'mean':>10} {'exact':>10} {'bias':>10} {'std.err':>9} "
        f"{'var':>10} {'analytic':>10}"
    )
    lines = [header, columns, "-" * len(columns)]
    for name, result in results.items():
        for k, exact_k in enumerate(exact):
            mean, var = float(result.stats.mean[k]), float(result.stats.var[k])
            analytic = "-" if result.moments is None else f"{result.moments.var[k]:.5g}"
            lines.append(
                f"{name:<24} {f'd/dlogit{k}':<11} {mean:>10.5g} {exact_k:>10.5g} "
                f"{float(result.bias[k]):>10.3g} {math.sqrt(var / args.samples):>9.2g} "
                f"{var:>10.5g} {analytic:>10}"
            )
        analytic_trace = "-" if result.moments is None else f"{sum(result.moments.var):.5g}"
        lines.append(
            f"{name:<24} {'norms':<11} |bias| {result.bias_norm:.3g} (noise floor "
            f"{result.noise_floor:.2g}), trace var {result.stats.var_trace:.5g} "
            f"(analytic {analytic_trace})"
        )
    return "\n".join(lines)


def _sweep_table(temperatures: Sequence[float], sweep: list[dict[str, CategoricalResult]]) -> str:
    columns = f"{'temperature':>11} " + " ".join(
        f"{name + ' |bias|':>24} {'trace var':>10}" for name in RELAXED
    )
    lines = ["temperature sweep (bias = mean - exact gradient; |bias| below the noise floor "
             "sqrt(trace var / N) is not resolved)", columns, "-" * len(columns)]  # fmt: skip
    for temperature, results in zip(temperatures, sweep, strict=True):
        cells = [
            f"{r.bias_norm:>13.3g} +- {r.noise_floor:<7.2g} {r.stats.var_trace:>10.4g}"
            for r in (results[name] for name in RELAXED)
        ]
        lines.append(f"{temperature:>11g} " + " ".join(cells))
    return "\n".join(lines)


def _categorical_plot(
    problem: CategoricalProblem, args: argparse.Namespace, temperatures: Sequence[float],
    sweep: list[dict[str, CategoricalResult]], unbiased: dict[str, CategoricalResult],
) -> None:  # fmt: skip
    """Bias norm, total variance and mean squared error of the relaxed estimators against the
    temperature (log axes), with the score function's unbiased levels as horizontal lines."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), constrained_layout=True)
    styles = {"gumbel_softmax": ("tab:blue", "o-"), "straight_through": ("tab:green", "x--")}
    for name in RELAXED:
        color, style = styles[name]
        bias = [r[name].bias_norm for r in sweep]
        var = [r[name].stats.var_trace for r in sweep]
        axes[0].plot(temperatures, bias, style, color=color, label=name)
        axes[1].plot(temperatures, var, style, color=color, label=name)
        axes[2].plot(temperatures, [b**2 + v for b, v in zip(bias, var, strict=True)], style,
                     color=color, label=name)  # fmt: skip
    floor = [r["gumbel_softmax"].noise_floor for r in sweep]
    axes[0].plot(temperatures, floor, ":", color="gray", label="noise floor sqrt(trace var / N)")
    exact_norm = float(torch.tensor(problem.exact_gradient()).norm())
    axes[0].axhline(
        exact_norm, color="black", linestyle="-.", label="pathwise_hard (= |exact gradient|)"
    )
    for name, color in (("score_function", "tab:red"), ("score_function_baseline", "tab:orange")):
        moments = unbiased[name].moments
        assert moments is not None  # the score-function estimators have closed forms
        level = sum(moments.var)  # unbiased: its MSE is its variance
        for ax in axes[1:]:
            ax.axhline(level, color=color, linestyle="-.", label=f"{name} (unbiased, closed form)")
    titles = (
        "|bias| = |E g - exact gradient|",
        "total variance (trace)",
        "mean squared error |bias|^2 + trace var",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("temperature T")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"f(z) = c . z, z ~ Cat(softmax(theta)), theta {list(problem.logits)}, "
        f"c {list(problem.costs)}; {args.samples} estimates of {args.draws} draws per temperature"
    )
    _save(fig, args.plot)


def _categorical_json(results: dict[str, CategoricalResult]) -> dict[str, dict[str, object]]:
    return {
        name: {
            "mean": r.stats.mean.tolist(),
            "var": r.stats.var.tolist(),
            "bias": r.bias.tolist(),
            "bias_norm": r.bias_norm,
            "var_trace": r.stats.var_trace,
            "analytic_mean": None if r.moments is None else list(r.moments.mean),
            "analytic_var": None if r.moments is None else list(r.moments.var),
        }
        for name, r in results.items()
    }


def _run_categorical(args: argparse.Namespace) -> dict[str, object]:
    problem = CategoricalProblem(tuple(args.logits), tuple(args.costs))
    measure = partial(
        _measure_categorical, problem, draws=args.draws, num_samples=args.samples, seed=args.seed
    )
    results = measure(CATEGORICAL_ESTIMATORS, args.temperature)
    print(_categorical_table(problem, args, results))
    report: dict[str, object] = {
        "problem": "categorical",
        "logits": list(problem.logits),
        "costs": list(problem.costs),
        "temperature": args.temperature,
        "samples": args.samples,
        "draws": args.draws,
        "exact_gradient": list(problem.exact_gradient()),
        "estimators": _categorical_json(results),
    }
    if args.temperatures is not None:
        sweep = [measure(RELAXED, t) for t in args.temperatures]
        print()
        print(_sweep_table(args.temperatures, sweep))
        report["sweep"] = {
            "temperatures": list(args.temperatures),
            **{
                name: {
                    "bias_norm": [r[name].bias_norm for r in sweep],
                    "var_trace": [r[name].stats.var_trace for r in sweep],
                }
                for name in RELAXED
            },
        }
        if args.plot is not None:
            _categorical_plot(problem, args, args.temperatures, sweep, results)
    return report


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

# The options each kind of problem takes (any other problem-specific option is an error).
LOCATION_SCALE_OPTIONS = ("mu", "sigma", "distribution")
EXPONENTIAL_OPTIONS = ("rate",)
CATEGORICAL_OPTIONS = ("logits", "costs", "temperature", "temperatures", "draws")


def _float_list(text: str) -> list[float]:
    """argparse type of a comma-separated list of floats, e.g. `1,0.5,-2`."""
    try:
        return [float(item) for item in text.split(",")]
    except ValueError:
        message = f"expected comma-separated numbers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m estimators.variance",
        description="Mean and variance of gradient estimators on toy problems with known "
        "answers: E_{z = mu + sigma eps}[f(z)] (linear, quadratic, residual, lognormal), "
        "E_{x ~ Exp(rate)}[x^2] (exponential) and E_{z ~ Categorical}[c . z] (categorical).",
    )
    problems = [*PROBLEM_TYPES, ExponentialSecondMoment.name, "categorical"]
    parser.add_argument("--problem", required=True, choices=problems, help="toy objective")
    parser.add_argument("--samples", required=True, type=int, help="number N of estimates, >= 2")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draws")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--plot",
        type=Path,
        help="write a PNG: a sigma sweep over [sigma/100, sigma] (location-scale problems) or "
        "the temperature sweep (categorical)",
    )
    location = parser.add_argument_group(
        "location-scale problems (linear, quadratic, residual, lognormal)"
    )
    location.add_argument("--mu", type=float, help="location of z (residual: must be 0)")
    location.add_argument(
        "--sigma", type=float, help="scale of z, > 0 (the normal's standard deviation)"
    )
    location.add_argument(
        "--distribution",
        choices=list(FAMILIES),
        help="family of the noise eps in z = mu + sigma eps (default normal)",
    )
    exponential = parser.add_argument_group("exponential problem")
    exponential.add_argument("--rate", type=float, help="rate of x ~ Exp(rate), > 0")
    categorical = parser.add_argument_group("categorical problem")
    categorical.add_argument("--logits", type=_float_list, help="K >= 2 logits, comma-separated")
    categorical.add_argument("--costs", type=_float_list, help="K costs c, comma-separated")
    categorical.add_argument(
        "--temperature", type=float, help="Gumbel-Softmax temperature, > 0 (default 1)"
    )
    categorical.add_argument(
        "--temperatures", type=_float_list, help="temperatures to sweep, comma-separated, each > 0"
    )
    categorical.add_argument(
        "--draws",
        type=int,
        help="draws S per estimate, >= 2 (the leave-one-out baseline needs two; default 2)",
    )
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """parser.error (one line, exit 2) on any option that is missing, out of range or does not
    apply to the problem; fills in the defaults."""
    if args.samples < 2:
        parser.error(f"--samples must be >= 2 (a variance needs two estimates), got {args.samples}")
    needed: tuple[str, ...]
    allowed: tuple[str, ...]
    if args.problem in PROBLEM_TYPES:
        kind, needed, allowed = "location-scale", ("mu", "sigma"), LOCATION_SCALE_OPTIONS
    elif args.problem == ExponentialSecondMoment.name:
        kind, needed, allowed = "exponential", EXPONENTIAL_OPTIONS, EXPONENTIAL_OPTIONS
    else:
        kind, needed, allowed = "categorical", ("logits", "costs"), CATEGORICAL_OPTIONS
    for option in (*LOCATION_SCALE_OPTIONS, *EXPONENTIAL_OPTIONS, *CATEGORICAL_OPTIONS):
        if getattr(args, option) is not None and option not in allowed:
            parser.error(f"--{option} does not apply to --problem {args.problem} "
                         f"({kind} options: {', '.join('--' + o for o in allowed)})")  # fmt: skip
    missing = [f"--{option}" for option in needed if getattr(args, option) is None]
    if missing:
        parser.error(f"--problem {args.problem} needs {' and '.join(missing)}")
    try:
        if kind == "location-scale":
            args.distribution = args.distribution or "normal"
            toy_problem(args.problem, args.distribution).check(args.mu, args.sigma)
        elif kind == "exponential":
            ExponentialSecondMoment().check(args.rate)
            if args.plot is not None:
                raise ValueError("--plot is not available for --problem exponential (its variances "
                                 "are closed forms times rate^-6; see the table)")  # fmt: skip
        else:
            args.temperature = 1.0 if args.temperature is None else args.temperature
            args.draws = 2 if args.draws is None else args.draws
            CategoricalProblem(tuple(args.logits), tuple(args.costs))
            for t in (args.temperature, *(args.temperatures or ())):
                if not (math.isfinite(t) and t > 0):
                    raise ValueError(f"temperatures must be > 0 and finite, got {t:g}")
            if args.draws < 2:
                raise ValueError(
                    f"--draws must be >= 2 (the leave-one-out baseline needs two), got {args.draws}"
                )
            if args.plot is not None and args.temperatures is None:
                raise ValueError("--plot for --problem categorical sweeps --temperatures: "
                                 "give them")
    except ValueError as err:
        parser.error(str(err))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m estimators.variance`; bad input exits 2 via argparse."""
    parser = _parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    if args.problem in PROBLEM_TYPES:
        report = _run_location_scale(args)
    elif args.problem == ExponentialSecondMoment.name:
        report = _run_exponential(args)
    else:
        report = _run_categorical(args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
