"""Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications").

Read top to bottom: the config, the three losses (pure functions of a batch and the
networks), the same gradients with the backward passes written out (`critic_gradients`,
`actor_gradients`: the default, faster path, a verified accelerator: the first update of every
run checks it against autograd on the loss functions and stops the run if they differ), the
`SAC` agent that owns the optimizers, target critics and update counter, and `SACLearner`,
that agent in the off-policy loop of agents/off_policy.py: what train.py drives.

The policy gradient here is the pathwise (reparameterization) estimator: the actor loss is
evaluated on a = tanh(loc(s) + scale(s) * eps), so its gradient flows through Q(s, a) into the
policy parameters (SAC paper eq. 11-13).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution
from torch.optim.adam import adam

from agents.buffer import Batch
from agents.off_policy import OffPolicyLearner, phase
from agents.policy_gradients import actor_objective, sac_gradient_metrics
from agents.task import RLTask
from envs import EnvConfig
from estimators.diagnostics import GradientDiagnostics
from estimators.distributions import LocationScaleFamily
from policies import backprop
from policies.actor import TanhSquashedActor
from policies.critic import EnsembleQ

BACKPROP = ("explicit", "autograd")
# The explicit gradients' check against autograd: per parameter tensor, the pass needs
# ||g_explicit - g_autograd|| <= GRAD_CHECK_RTOL ||g_autograd|| + GRAD_CHECK_ATOL. The two differ
# only by float32 summation order, about sqrt(B) * 1.2e-7 ~ 2e-6 relative at B = 256; an edited
# loss or a changed network changes a gradient by a fraction of itself, 1e-1 to 1.
GRAD_CHECK_RTOL = 1e-3
GRAD_CHECK_ATOL = 1e-6


class GradientCheckError(RuntimeError):
    """The explicit gradients differ from autograd on the loss functions: the run stops."""


@dataclass
class SACConfig:
    """SAC hyperparameters (defaults: the SAC paper's, as in stable-baselines3's SAC)."""

    # Adam learning rate of the actor, the critics and log_alpha
    lr: float = 3e-4
    # transitions per gradient step
    batch_size: int = 256
    # replay capacity in transitions; the oldest are overwritten
    buffer_size: int = 1_000_000
    # env steps with uniform random actions (and no updates) before the policy takes over
    learning_starts: int = 100
    # discount factor gamma
    gamma: float = 0.99
    # Polyak rate of the target critics: target <- (1 - tau) * target + tau * online
    tau: float = 0.005
    # hidden layer widths of the actor and of each critic
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    # run the gradient steps every this many advances (one advance = one step of every sub-env)
    train_freq: int = 1
    # gradient steps per training round
    gradient_steps: int = 1
    # learn alpha toward target_entropy (true) or keep it fixed at init_alpha (false)
    autotune_alpha: bool = True
    # initial entropy temperature alpha (the fixed one when autotune_alpha is false)
    init_alpha: float = 1.0
    # entropy the tuned alpha aims for; None: -act_dim (the SAC paper's -|A|)
    target_entropy: float | None = None
    # the policy's pre-squash family (estimators.LOCATION_SCALE_FAMILIES):
    # normal (the tanh-Gaussian), laplace or logistic; each tanh-squashed with its exact log-density
    policy_distribution: LocationScaleFamily = "normal"
    # Q critics in the ensemble; targets and the actor use their minimum (2: clipped double-Q)
    num_critics: int = 2
    # how the update gets its gradients: "explicit" (the backward passes written out, no graph;
    # faster; checked against autograd on the losses at the first update of every run, which
    # stops with an error naming the loss if they differ) or "autograd" (torch.autograd on the
    # loss functions below: edit those to experiment, and set this)
    backprop: str = "explicit"
    # torch.compile the explicit gradient functions (one compile, ~10 s, on the first update);
    # if compiling fails (no C++ compiler, unsupported platform) it warns once and runs eagerly
    compile: bool = False

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("batch_size", "buffer_size", "train_freq", "gradient_steps", "num_critics"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if self.learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0, got {self.learning_starts}")
        if not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        if not self.init_alpha > 0:
            raise ValueError(f"init_alpha must be > 0, got {self.init_alpha}")
        if self.backprop not in BACKPROP:
            raise ValueError(f"backprop must be one of {', '.join(BACKPROP)}, got "
                             f"{self.backprop!r}")
        if self.compile and self.backprop != "explicit":
            raise ValueError("compile: true needs backprop: explicit (compiling the autograd "
                             "losses was slower)")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ValueError("target_entropy must be a finite number or null, got "
                             f"{self.target_entropy}")


# ---------------------------------------------------------------------------------- losses


def critic_loss(
    critic: EnsembleQ,
    target_critic: EnsembleQ,
    actor: TanhSquashedActor,
    batch: Batch,
    alpha: Tensor,
    gamma: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Soft Bellman residual of every critic against one clipped double-Q target.

    J_Q = 1/2 sum_e E[(Q_e(s, a) - y)^2],   y = r + gamma (1 - terminated) V(s'),
    V(s') = min_e Qtarget_e(s', a') - alpha log pi(a' | s'),  a' ~ pi(. | s')   (SAC eq. 3, 5-6)
    Only a terminal state stops the bootstrap; a truncated episode still bootstraps from V(s').

    Shapes: batch fields (B, ...); alpha (); info["q"] (E, B), info["q_target"] (B,).
    """
    q_target = soft_q_target(target_critic, actor, batch, alpha, gamma)  # (B,)
    q = critic(batch.obs, batch.action)  # (E, B)
    # 1/2 sum_e mean_b (q - y)^2 = E/2 * mean_{e,b} (q - y)^2, one fused op
    loss = 0.5 * q.shape[0] * F.mse_loss(q, q_target.expand_as(q))  # (E, B) -> ()
    return loss, {"q": q.detach(), "q_target": q_target}


