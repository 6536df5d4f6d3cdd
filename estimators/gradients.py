"""Surrogate objectives whose gradient IS an estimator of grad_phi E_{z ~ q_phi}[f(z)].

Any torch model can use them: compute f on samples, build the surrogate, call .backward().
The convention is "maximize": these are objectives; callers negate them to get a loss.

Two estimators (Mohamed et al. 2020, "Monte Carlo Gradient Estimation in Machine Learning"):
- pathwise (reparameterization): z = g_phi(eps) from `rsample()`, gradient
  mean_k grad f(g_phi(eps_k)). Needs f differentiable in z; usually low variance.
- score function (REINFORCE, likelihood ratio): z from `sample()` (no gradient path), gradient
  mean_k (f(z_k) - b) grad log q_phi(z_k). Needs only f's value; variance is reduced by a
  baseline b that does not depend on z_k (then E[b grad log q] = b grad 1 = 0, no bias).

Baselines, from simplest to strongest: none; `ConstantBaseline`; `EMABaseline` (running mean of
f); a learned one (any tensor, e.g. a value network V(s), trained with
`baseline_regression_loss`); and `leave_one_out_baseline` over K samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "ConstantBaseline",
    "EMABaseline",
    "baseline_regression_loss",
    "leave_one_out_baseline",
    "pathwise_surrogate",
    "score_function_surrogate",
]


def _require_same_shape(**named: Tensor) -> None:
    """One-line ValueError stating every shape unless all named tensors share one shape."""
    shapes = {name: tuple(value.shape) for name, value in named.items()}
    if len(set(shapes.values())) > 1:
        listed = " vs ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shape mismatch: {listed} (they must be equal)")


def pathwise_surrogate(f: Tensor) -> Tensor:
    """Pathwise estimator: the mean of f, where f was computed on `rsample()`d z.

    Its gradient is mean_k d/dphi f(g_phi(eps_k)): autograd follows z back to the parameters.

    Shapes: f (*) any shape (one entry per sample) -> ().
    """
    return f.mean()  # (*) -> ()


def score_function_surrogate(
    f: Tensor, log_prob: Tensor, baseline: Tensor | float | None = None
) -> Tensor:
    """Score-function (REINFORCE) estimator: mean(log_prob * (f - baseline).detach() + f).

    f must be computed on a DETACHED sample (`sample()`), and log_prob = log q_phi(z) on that
    same sample. The gradient is then
        mean_k [(f_k - b_k) grad log q_phi(z_k) + grad_phi f_k]        (Williams 1992)
    where the second term is f's direct dependence on the parameters (e.g. -log q in an
    ELBO, alpha * log pi in SAC); when f has none it contributes nothing. The baseline must not
    depend on z_k (see `leave_one_out_baseline`) and gets no gradient here.

    The returned VALUE is a surrogate, not an estimate of E[f]: log mean(f) separately.

    Shapes:
        f, log_prob   (*) equal shapes, one entry per sample
        baseline      float, () or the shape of f
        returns       ()
    """
    _require_same_shape(f=f, log_prob=log_prob)
    if isinstance(baseline, Tensor) and baseline.dim() > 0:
        # Equal shapes only: a (B, 1) baseline against a (B,) f would silently broadcast to (B, B).
        _require_same_shape(baseline=baseline, f=f)
    advantage = (f if baseline is None else f - baseline).detach()
    return (log_prob * advantage + f).mean()  # (*) -> ()


@dataclass(frozen=True)
class ConstantBaseline:
    """b = value, fixed in advance (e.g. the known E[f] of a toy problem, or 0)."""

    # The baseline subtracted from every f.
    value: float


class EMABaseline:
    """Exponential moving average of f: b <- decay * b + (1 - decay) * mean(f).

    Use `.value` in the surrogate BEFORE calling `update(f)` with the same f: a baseline that
    has already seen f_k is correlated with it and biases the estimator. The first update sets
    b = mean(f) (no bias towards the initial 0). `.value` is a 0-dim tensor (no host sync).
    """

    def __init__(self, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.value: Tensor = torch.zeros(())
        self.num_updates = 0

    def update(self, f: Tensor) -> None:
        """Fold a batch of f values, shape (*), into the average."""
        batch_mean = f.detach().mean()  # (*) -> ()
        if self.num_updates == 0:
            self.value = batch_mean
        else:
            self.value = self.decay * self.value + (1.0 - self.decay) * batch_mean  # EMA step
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value.clone(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = state["value"].clone()
        self.num_updates = int(state["num_updates"])


def leave_one_out_baseline(f: Tensor, dim: int = 0) -> Tensor:
    """b_k = mean of the other K - 1 samples: (sum_j f_j - f_k) / (K - 1) (Kool et al. 2019).

    b_k does not depend on z_k, so the score-function estimator stays unbiased. Detached.

    Shapes: f (..., K, ...) with the K samples along `dim` -> same shape.
    """
    if f.dim() == 0:
        raise ValueError("leave-one-out needs K >= 2 samples along a dimension, got a 0-dim f")
    num_samples = f.shape[dim]
    if num_samples < 2:
        raise ValueError(
            f"leave-one-out needs K >= 2 samples along dim {dim}, got shape {tuple(f.shape)}"
        )
    f = f.detach()
    total = f.sum(dim=dim, keepdim=True)  # (..., K, ...) -> (..., 1, ...)
    return (total - f) / (num_samples - 1)


def baseline_regression_loss(baseline: Tensor, f: Tensor) -> Tensor:
    """Mean squared error that trains a learned baseline towards E[f] (f is detached).

    Shapes: baseline, f (*) equal shapes -> ().
    """
    _require_same_shape(baseline=baseline, f=f)
    return (baseline - f.detach()).pow(2).mean()  # (*) -> ()
