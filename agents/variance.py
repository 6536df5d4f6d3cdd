"""Policy-gradient variance of a trained run: `python -m agents.variance --run RUN_DIR ...`.

    python -m agents.variance --run RUN_DIR [--batch B] [--repeats K] [--json OUT] [--plot OUT.png]
        [--reference-draws R] [--seed S] [--threads N]

Loads the newest checkpoint of a SAC or REINFORCE run, rebuilds its networks from the run's
config.yaml and, at those fixed parameters, draws K independent estimates of the policy
gradient with each estimator:

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

It prints a table, writes the figures as JSON (per estimator: grad_var_trace, grad_norm_mean,
cosine_to_reference, snr, reference_samples; plus the sweep over batch sizes) and plots the
variance trace against the batch size on log-log axes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from agents.episodes import EpisodeLog
from agents.policy_gradients import ESTIMATORS, sac_gradient_figures, summarize
from agents.reinforce import Reinforce, ReinforceConfig, policy_surrogate
from agents.rollout import collect_rollout, env_dims
from agents.run import RunError, read_run
from agents.sac import SAC, SACConfig
from envs import EnvConfig, make_vector_env
from estimators.variance import gradient_samples

# Steps of the policy per state kept in the SAC state batch: the batch is a random 1/8 of them,
# so it spreads over whole episodes instead of following one.
POOL_FACTOR = 8
# Smallest batch of the sweep; the sweep doubles from here up to --batch.
SWEEP_START = 8


def sweep_sizes(batch: int) -> list[int]:
    """SWEEP_START, 2 * SWEEP_START, ... below `batch`, then `batch` itself."""
    sizes = []
    size = SWEEP_START
    while size < batch:
        sizes.append(size)
        size *= 2
    return [*sizes, batch]


# ---------------------------------------------------------------------------------- SAC runs


Report = tuple[dict[str, dict[str, float]], list[int], dict[str, list[float]], int]


def sac_report(
    raw: dict[str, Any], learner: dict[str, Any], batch: int, repeats: int, draws: int, seed: int
) -> Report:
    """Figures at `batch` states; the sweep's batch sizes and variance traces; the reference's
    sample count."""
    env_config = EnvConfig(**raw["env"])
    env = make_vector_env(env_config.id, env_config.num_envs, seed)
    agent = SAC(*env_dims(env), SACConfig(**raw["agent"]), torch.device("cpu"))
    agent.load_state_dict(learner["agent"])
    first_obs, _ = env.reset()
    steps = -(-POOL_FACTOR * batch // env_config.num_envs)  # ceil(8 B / N)
    rollout, _ = collect_rollout(env, agent.actor, torch.as_tensor(first_obs, dtype=torch.float32), steps, EpisodeLog())
    env.close()
    pool = rollout.obs.flatten(0, 1)  # (T, N, O) -> (T*N, O)
    states = pool[torch.randperm(pool.shape[0])[:batch]]  # (B, O), a random subset
    figures = sac_gradient_figures(agent.actor, agent.critic, states, agent.alpha, repeats, draws)
    sweep: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
    for size in sweep_sizes(batch)[:-1]:
        # Every size covers the same states, as B // size disjoint chunks whose variance traces
        # are averaged: the per-state spread then cancels between sizes (a prefix of the batch
        # would make each point depend on which states it happened to hold).
        chunks = states[: batch // size * size].view(-1, size, states.shape[1])  # (B, O) -> (C, size, O)
        per_chunk = [sac_gradient_figures(agent.actor, agent.critic, c, agent.alpha, repeats, draws) for c in chunks]
        for name in ESTIMATORS:
            sweep[name].append(sum(f[name]["grad_var_trace"] for f in per_chunk) / len(per_chunk))
    for name in ESTIMATORS:
        sweep[name].append(figures[name]["grad_var_trace"])
    return figures, sweep_sizes(batch), sweep, batch * draws


# ---------------------------------------------------------------------------------- REINFORCE runs


def reinforce_report(
    raw: dict[str, Any], learner: dict[str, Any], batch: int, repeats: int, seed: int
) -> Report:
    """Figures of `reinforce_mc` over rollouts of `batch` env steps (rounded down to a multiple
    of num_envs, at least one step each); the sweep; the reference's env steps."""
    env_config = EnvConfig(**raw["env"])
    num_envs = env_config.num_envs
    env = make_vector_env(env_config.id, num_envs, seed)
    config = ReinforceConfig(**raw["agent"])
    agent = Reinforce(*env_dims(env), config, torch.device("cpu"))
    agent.load_state_dict(learner["agent"])
    params = list(agent.actor.parameters())
    first_obs, _ = env.reset()
    obs = torch.as_tensor(first_obs, dtype=torch.float32)

    def estimate(steps: int) -> Tensor:
        """The estimator on the next rollout of `steps` steps per sub-env."""
        nonlocal obs
        rollout, obs = collect_rollout(env, agent.actor, obs, steps, EpisodeLog())
        scored = agent.score(rollout)
        if len(scored) < 2:  # no episode ended (whole_episodes): the learner would not update
            return torch.stack([p.sum() for p in params]).sum() * 0.0  # a zero gradient estimate
        log_prob = agent.actor(scored.obs).log_prob_pre_tanh(scored.pre_tanh)  # (M,)
        return policy_surrogate(log_prob, scored.returns, scored.baseline, normalize=False)

    steps = sorted({max(1, size // num_envs) for size in sweep_sizes(batch)})  # per sub-env
    reference = gradient_samples(lambda: estimate(steps[-1] * repeats), params, 1)[0]  # (1, P) -> (P,)
    samples = [gradient_samples(partial(estimate, s), params, repeats) for s in steps]
    env.close()
    figures = {"reinforce_mc": summarize(samples[-1], reference)}
    sweep = {"reinforce_mc": [summarize(s, reference)["grad_var_trace"] for s in samples]}
    return figures, [s * num_envs for s in steps], sweep, steps[-1] * repeats * num_envs


# ---------------------------------------------------------------------------------- output


def table(figures: dict[str, dict[str, float]], batch: int, repeats: int) -> str:
    """The stdout report: one row per estimator, variance also relative to the first row."""
    first = next(iter(figures.values()))["grad_var_trace"]
    columns = f"{'estimator':<24} {'var trace':>12} {'x first':>9} {'mean |g|':>11} {'cos to ref':>10} {'snr':>8}"
    lines = [f"{repeats} estimates from batches of {batch}", columns, "-" * len(columns)]
    for name, v in figures.items():
        lines.append(
            f"{name:<24} {v['grad_var_trace']:>12.4g} {v['grad_var_trace'] / first:>9.3g} "
            f"{v['grad_norm_mean']:>11.4g} {v['cosine_to_reference']:>10.3f} {v['snr']:>8.3f}"
        )
    return "\n".join(lines)


def plot(sizes: list[int], sweep: dict[str, list[float]], title: str, xlabel: str, out: Path) -> None:
    """Variance trace against batch size, log-log, one line per estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    colors = {"pathwise": "tab:blue", "score_function": "tab:red",
              "score_function_baseline": "tab:orange", "reinforce_mc": "tab:purple"}
    for name, values in sweep.items():
        ax.plot(sizes, values, "o-", color=colors[name], label=name)
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
        description="Variance of policy-gradient estimators at the last checkpoint of a SAC or REINFORCE run.",
    )
    parser.add_argument("--run", required=True, type=Path, help="run directory (config.yaml, checkpoints/)")
    parser.add_argument("--batch", type=int, default=256,
                        help="states per estimate (SAC) or env steps per rollout (REINFORCE); default 256")
    parser.add_argument("--repeats", type=int, default=64, help="independent estimates K per estimator, >= 2")
    parser.add_argument("--reference-draws", type=int, default=1024,
                        help="SAC: actions per state of the pathwise reference (default 1024)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the envs and the noise")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (as train.py's `threads`)")
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
    raw, kind, state, checkpoint = run.config, run.kind, run.state, run.checkpoint

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if kind == "sac":
        figures, sizes, sweep, reference_samples = sac_report(
            raw, state["learner"], args.batch, args.repeats, args.reference_draws, args.seed
        )
        reference = {"estimator": "pathwise", "samples": reference_samples}
        xlabel = "states per estimate (one action each)"
    else:
        figures, sizes, sweep, reference_samples = reinforce_report(
            raw, state["learner"], args.batch, args.repeats, args.seed
        )
        reference = {"estimator": "reinforce_mc", "samples": reference_samples}
        xlabel = "env steps per rollout"
    for values in figures.values():
        values["reference_samples"] = reference_samples
    env_id = raw["env"]["id"]
    print(f"{kind} run {args.run} ({env_id}), checkpoint {checkpoint.name} (step {state['step']})")
    print(table(figures, sizes[-1], args.repeats))
    if args.json is not None:
        report = {
            "run": str(args.run), "kind": kind, "env_id": env_id, "checkpoint": checkpoint.name,
            "step": state["step"], "batch": sizes[-1], "repeats": args.repeats, "seed": args.seed,
            "reference": reference, "estimators": figures,
            "sweep": {"batch_sizes": sizes, "grad_var_trace": sweep},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot is not None:
        title = f"{kind} {env_id}, step {state['step']}: {args.repeats} estimates per point"
        plot(sizes, sweep, title, xlabel, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
