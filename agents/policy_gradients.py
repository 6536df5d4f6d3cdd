"""Estimators of the policy gradient at fixed parameters, their statistics, and when to take them.

The SAC actor objective, written to be maximized (SAC paper, Haarnoja et al. 2018, eq. 12 with
the sign flipped), over a batch of states s and actions of the current policy:

    J(theta) = E_s E_{a ~ pi_theta(.|s)} [ Q(s, a) - alpha log pi_theta(a | s) ],
    Q = min_e Q_e (the clipped double-Q minimum SAC's actor uses).

Three estimators of grad J from the same states (`ESTIMATORS`; Mohamed et al. 2020, sec. 4-5):
- `pathwise`: a = tanh(loc + scale * eps) from `rsample`; autograd follows a into Q and log pi.
  This is SAC's own actor gradient (agents.sac.actor_loss; a test checks they are equal).
- `score_function`: a from a detached pre-squash draw, so no gradient passes through the action:
  mean[(Q - alpha log pi) grad log pi - alpha grad log pi] (the last term is f's direct
  dependence on theta, kept by `score_function_surrogate`; it has mean zero).
- `score_function_baseline`: the same with the state baseline b(s) = mean over M independent
  draws a'_m of Q(s, a'_m) - alpha log pi(a'_m | s), an estimate of the soft value V(s). It
  does not depend on the scored action, so the estimator stays unbiased.

`summarize` turns K repeated estimates into the reported figures; the core's
`estimators.diagnostics.GradientDiagnostics` decides when a learner measures them in training.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from estimators.distributions import TanhSquashed
from estimators.gradients import pathwise_surrogate, score_function_surrogate
from estimators.variance import gradient_samples, gradient_stats

# The estimators of grad J compared at the same states and parameters (module docstring).
ESTIMATORS = ("pathwise", "score_function", "score_function_baseline")
# Independent action draws per state for the score-function baseline b(s).
BASELINE_SAMPLES = 16
# Action draws per state of the in-training pathwise reference gradient.
REFERENCE_DRAWS = 32
# Repeated estimates per in-training measurement: a variance to within ~35% (sqrt(2 / 15)), plenty
# for a log-scale chart of estimators that differ by orders of magnitude, at half the cost of 32.
DIAGNOSTIC_REPEATS = 16
# State-action pairs per forward pass of the reference (bounds its memory).
REFERENCE_CHUNK = 65_536

# The figures `summarize` reports, and their short names in `grad/<estimator>_<name>` keys.
METRIC_NAMES = {
    "grad_var_trace": "var_trace",
    "grad_norm_mean": "norm_mean",
    "cosine_to_reference": "cosine",
    "snr": "snr",
}

Actor = Callable[[Tensor], TanhSquashed]


def actor_objective(critic: nn.Module, obs: Tensor, action: Tensor, log_prob: Tensor,
                    alpha: Tensor | float) -> Tensor:
    """The integrand of J: min_e Q_e(s, a) - alpha log pi(a | s), per state-action pair.

    The critic is evaluated with detached weights (`detach_params=True`), as SAC's actor loss
    does: gradients reach only the actor, through `action` (pathwise) or `log_prob`.

    Shapes: obs (B, O), action (B, A), log_prob (B,) -> (B,).
    """
    q = critic(obs, action, detach_params=True).amin(dim=0)  # (E, B) -> (B,)
    return q - alpha * log_prob


def soft_value_baseline(dist: TanhSquashed, critic: nn.Module, obs: Tensor, alpha: Tensor | float,
                        num_samples: int) -> Tensor:
    """b(s) = mean_m [Q(s, a'_m) - alpha log pi(a'_m | s)] over `num_samples` fresh
    draws; no gradient.

    Shapes: dist batch (B,), obs (B, O) -> (B,).
    """
    with torch.no_grad():
        action, log_prob = dist.rsample_and_log_prob((num_samples,))  # (M, B, A), (M, B)
        repeated = obs.expand(num_samples, *obs.shape)  # (B, O) -> (M, B, O), no copy
        f = actor_objective(critic, repeated.flatten(0, 1), action.flatten(0, 1),
                            log_prob.flatten(), alpha)  # (M*B,)
        return f.view(num_samples, -1).mean(dim=0)  # (M*B,) -> (M, B) -> (B,)


def actor_surrogate(
    estimator: str, actor: Actor, critic: nn.Module, obs: Tensor, alpha: Tensor | float,
    baseline: Tensor | None = None,
) -> Tensor:
    """One estimate of J on the states `obs` (one fresh action per state) whose gradient is
    the named estimator of grad J. Maximize convention: SAC's actor loss is its negative.

    `score_function_baseline` uses `baseline` when given (b(s) from `soft_value_baseline`,
    drawn independently of this estimate's actions), else draws its own BASELINE_SAMPLES.
    Repeated estimates at the same states may share one b: any fixed b leaves the estimate
    unbiased, so its spread given b is an unbiased sample of the estimator's variance.

    Shapes: obs (B, O), baseline (B,) -> ().
    """
    dist = actor(obs)
    if estimator == "pathwise":
        action, log_prob = dist.rsample_and_log_prob()  # (B, A), (B,)
        return pathwise_surrogate(actor_objective(critic, obs, action, log_prob, alpha))
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    pre_squash = dist.sample_pre_squash()  # (B, A), detached: no gradient through the action
    log_prob = dist.log_prob_pre_squash(pre_squash)  # (B,), carries grad log pi
    f = actor_objective(critic, obs, dist.squash(pre_squash), log_prob, alpha)  # (B,)
    if estimator == "score_function":
        return score_function_surrogate(f, log_prob)
    if baseline is None:
        baseline = soft_value_baseline(dist, critic, obs, alpha, BASELINE_SAMPLES)
    return score_function_surrogate(f, log_prob, baseline)


def reference_gradient(actor: nn.Module, critic: nn.Module, obs: Tensor, alpha: Tensor | float,
                       draws: int) -> Tensor:
    """grad J at the states `obs`, pathwise, averaged over `draws` actions per state.

    Computed in chunks of at most REFERENCE_CHUNK state-action pairs (equal-size chunks, so
    the mean of the chunk gradients is the gradient of the overall mean).

    Shapes: obs (B, O) -> (P,), P = number of actor parameters.
    """
    params = list(actor.parameters())
    per_chunk = max(1, min(draws, REFERENCE_CHUNK // obs.shape[0]))
    while draws % per_chunk:  # equal chunks
        per_chunk -= 1
    total = torch.zeros(sum(p.numel() for p in params), device=obs.device)
    for _ in range(draws // per_chunk):
        dist = actor(obs)
        action, log_prob = dist.rsample_and_log_prob((per_chunk,))  # (D, B, A), (D, B)
        repeated = obs.expand(per_chunk, *obs.shape)  # (B, O) -> (D, B, O), no copy
        f = actor_objective(critic, repeated.flatten(0, 1), action.flatten(0, 1),
                            log_prob.flatten(), alpha)  # (D*B,)
        grads = torch.autograd.grad(pathwise_surrogate(f), params)
        total += torch.cat([g.reshape(-1) for g in grads])  # P_i each -> (P,)
    return total / (draws // per_chunk)


def summarize(samples: Tensor, reference: Tensor) -> dict[str, float]:
    """The reported figures of K gradient estimates (estimators.variance does the statistics).

    grad_var_trace: trace of the estimates' covariance; grad_norm_mean: mean of ||g_k||;
    cosine_to_reference: mean cos(g_k, reference); snr: ||mean|| / sqrt(grad_var_trace).

    Shapes: samples (K, P), reference (P,).
    """
    stats = gradient_stats(samples, reference)
    assert stats.cosine_to_reference is not None  # a reference was given
    return {
        "grad_var_trace": stats.var_trace,
        "grad_norm_mean": float(samples.norm(dim=1).mean()),  # (K, P) -> (K,) -> ()
        "cosine_to_reference": stats.cosine_to_reference,
        "snr": stats.snr,
    }


def sac_gradient_figures(
    actor: nn.Module, critic: nn.Module, obs: Tensor, alpha: Tensor | float, repeats: int,
    reference_draws: int = REFERENCE_DRAWS,
) -> dict[str, dict[str, float]]:
    """`summarize` of `repeats` estimates per estimator at the states `obs` (one fresh action
    per state each), against the pathwise reference with `reference_draws` actions per state.
    The score-function baseline b(s) is drawn once and shared by the repeats (see
    `actor_surrogate`): BASELINE_SAMPLES critic calls per state instead of per state and repeat.

    Shapes: obs (B, O).
    """
    params = list(actor.parameters())
    reference = reference_gradient(actor, critic, obs, alpha, reference_draws)
    with torch.no_grad():
        baseline = soft_value_baseline(actor(obs), critic, obs, alpha, BASELINE_SAMPLES)
    return {
        name: summarize(
            gradient_samples(partial(actor_surrogate, name, actor, critic, obs, alpha, baseline),
                             params, repeats),
            reference,
        )
        for name in ESTIMATORS
    }


def sac_gradient_metrics(actor: nn.Module, critic: nn.Module, obs: Tensor,
                         alpha: Tensor | float) -> dict[str, float]:
    """In-training figures for SAC: `grad/<estimator>_<var_trace|norm_mean|cosine|snr>` for the
    three estimators at the update's states, DIAGNOSTIC_REPEATS estimates each.

    Shapes: obs (B, O).
    """
    return metric_keys(sac_gradient_figures(actor, critic, obs, alpha, DIAGNOSTIC_REPEATS))


def metric_keys(figures: dict[str, dict[str, float]]) -> dict[str, float]:
    """Flatten {estimator: {figure: value}} into `grad/<estimator>_<short figure name>` keys."""
    return {
        f"grad/{name}_{METRIC_NAMES[key]}": value
        for name, values in figures.items()
        for key, value in values.items()
    }
