"""REINFORCE: the score-function policy gradient (Williams 1992) on SAC's tanh-squashed policy.

Read top to bottom: the config; `ScoredBatch` and the pure functions (the surrogate whose
gradient is the policy-gradient estimate, and its in-training variance figures); the
`Reinforce` agent, which owns the policy, the optional value network V(s), their optimizers
and the update count; and `ReinforceLearner`, which collects rollouts from a vector env and is
what train.py drives (`kind: reinforce`).

The estimator, over the scored steps t of a batch (agents/rollout.py gives G_t):

    grad J ~ mean_t (G_t - b_t) grad log pi(a_t | s_t),    G_t the discounted reward-to-go,

with log pi scored on the stored pre-squash sample u_t (`TanhSquashed.log_prob_pre_squash`): the
action that was sent is never inverted with atanh. The baseline b_t (`baseline`): none; the
batch mean, leave-one-out so that b_t does not contain G_t (Kool et al. 2019); or a learned
V(s_t), fitted to the returns by regression after each batch (`baseline_regression_loss`)
and evaluated *before* that fit, so no b_t has seen its own G_t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from agents.policy_gradients import DIAGNOSTIC_REPEATS, metric_keys, summarize
from agents.rollout import Rollout, collect_rollout, complete_episode_mask, reward_to_go
from agents.task import RLTask
from envs import EnvConfig
from estimators.diagnostics import GradientDiagnostics
from estimators.distributions import LocationScaleFamily
from estimators.gradients import (
    baseline_regression_loss,
    leave_one_out_baseline,
    score_function_surrogate,
)
from estimators.variance import gradient_samples
from policies.actor import TanhSquashedActor
from policies.value import ValueNetwork

# Steps per minibatch estimate in the in-training variance figures (as agents.variance's default).
DIAGNOSTIC_BATCH = 256


@dataclass
class ReinforceConfig:
    """REINFORCE hyperparameters (defaults: configs/reinforce_inverted_pendulum.yaml's, which
    benchmarks/reinforce_learning.py measured with 16 sub-envs)."""

    # Adam learning rate of the policy
    lr: float = 1e-3
    # steps of every sub-env per batch: one update per rollout_steps * num_envs env steps
    rollout_steps: int = 32
    # discount factor gamma of the reward-to-go
    gamma: float = 0.99
    # hidden layer widths of the policy and of V
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    # the policy's pre-squash family (estimators.LOCATION_SCALE_FAMILIES):
    # normal (the tanh-Gaussian), laplace or logistic; each tanh-squashed with its exact log-density
    policy_distribution: LocationScaleFamily = "normal"
    # b(s) subtracted from the reward-to-go: none, mean (leave-one-out batch mean) or
    # value (learned V)
    baseline: Literal["none", "mean", "value"] = "value"
    # Adam learning rate of V (baseline: value)
    value_lr: float = 1e-3
    # full-batch regression steps of V per batch (baseline: value)
    value_steps: int = 5
    # score only steps whose episode ends in the batch (true), or all, bootstrapping cut episodes
    # from V (false)
    whole_episodes: bool = False
    # rescale the advantages of each batch to mean 0, std 1
    normalize_advantage: bool = True
    # weight of the policy entropy bonus (estimated pathwise from a fresh draw; 0: off)
    entropy_coef: float = 0.0
    # clip the policy gradient to this global norm (None: no clipping)
    max_grad_norm: float | None = None

    def __post_init__(self) -> None:
        for name in ("lr", "value_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("rollout_steps", "value_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        if self.entropy_coef < 0:
            raise ValueError(f"entropy_coef must be >= 0, got {self.entropy_coef}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or null, got {self.max_grad_norm}")
        if not self.whole_episodes and self.baseline != "value":
            raise ValueError(
                f"whole_episodes must be true with baseline {self.baseline}: only a learned V "
                "can bootstrap the episodes the batch cuts (use baseline: value)"
            )


# ---------------------------------------------------------------------------------- losses


@dataclass
class ScoredBatch:
    """The scored steps of a rollout, flattened, with their returns and baselines (no gradient).

    Shapes (M scored steps): obs (M, O), pre_squash (M, A), returns (M,), baseline (M,) or None.
    """

    obs: Tensor
    pre_squash: Tensor
    returns: Tensor
    baseline: Tensor | None

    def __len__(self) -> int:
        return self.returns.shape[0]


def policy_surrogate(log_prob: Tensor, returns: Tensor, baseline: Tensor | None,
                     normalize: bool) -> Tensor:
    """Surrogate whose gradient is mean_t A_t grad log pi(a_t | s_t), A_t = G_t - b_t.

    With `normalize`, A_t becomes (A_t - mean A) / std A over the batch: the mean is one more
    constant baseline (biased only by the 1/M share of each step in it), the std a positive
    rescaling of the step. Maximize convention.

    Shapes: log_prob, returns, baseline (M,) with M >= 2 -> ().
    """
    if not normalize:
        return score_function_surrogate(returns, log_prob, baseline)
    advantage = returns if baseline is None else returns - baseline
    # (M,), mean/std (M,) -> ()
    advantage = (advantage - advantage.mean()) / advantage.std().clamp_min(1e-8)
    return score_function_surrogate(advantage, log_prob)


def reinforce_gradient_figures(
    actor: TanhSquashedActor, batch: ScoredBatch, minibatch: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Variance figures of the REINFORCE estimate from `minibatch` steps of `batch`.

    Each of the `repeats` estimates draws `minibatch` steps uniformly with replacement from the
    batch (state, stored action and return together): the spread is the estimator's sampling
    noise at fixed parameters. `score_function` uses no baseline; `score_function_baseline`
    the batch's own (the leave-one-out batch mean when the learner has none). The reference
    is the estimate from the whole batch with the baseline. Advantages are not normalized here:
    these are estimates of grad J itself.

    Shapes: batch with M >= 2 steps.
    """
    params = list(actor.parameters())
    baseline = (batch.baseline if batch.baseline is not None
                else leave_one_out_baseline(batch.returns))

    def estimate(index: Tensor | None, with_baseline: bool) -> Tensor:
        pick = slice(None) if index is None else index
        log_prob = actor(batch.obs[pick]).log_prob_pre_squash(batch.pre_squash[pick])  # (m,)
        return policy_surrogate(log_prob, batch.returns[pick],
                                baseline[pick] if with_baseline else None, False)

    def minibatch_estimate(with_baseline: bool) -> Tensor:
        return estimate(torch.randint(len(batch), (minibatch,), device=batch.returns.device),
                        with_baseline)

    reference = gradient_samples(partial(estimate, None, True), params, 1)[0]  # (1, P) -> (P,)
    return {
        name: summarize(
            gradient_samples(partial(minibatch_estimate, with_baseline), params, repeats),
            reference)
        for name, with_baseline in (("score_function", False), ("score_function_baseline", True))
    }