@torch.no_grad()
def soft_q_target(
    target_critic: EnsembleQ, actor: TanhSquashedActor, batch: Batch, alpha: Tensor, gamma: float
) -> Tensor:
    """y = r + gamma (1 - terminated) (min_e Qtarget_e(s', a') - alpha log pi(a' | s')),
    a' ~ pi(. | s').

    SAC eq. 3 and 6, without gradient. Shapes: batch fields (B, ...) -> (B,).
    """
    next_action, next_log_prob = actor(batch.next_obs).rsample_and_log_prob()  # (B, A), (B,)
    next_q = target_critic(batch.next_obs, next_action).amin(dim=0)  # (E, B) -> (B,)
    next_v = next_q - alpha * next_log_prob  # soft value V(s'), SAC eq. 3
    return batch.reward + gamma * (1.0 - batch.terminated) * next_v  # y, SAC eq. 6


def actor_loss(
    actor: TanhSquashedActor, critic: EnsembleQ, obs: Tensor, alpha: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Reparameterized policy loss J_pi = E_s E_eps[alpha log pi(a | s) - min_e Q_e(s, a)].

    a = tanh(loc(s) + scale(s) * eps) (SAC eq. 11-13): the negative of the pathwise estimate of
    J = E[min_e Q_e(s, a) - alpha log pi(a | s)], whose integrand `actor_objective` is shared
    with the variance tools. The critics are evaluated with detached weights: the gradient
    reaches the actor through the action, and no critic weight gradient is computed.

    Shapes: obs (B, obs_dim); alpha (); info["log_prob"] (B,), info["scale"] (B, A).
    """
    dist = actor(obs)
    action, log_prob = dist.rsample_and_log_prob()  # (B, A), (B,)
    loss = -actor_objective(critic, obs, action, log_prob, alpha).mean()  # (B,) -> ()
    return loss, {"log_prob": log_prob.detach(), "scale": dist.scale.detach()}


def alpha_loss(
    log_alpha: Tensor, log_prob: Tensor, target_entropy: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Temperature loss J(alpha) = E[-log_alpha (log pi(a | s) + target_entropy)].

    SAC eq. 18, written on log_alpha (as stable-baselines3 does) so alpha stays positive. Its
    gradient is H - target_entropy with H = -E[log pi]: when the entropy is below the target,
    descent raises alpha (more weight on entropy); above it, alpha falls.

    Shapes: log_alpha (); log_prob (B,), detached.
    """
    loss = -(log_alpha * (log_prob + target_entropy)).mean()  # (B,) -> ()
    return loss, {}


# ------------------------------------------------------------- the same gradients, by hand


def critic_gradients(
    critic: EnsembleQ, target_critic: EnsembleQ, actor: TanhSquashedActor, batch: Batch,
    alpha: Tensor, gamma: float
) -> tuple[list[Tensor], Tensor, Tensor]:
    """dJ_Q / d(critic parameters) of `critic_loss`, with the backward pass written out.

    Returns the gradients in `critic.parameters()` order, J_Q and q. Shapes: q (E, B).
    Call it under torch.no_grad(), as SAC does: then no graph is built.
    """
    layers = backprop.affine_layers(critic)
    q_target = soft_q_target(target_critic, actor, batch, alpha, gamma)  # (B,)
    q, inputs = backprop.forward_keeping_inputs(
        layers, critic.stack_inputs(batch.obs, batch.action))  # (E, B, 1)
    residual = q.squeeze(-1) - q_target  # (E, B)
    loss = 0.5 * q.shape[0] * residual.square().mean()  # J_Q = 1/2 sum_e mean_b (q - y)^2
    grad_q = residual.unsqueeze(-1) / q.shape[1]  # dJ_Q / dq_eb = (q_eb - y_b) / B, (E, B, 1)
    grads = backprop.param_grads(layers, inputs, grad_q)
    return grads, loss, q.squeeze(-1)


def actor_gradients(
    actor: TanhSquashedActor, critic: EnsembleQ, obs: Tensor, alpha: Tensor, log_alpha: Tensor,
    target_entropy: float | None,
) -> tuple[list[Tensor], Tensor, Tensor | None, Tensor, Tensor]:
    """dJ_pi / d(actor parameters) of `actor_loss` (and dJ(alpha) / dlog_alpha of `alpha_loss`
    when target_entropy is given, appended last), with the backward passes written out.

    Returns the gradients, J_pi, J(alpha) or None, log pi (B,) and the policy's scale (B, A).
    Call it under torch.no_grad(), as SAC does: then no graph is built.
    """
    actor_layers, critic_layers = backprop.affine_layers(actor.net), backprop.affine_layers(critic)
    batch_size = obs.shape[0]
    out, actor_inputs = backprop.forward_keeping_inputs(actor_layers, obs)  # (B, 2A)
    dist = actor.distribution(out)
    u = dist.base.rsample()  # pre-squash draw u = loc + scale * eps, (B, A)
    action, log_prob = dist.squash(u), dist.log_prob_pre_squash(u)  # (B, A), (B,)
    q, critic_inputs = backprop.forward_keeping_inputs(
        critic_layers, critic.stack_inputs(obs, action))  # (E, B, 1)
    min_q, argmin = q.squeeze(-1).min(dim=0)  # (E, B) -> (B,), (B,)
    loss = (alpha * log_prob - min_q).mean()  # J_pi = E[alpha log pi(a|s) - min_e Q_e(s, a)]
    # dJ_pi / dQ_eb = -1/B for the critic e that is the minimum at b, 0 for the others
    grad_q = torch.zeros_like(q).scatter_(0, argmin.view(1, -1, 1), -1.0 / batch_size)
    grad_x = backprop.input_grad(critic_layers, critic_inputs, grad_q)  # (E, B, O + A)
    # (E, B, O + A) -> (B, A): every critic sees a
    grad_action = grad_x[..., -action.shape[-1]:].sum(0)
    grad_log_prob = (alpha / batch_size).expand(batch_size)  # dJ_pi / dlog pi_b = alpha / B
    grad_loc, grad_log_std = dist.rsample_and_log_prob_backward(u, grad_action, grad_log_prob)
    # through the log-std bound
    grad_raw = grad_log_std * actor.bound_log_std_grad(out.chunk(2, dim=-1)[1])
    # (B, 2A), as the MLP's output (loc, raw log-std)
    grad_out = torch.cat([grad_loc, grad_raw], dim=-1)
    grads = backprop.param_grads(actor_layers, actor_inputs, grad_out)
    loss_alpha = None
    if target_entropy is not None:
        # J(alpha) = -mean(log_alpha (log pi + target_entropy)), so
        # dJ / dlog_alpha = -mean(log pi + target_entropy)
        grad_log_alpha = -(log_prob + target_entropy).mean()
        loss_alpha = log_alpha * grad_log_alpha
        grads.append(grad_log_alpha)
    return grads, loss, loss_alpha, log_prob, dist.scale


def autograd_gradients(loss: Callable[[], Tensor], params: list[Tensor],
                       device: torch.device) -> list[Tensor]:
    """d loss() / d params by torch.autograd, with the RNG restored afterwards: the next call
    that draws noise (the explicit gradients being checked) draws the same noise."""
    with (torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
          torch.enable_grad()):
        return list(torch.autograd.grad(loss(), params))


def check_gradients(explicit: list[Tensor], autograd: list[Tensor], names: list[str], loss: str,
                    by_hand: str) -> None:
    """Raise GradientCheckError naming `loss` unless every explicit gradient is within the
    tolerance (GRAD_CHECK_RTOL, GRAD_CHECK_ATOL) of autograd's. Norms in float64: a diverging run's
    float32 gradients (~1e20) overflow a float32 norm. Where autograd's own gradient is not finite
    there is nothing to compare; the NaN guard stops that run. One host sync."""
    errors = torch.stack([
        torch.where(w.isfinite().all(),
                    (g.double() - w.double()).norm() - GRAD_CHECK_RTOL * w.double().norm(), 0.0)
        - GRAD_CHECK_ATOL for g, w in zip(explicit, autograd, strict=True)]).tolist()
    # a NaN fails too
    bad = [name for name, error in zip(names, errors, strict=True) if not error <= 0.0]
    if bad:
        raise GradientCheckError(
            f"the gradient of {loss} differs from its hand-written backward pass {by_hand} (in "
            f"{', '.join(bad)}): {loss} or the networks were changed; set agent.backprop=autograd "
            f"to train the loss functions as they are, or update {by_hand} to match")


# ---------------------------------------------------------------------------------- agent


class StepOutput(NamedTuple):
    """What one gradient step hands back for logging (all detached).

    Shapes: the losses (); q (E, B); log_prob (B,); scale (B, A).
    """

    loss_critic: Tensor
    loss_actor: Tensor
    loss_alpha: Tensor | None
    q: Tensor
    log_prob: Tensor
    scale: Tensor


def compile_or_eager(fn: Callable[..., Any]) -> Callable[..., Any]:
    """torch.compile(fn), or fn itself (after one warning) if compiling or running it fails.

    The compiled function draws its noise with torch's own generator (`fallback_random`), so
    it consumes the same random numbers as fn and a seeded run is reproducible either way.
    """
    # torch.compile's first use turns torch.distributions' argument checks off for the whole
    # process (Distribution.set_default_validate_args(False)); give the caller's setting back
    validate_args = Distribution._validate_args
    compiled = torch.compile(fn, dynamic=False, options={"fallback_random": True})
    Distribution.set_default_validate_args(validate_args)
    current = compiled

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal current
        try:
            return current(*args, **kwargs)
        # e.g. no C++ compiler for inductor; an error of fn itself re-raises below
        except Exception as error:
            if current is fn:
                raise
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            warnings.warn(f"torch.compile of {fn.__name__} failed ({type(error).__name__}: "
                          f"{reason}); running it eagerly", RuntimeWarning, stacklevel=2)
            current = fn
            return fn(*args, **kwargs)

    return call


def apply_gradients(optimizer: torch.optim.Optimizer, grads: list[Tensor]) -> None:
    """One step of one of SAC's Adam optimizers with these gradients (in its parameter order).

    After the first step this calls `torch.optim.adam.adam`, the function `Adam.step()` runs, on
    the optimizer's own state tensors: the same update, without step()'s per-call bookkeeping
    (about 65 us, 3% of a training step here). The first step goes through step(), which
    creates that state. For Adam as SAC builds it: one parameter group, no amsgrad.
    """
    group = optimizer.param_groups[0]
    params = group["params"]
    if not optimizer.state:
        for param, grad in zip(params, grads, strict=True):
            param.grad = grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return
    states = [optimizer.state[param] for param in params]
    adam(
        params, grads, [state["exp_avg"] for state in states],
        [state["exp_avg_sq"] for state in states], [], [state["step"] for state in states],
        fused=group["fused"], foreach=group["foreach"], amsgrad=False, lr=group["lr"],
        beta1=group["betas"][0], beta2=group["betas"][1], weight_decay=group["weight_decay"],
        eps=group["eps"], maximize=group["maximize"],
    )


class SAC:
    """Actor, twin critics and their targets, log_alpha, the optimizers and the update count.

    `update(batch, log)` does one gradient step: critics, then actor and alpha together (the
    actor against the updated critics), then the Polyak update of the target critics. All
    three losses use the alpha of the start of the step. It returns {} unless `log`, when it returns
    `loss/critic`, `loss/actor`, `loss/alpha` (when tuned), `stats/alpha`, `stats/entropy`
    (-mean log pi), `stats/q_mean` and `stats/log_std_mean`, read back in one host sync.
    """

    def __init__(
        self, obs_dim: int, act_dim: int, config: SACConfig, device: torch.device,
        grad_variance_every: int = 0, seed: int = 0,
    ) -> None:
        self.config = config
        self.actor = TanhSquashedActor(obs_dim, act_dim, config.hidden_sizes,
                                       config.policy_distribution).to(device)
        self.critic = EnsembleQ(obs_dim, act_dim, config.hidden_sizes,
                                config.num_critics).to(device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_entropy = (-float(act_dim) if config.target_entropy is None
                               else config.target_entropy)
        self.log_alpha = torch.tensor(
            math.log(config.init_alpha), device=device, requires_grad=config.autotune_alpha
        )
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.lr, fused=True)
        # One Adam for the actor and log_alpha: Adam updates every parameter separately with its
        # own moments, so at the shared lr this equals two optimizers, in one fused kernel.
        policy_params = [*self.actor.parameters(),
                         *([self.log_alpha] if config.autotune_alpha else [])]
        self.policy_optimizer = torch.optim.Adam(policy_params, lr=config.lr, fused=True)
        self.explicit = config.backprop == "explicit"
        unsupported = backprop.unsupported(self.actor.net) or backprop.unsupported(self.critic)
        if self.explicit and unsupported:
            warnings.warn(f"backprop: explicit cannot differentiate this network ({unsupported}); "
                          "using autograd on the loss functions", RuntimeWarning, stacklevel=2)
            self.explicit = False
        self._checked = False  # the explicit gradients are checked against autograd once, first
        # the explicit gradient functions, compiled when asked
        self._critic_gradients = (compile_or_eager(critic_gradients) if config.compile
                                  else critic_gradients)
        self._actor_gradients = (compile_or_eager(actor_gradients) if config.compile
                                 else actor_gradients)
        self._online: list[Tensor] = list(self.critic.parameters())
        self._target: list[Tensor] = list(self.target_critic.parameters())
        self.num_updates = 0
        # pathwise vs score-function actor-gradient statistics every N updates (0: off)
        self.grad_diagnostics = GradientDiagnostics(grad_variance_every, seed, device)

    @property
    def alpha(self) -> Tensor:
        """The current temperature exp(log_alpha), detached, shape ()."""
        return self.log_alpha.detach().exp()

    @torch.no_grad()
    def update_targets(self) -> None:
        """Polyak averaging, fused over all tensors: target += tau * (online - target)."""
        torch._foreach_lerp_(self._target, self._online, self.config.tau)

    def update(self, batch: Batch, log: bool) -> dict[str, float]:
        alpha = self.alpha
        grad_metrics = self.grad_diagnostics(
            self.num_updates, log,
            lambda: sac_gradient_metrics(self.actor, self.critic, batch.obs, alpha)
        )
        step = self._explicit_step if self.explicit else self._autograd_step
        out = step(batch, alpha)
        with phase("sac/target_update"):
            self.update_targets()
        self.num_updates += 1
        if not log:  # the statistics below are computed only when they are logged
            return {}
        metrics = {
            "loss/critic": out.loss_critic,
            "loss/actor": out.loss_actor,
            "stats/alpha": alpha,
            "stats/entropy": -out.log_prob.mean(),  # (B,) -> ()
            "stats/q_mean": out.q.mean(),  # (E, B) -> ()
            "stats/log_std_mean": out.scale.log().mean(),  # (B, A) -> ()
        }
        if out.loss_alpha is not None:
            metrics["loss/alpha"] = out.loss_alpha
        values = torch.stack(list(metrics.values())).tolist()  # one host sync for all of them
        return dict(zip(metrics, values, strict=True)) | grad_metrics

    def _autograd_step(self, batch: Batch, alpha: Tensor) -> StepOutput:
        """Critic, then actor and alpha, with gradients from torch.autograd
        on the loss functions."""
        with phase("sac/critic_update"):
            loss_q, info_q = critic_loss(self.critic, self.target_critic, self.actor, batch, alpha,
                                         self.config.gamma)
            self.critic_optimizer.zero_grad(set_to_none=True)
            loss_q.backward()
            self.critic_optimizer.step()

        with phase("sac/actor_update"):
            loss, loss_pi, loss_a, info_pi = self._policy_losses(batch, alpha)
            self.policy_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.policy_optimizer.step()
        return StepOutput(loss_q.detach(), loss_pi.detach(),
                          None if loss_a is None else loss_a.detach(), info_q["q"],
                          info_pi["log_prob"], info_pi["scale"])

    def _explicit_step(self, batch: Batch, alpha: Tensor) -> StepOutput:
        """The same step with the backward passes written out
        (`critic_gradients`, `actor_gradients`).

        Same losses, same noise draws in the same order, same gradients as `_autograd_step` up
        to float rounding. The first call (per SAC object: every run and every resume) checks
        that on its batch and noise against autograd on `critic_loss`, `actor_loss` and
        `alpha_loss`, and raises GradientCheckError naming the loss that differs.
        """
        check, self._checked = not self._checked, True
        gamma, device = self.config.gamma, self.log_alpha.device
        with phase("sac/critic_update"), torch.no_grad():
            if check:
                want = autograd_gradients(
                    lambda: critic_loss(self.critic, self.target_critic, self.actor, batch, alpha,
                                        gamma)[0],
                    self._online, device)
            grads, loss_q, q = self._critic_gradients(self.critic, self.target_critic, self.actor,
                                                      batch, alpha, gamma)
            if check:
                names = [f"critic.{name}" for name, _ in self.critic.named_parameters()]
                check_gradients(grads, want, names, "critic_loss", "critic_gradients")
            apply_gradients(self.critic_optimizer, grads)
        with phase("sac/actor_update"), torch.no_grad():
            tuned = self.config.autotune_alpha
            target_entropy = self.target_entropy if tuned else None
            if check:
                # the actor's, then log_alpha if tuned
                params = self.policy_optimizer.param_groups[0]["params"]
                want = autograd_gradients(lambda: self._policy_losses(batch, alpha)[0], params,
                                          device)
            grads, loss_pi, loss_a, log_prob, scale = self._actor_gradients(
                self.actor, self.critic, batch.obs, alpha, self.log_alpha.detach(), target_entropy
            )
            if check:
                names = [f"actor.{name}" for name, _ in self.actor.named_parameters()]
                check_gradients(grads, want, names + ["log_alpha"] * tuned,
                                "actor_loss + alpha_loss" if tuned else "actor_loss",
                                "actor_gradients")
            apply_gradients(self.policy_optimizer, grads)
        return StepOutput(loss_q, loss_pi, loss_a, q, log_prob, scale)

    def _policy_losses(
        self, batch: Batch, alpha: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None, dict[str, Tensor]]:
        """Their sum, actor_loss, alpha_loss (None unless alpha is tuned) and actor_loss's info.

        The sum has one backward for both: actor_loss sees alpha detached and alpha_loss sees
        log pi detached, so each parameter gets exactly the gradient of its own loss.
        """
        loss_pi, info_pi = actor_loss(self.actor, self.critic, batch.obs, alpha)
        if not self.config.autotune_alpha:
            return loss_pi, loss_pi, None, info_pi
        loss_a, _ = alpha_loss(self.log_alpha, info_pi["log_prob"], self.target_entropy)
        return loss_pi + loss_a, loss_pi, loss_a, info_pi

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "target_critic": self.target_critic.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "policy_optimizer": self.policy_optimizer.state_dict(),
            "num_updates": self.num_updates,
            "grad_diagnostics": self.grad_diagnostics.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.target_critic.load_state_dict(state["target_critic"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self.num_updates = state["num_updates"]
        self.grad_diagnostics.load_state_dict(state["grad_diagnostics"])


# ---------------------------------------------------------------------------------- learner


class SACLearner(OffPolicyLearner):
    """SAC on a vector env, driven by train.py through the Learner protocol: the off-policy
    loop of agents.off_policy (warm-up actions, env steps, replay, train_freq and
    gradient_steps) around the `SAC` agent. With `video_dir`, every evaluation films its first
    episode to `video_dir/step_<N>.mp4` (agents.task.RLTask).
    """

    agent: SAC

    def __init__(
        self, env: EnvConfig, agent: SACConfig, seed: int, device: torch.device, eval_episodes: int,
        grad_variance_every: int = 0, video_dir: Path | None = None,
    ) -> None:
        task = RLTask(env, seed, device, eval_episodes, video_dir)
        sac = SAC(task.obs_dim, task.act_dim, agent, device, grad_variance_every, seed)
        super().__init__(task, sac, agent, seed, device, name="sac")
