"""Policy-gradient variance of a trained run: `python -m agents.variance --run RUN_DIR ...`.

    python -m agents.variance --run RUN_DIR [--batch B] [--repeats K] [--json OUT] [--plot OUT.png]
        [--reference-draws R] [--seed S] [--threads N] [--policy-distribution NAME ...]

Loads the newest checkpoint of a SAC or REINFORCE run, reads its config.yaml through the config
loader (training.config), takes the kind's report from training.registry (the reports live in
agents.variance_report), rebuilds the networks from it and, at those fixed parameters, draws K
independent estimates of the policy gradient with each estimator:

- SAC runs: the gradient of the actor objective J = E_s E_{a~pi}[Q(s, a) - alpha log pi(a|s)]
  (agents.policy_gradients) with `pathwise`, `score_function` and `score_function_baseline`.
  The states are a fixed batch of B, drawn at random from 8 B steps of the stochastic policy
  in the run's env; every estimate takes one fresh action per state, so the spread is the
  estimator's own noise. The reference is the pathwise gradient at the same states with R
  actions per state (B * R samples). The sweep measures smaller batches on disjoint chunks of
  the same B states and averages over the chunks.
- REINFORCE runs: `reinforce_mc`, the run's Monte-Carlo-return estimator (its baseline and
  episode handling; advantages not normalized), each estimate from its own rollout of B env
  steps; the reference is the same estimator on one rollout of K * B steps.

`--policy-distribution normal laplace logistic` compares the policy families
(estimators.LOCATION_SCALE_FAMILIES): the trained network's (loc, scale) read as each family, at
the same SAC states (REINFORCE: rollouts from the same seed), each against its own reference;
rows are then named `estimator (family)`. The default is the run's own family.

It prints a table, writes the figures as JSON (per estimator: grad_var_trace, grad_norm_mean,
cosine_to_reference, snr, reference_samples; plus the sweep over batch sizes) and plots the
variance trace against the batch size on log-log axes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from agents.run import RunError, read_run
from estimators.distributions import LOCATION_SCALE_FAMILIES
from training.config import ConfigError, load_config
from training.registry import ALGORITHMS

# ---------------------------------------------------------------------------------- output


def table(figures: dict[str, dict[str, float]], batch: int, repeats: int) -> str:
    """The stdout report: one row per estimator, variance also relative to the first row."""
    first = next(iter(figures.values()))["grad_var_trace"]
    width = max(24, *map(len, figures))
    columns = (f"{'estimator':<{width}} {'var trace':>12} {'x first':>9} {'mean |g|':>11} "
               f"{'cos to ref':>10} {'snr':>8}")
    lines = [f"{repeats} estimates from batches of {batch}", columns, "-" * len(columns)]
    for name, v in figures.items():
        lines.append(
            f"{name:<{width}} {v['grad_var_trace']:>12.4g} {v['grad_var_trace'] / first:>9.3g} "
            f"{v['grad_norm_mean']:>11.4g} {v['cosine_to_reference']:>10.3f} {v['snr']:>8.3f}"
        )
    return "\n".join(lines)


def plot(sizes: list[int], sweep: dict[str, list[float]], title: str, xlabel: str,
         out: Path) -> None:
    """Variance trace against batch size, log-log, one line per estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    colors = {"pathwise": "tab:blue", "score_function": "tab:red",
              "score_function_baseline": "tab:orange", "reinforce_mc": "tab:purple"}
    styles = {"laplace": "s--", "logistic": "^:"}  # the normal, and a single family: "o-"
    for name, values in sweep.items():
        estimator, _, family = name.removesuffix(")").partition(" (")  # `estimator (family)` rows
        ax.plot(sizes, values, styles.get(family, "o-"), color=colors[estimator], label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("trace of gradient covariance")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents.variance",
        description="Variance of policy-gradient estimators at the last checkpoint of a SAC or "
                    "REINFORCE run.",
    )
    parser.add_argument("--run", required=True, type=Path,
                        help="run directory (config.yaml, checkpoints/)")
    parser.add_argument("--batch", type=int, default=256,
                        help="states per estimate (SAC) or env steps per rollout (REINFORCE); "
                             "default 256")
    parser.add_argument("--repeats", type=int, default=64,
                        help="independent estimates K per estimator, >= 2")
    parser.add_argument("--reference-draws", type=int, default=1024,
                        help="SAC: actions per state of the pathwise reference (default 1024)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the envs and the noise")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (as train.py's `threads`)")
    parser.add_argument("--policy-distribution", nargs="+", metavar="NAME",
                        choices=list(LOCATION_SCALE_FAMILIES),
                        help="read the policy as each of these families (default: the run's own): "
                             + ", ".join(LOCATION_SCALE_FAMILIES))
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--plot", type=Path, help="write the variance-against-batch-size PNG here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m agents.variance`; bad input exits 2 via argparse."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.batch < 2:
        parser.error(f"--batch must be >= 2, got {args.batch}")
    if args.repeats < 2:
        parser.error(f"--repeats must be >= 2 (a variance needs two estimates), got {args.repeats}")
    if args.reference_draws < 1:
        parser.error(f"--reference-draws must be >= 1, got {args.reference_draws}")
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    try:  # config.yaml and the newest checkpoint that passes its checksum (weights_only=True)
        run = read_run(args.run)
    except RunError as e:
        parser.error(str(e))
    kind, state, checkpoint = run.kind, run.state, run.checkpoint
    try:  # the run's config.yaml through the loader train.py uses
        config = load_config(None, [], base=run.config)
    except ConfigError as e:
        parser.error(f"{args.run / 'config.yaml'}: {e}")
    variance_report = ALGORITHMS[kind].variance_report
    if variance_report is None:
        parser.error(f"{args.run} is a {kind} run; it has no policy gradient to measure")

    families = list(dict.fromkeys(args.policy_distribution)) if args.policy_distribution else None

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    report = variance_report(config, state["learner"], args.batch, args.repeats,
                             args.reference_draws, args.seed, families)
    figures, sizes, sweep = report.figures, report.sizes, report.sweep
    reference = {"estimator": report.reference_estimator, "samples": report.reference_samples}
    for values in figures.values():
        values["reference_samples"] = report.reference_samples
    env_id = run.env_id
    print(f"{kind} run {args.run} ({env_id}), checkpoint {checkpoint.name} (step {state['step']})")
    print(table(figures, sizes[-1], args.repeats))
    if args.json is not None:
        data = {
            "run": str(args.run), "kind": kind, "env_id": env_id, "checkpoint": checkpoint.name,
            "step": state["step"], "batch": sizes[-1], "repeats": args.repeats, "seed": args.seed,
            "policy_distributions": report.families,
            "reference": reference, "estimators": figures,
            "sweep": {"batch_sizes": sizes, "grad_var_trace": sweep},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    if args.plot is not None:
        title = f"{kind} {env_id}, step {state['step']}: {args.repeats} estimates per point"
        plot(sizes, sweep, title, report.xlabel, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