# ---------------------------------------------------------------------------------- agent


class Reinforce:
    """Policy, optional V(s), their optimizers and the update count.

    `score(rollout)` turns a rollout into a `ScoredBatch` (returns and baselines from the V of
    before the update); `update(batch, log)` takes one policy-gradient step and then fits V.
    """

    def __init__(self, obs_dim: int, act_dim: int, config: ReinforceConfig,
                 device: torch.device) -> None:
        self.config = config
        self.actor = TanhSquashedActor(obs_dim, act_dim, config.hidden_sizes,
                                       config.policy_distribution).to(device)
        self.value = (ValueNetwork(obs_dim, config.hidden_sizes).to(device)
                      if config.baseline == "value" else None)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.lr, fused=True)
        self.value_optimizer = (
            None if self.value is None
            else torch.optim.Adam(self.value.parameters(), lr=config.value_lr, fused=True)
        )
        self.num_updates = 0

    @torch.no_grad()
    def score(self, rollout: Rollout) -> ScoredBatch:
        """Reward-to-go, baseline and scored-step mask of a rollout,
        flattened to the scored steps."""
        next_value = torch.zeros_like(rollout.reward)  # (T, N): no learned V -> no bootstrap
        value = None
        if self.value is not None:
            value = self.value(rollout.obs)  # (T, N, O) -> (T, N)
            next_value = self.value(rollout.next_obs)  # (T, N, O) -> (T, N)
        returns = reward_to_go(rollout.reward, rollout.terminated, rollout.truncated, next_value,
                               self.config.gamma)
        if self.config.whole_episodes:
            scored = complete_episode_mask(rollout.terminated, rollout.truncated)  # (T, N)
        else:
            scored = torch.ones_like(rollout.terminated)
        returns = returns[scored]  # (T, N) -> (M,)
        baseline = None
        if value is not None:
            baseline = value[scored]  # (T, N) -> (M,)
        elif self.config.baseline == "mean" and returns.shape[0] >= 2:
            baseline = leave_one_out_baseline(returns)
        return ScoredBatch(rollout.obs[scored], rollout.pre_squash[scored], returns, baseline)

    def update(self, batch: ScoredBatch, log: bool) -> dict[str, float]:
        """One policy-gradient step on the batch, then `value_steps` regression steps of V.

        Logged: `loss/actor` (the negated surrogate), `loss/value`, `stats/entropy`
        (-mean log pi of the taken actions), `stats/log_std_mean`, `stats/return_mean` (mean
        G_t), `stats/value_explained_variance` (1 - Var(G - V) / Var(G), V before the fit).
        """
        config = self.config
        dist = self.actor(batch.obs)
        log_prob = dist.log_prob_pre_squash(batch.pre_squash)  # (M,): the stored draw, scored again
        objective = policy_surrogate(log_prob, batch.returns, batch.baseline,
                                     config.normalize_advantage)
        if config.entropy_coef > 0:
            # Pathwise entropy estimate from a fresh draw: -log pi of the *stored* actions has a
            # zero-mean gradient (E[grad log pi] = 0), so it would add only noise.
            _, fresh_log_prob = dist.rsample_and_log_prob()  # (M,)
            objective = objective - config.entropy_coef * fresh_log_prob.mean()  # (M,) -> ()
        loss_actor = -objective
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss_actor.backward()
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.actor.parameters(), config.max_grad_norm)
        self.actor_optimizer.step()

        explained_variance = loss_value = None
        if (self.value is not None and self.value_optimizer is not None
                and batch.baseline is not None):
            if log:  # measured on V before the fit
                residual_var = (batch.returns - batch.baseline).var()  # (M,) -> ()
                explained_variance = 1.0 - residual_var / batch.returns.var().clamp_min(1e-8)
            for _ in range(config.value_steps):
                loss_value = baseline_regression_loss(self.value(batch.obs), batch.returns)
                self.value_optimizer.zero_grad(set_to_none=True)
                loss_value.backward()
                self.value_optimizer.step()
        self.num_updates += 1
        if not log:  # the statistics below are computed only when they are logged
            return {}
        metrics = {
            "loss/actor": loss_actor.detach(),
            "stats/entropy": -log_prob.detach().mean(),  # (M,) -> ()
            "stats/log_std_mean": dist.scale.detach().log().mean(),  # (M, A) -> ()
            "stats/return_mean": batch.returns.mean(),  # (M,) -> ()
        }
        if explained_variance is not None:
            metrics["stats/value_explained_variance"] = explained_variance
        if loss_value is not None:
            metrics["loss/value"] = loss_value.detach()
        values = torch.stack(list(metrics.values())).tolist()  # one host sync for all of them
        return dict(zip(metrics, values, strict=True))

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "value": None if self.value is None else self.value.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "value_optimizer": (None if self.value_optimizer is None
                                else self.value_optimizer.state_dict()),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        if self.value is not None and self.value_optimizer is not None:
            self.value.load_state_dict(state["value"])
            self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.num_updates = state["num_updates"]


