"""Policy-gradient variance at a trained run's parameters: one report per RL kind.

The registry (training.registry) maps each kind to its report; `python -m agents.variance`
prints and plots it. See that module's docstring for what each estimator measures.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch
from torch import Tensor

from agents.episodes import EpisodeLog
from agents.policy_gradients import ESTIMATORS, sac_gradient_figures, summarize
from agents.reinforce import Reinforce, ReinforceConfig, policy_surrogate
from agents.rollout import collect_rollout, env_dims
from agents.sac import SAC, SACConfig
from envs import EnvConfig, make_vector_env
from estimators.distributions import LocationScaleFamily
from estimators.variance import gradient_samples


@dataclass
class VarianceReport:
    """What `python -m agents.variance` prints, writes and plots for one run."""

    # per estimator (`estimator (family)` with several families): grad_var_trace,
    # grad_norm_mean, cosine_to_reference, snr
    figures: dict[str, dict[str, float]]
    # the sweep's batch sizes (the last is the report's batch) and each estimator's trace there
    sizes: list[int]
    sweep: dict[str, list[float]]
    # the reference gradient: its estimator and sample count
    reference_estimator: str
    reference_samples: int
    # the plot's x axis
    xlabel: str
    # the policy families measured
    families: list[LocationScaleFamily]


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


def label(estimator: str, family: str, families: Sequence[LocationScaleFamily]) -> str:
    """An estimator's row: its name for one policy family, `name (family)` comparing several."""
    return estimator if len(families) == 1 else f"{estimator} ({family})"


# ---------------------------------------------------------------------------------- SAC runs


def sac_report(
    env_config: EnvConfig, agent_config: SACConfig, learner: dict[str, Any], batch: int,
    repeats: int, draws: int, seed: int, families: Sequence[LocationScaleFamily] | None,
) -> VarianceReport:
    """`pathwise`, `score_function` and `score_function_baseline` at `batch` states of the
    policy, with the sweep over smaller batches; the reference takes `draws` actions per state.

    The states come from the run's own policy; each of `families` (None: the run's own) then
    reads the trained network's (loc, scale) as that policy family, at the same states, against
    its own pathwise reference.
    """
    families = list(families or [agent_config.policy_distribution])
    env = make_vector_env(env_config.id, env_config.num_envs, seed)
    agent = SAC(*env_dims(env), agent_config, torch.device("cpu"))
    agent.load_state_dict(learner["agent"])
    first_obs, _ = env.reset()
    steps = -(-POOL_FACTOR * batch // env_config.num_envs)  # ceil(8 B / N)
    rollout, _ = collect_rollout(env, agent.actor, torch.as_tensor(first_obs, dtype=torch.float32),
                                 steps, EpisodeLog())
    env.close()
    pool = rollout.obs.flatten(0, 1)  # (T, N, O) -> (T*N, O)
    states = pool[torch.randperm(pool.shape[0])[:batch]]  # (B, O), a random subset
    figures: dict[str, dict[str, float]] = {}
    sweep: dict[str, list[float]] = {}
    for family in families:
        actor = copy.deepcopy(agent.actor)
        actor.family = family
        at_batch = sac_gradient_figures(actor, agent.critic, states, agent.alpha, repeats, draws)
        # Every smaller size covers the same states, as B // size disjoint chunks whose variance
        # traces are averaged: the per-state spread then cancels between sizes (a prefix of the
        # batch would make each point depend on which states it happened to hold).
        per_size = []
        for size in sweep_sizes(batch)[:-1]:
            chunks = states[: batch // size * size].view(-1, size, states.shape[1])  # (C, size, O)
            per_size.append([sac_gradient_figures(actor, agent.critic, c, agent.alpha, repeats,
                                                  draws) for c in chunks])
        for name in ESTIMATORS:
            row = label(name, family, families)
            figures[row] = at_batch[name]
            sweep[row] = [sum(f[name]["grad_var_trace"] for f in chunk) / len(chunk)
                          for chunk in per_size]
            sweep[row].append(at_batch[name]["grad_var_trace"])
    return VarianceReport(figures, sweep_sizes(batch), sweep, "pathwise", batch * draws,
                          "states per estimate (one action each)", families)


# ---------------------------------------------------------------------------------- REINFORCE runs


def reinforce_report(
    env_config: EnvConfig, agent_config: ReinforceConfig, learner: dict[str, Any], batch: int,
    repeats: int, draws: int, seed: int, families: Sequence[LocationScaleFamily] | None,
) -> VarianceReport:
    """`reinforce_mc` over rollouts of `batch` env steps (rounded down to a multiple of
    num_envs, at least one step each), with the sweep; the reference is one rollout of
    `repeats` times as many steps (`draws` is SAC's and unused here). Each of `families`
    (None: the run's own) reads the trained network as that policy family and draws its own
    rollouts from the same seed."""
    families = list(families or [agent_config.policy_distribution])
    num_envs = env_config.num_envs
    steps = sorted({max(1, size // num_envs) for size in sweep_sizes(batch)})  # per sub-env
    figures: dict[str, dict[str, float]] = {}
    sweep: dict[str, list[float]] = {}
    for family in families:
        config = replace(agent_config, policy_distribution=family)
        samples, reference = _reinforce_samples(env_config, config, learner, steps, repeats, seed)
        row = label("reinforce_mc", family, families)
        figures[row] = summarize(samples[-1], reference)
        sweep[row] = [summarize(s, reference)["grad_var_trace"] for s in samples]
    return VarianceReport(figures, [s * num_envs for s in steps], sweep, "reinforce_mc",
                          steps[-1] * repeats * num_envs, "env steps per rollout", families)


def _reinforce_samples(
    env_config: EnvConfig, agent_config: ReinforceConfig, learner: dict[str, Any], steps: list[int],
    repeats: int, seed: int,
) -> tuple[list[Tensor], Tensor]:
    """`repeats` estimates (K, P) from rollouts of each of `steps` steps per sub-env, and the
    reference (P,) from one rollout of steps[-1] * repeats steps, all in one seeded env."""
    env = make_vector_env(env_config.id, env_config.num_envs, seed)
    agent = Reinforce(*env_dims(env), agent_config, torch.device("cpu"))
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
        log_prob = agent.actor(scored.obs).log_prob_pre_squash(scored.pre_squash)  # (M,)
        return policy_surrogate(log_prob, scored.returns, scored.baseline, normalize=False)

    # (1, P) -> (P,)
    reference = gradient_samples(lambda: estimate(steps[-1] * repeats), params, 1)[0]
    samples = [gradient_samples(partial(estimate, s), params, repeats) for s in steps]
    env.close()
    return samples, reference