# ---------------------------------------------------------------------------------- learner


class ReinforceLearner:
    """REINFORCE on a vector env, driven by train.py through the Learner protocol.

    One `advance` collects `rollout_steps` steps of every sub-env with the current policy
    (`step` grows by rollout_steps * num_envs), scores them and takes one update. With
    `grad_variance_every` N > 0, the first logged update at or after every N updates also logs
    `grad/score_function_*` and `grad/score_function_baseline_*` (agents.policy_gradients),
    measured on the batch before the update on a private RNG copy. With `video_dir`, every
    evaluation films its first episode to `video_dir/step_<N>.mp4` (agents.task.RLTask).
    """

    def __init__(
        self,
        env: EnvConfig,
        agent: ReinforceConfig,
        seed: int,
        device: torch.device,
        eval_episodes: int,
        grad_variance_every: int,
        video_dir: Path | None = None,
    ) -> None:
        self.config, self.device = agent, device
        self.task = RLTask(env, seed, device, eval_episodes, video_dir)
        self.diagnostics = GradientDiagnostics(grad_variance_every, seed, device)
        self.agent = Reinforce(self.task.obs_dim, self.task.act_dim, agent, device)
        self.step = 0
        self.steps_per_advance = agent.rollout_steps * env.num_envs

    def advance(self, log: bool) -> dict[str, float]:
        task = self.task
        rollout, task.obs = collect_rollout(
            task.env, self.agent.actor, task.obs, self.config.rollout_steps, task.episodes
        )
        self.step += self.steps_per_advance
        batch = self.agent.score(rollout)
        metrics: dict[str, float] = {}
        if len(batch) >= 2:  # whole_episodes: no episode may have ended in a short batch
            metrics = self.diagnostics(
                self.agent.num_updates,
                log,
                lambda: metric_keys(
                    reinforce_gradient_figures(self.agent.actor, batch, DIAGNOSTIC_BATCH,
                                               DIAGNOSTIC_REPEATS)
                ),
            )
            metrics |= self.agent.update(batch, log)
        if not log:
            return {}
        metrics["stats/scored_fraction"] = len(batch) / self.steps_per_advance
        return metrics | self.task.episodes.pop_metrics()

    def evaluate(self) -> dict[str, float]:
        return self.task.evaluate(self.agent.actor, self.step)

    def pop_video(self) -> Path | None:
        """The MP4 the last evaluation filmed (with video_dir), once; else None."""
        return self.task.pop_video()

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "agent": self.agent.state_dict(),
            "diagnostics": self.diagnostics.state_dict(),
            "task": self.task.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.agent.load_state_dict(state["agent"])
        self.diagnostics.load_state_dict(state["diagnostics"])
        self.task.load_state_dict(state["task"])

    def summary(self) -> dict[str, Any]:
        return {"env_id": self.task.config.id}

    def write_figures(self, out_dir: Path) -> list[Path]:
        return []

    def close(self) -> None:
        self.task.close()
