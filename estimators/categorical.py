r"""The categorical toy problem: gradients through a discrete sample, against the exact answer.

Setting. z ~ Categorical(p), p = softmax(theta), as a one-hot vector in R^K, and f(z) = c . z
for costs c. By enumeration, E f = p . c and, since d p_j / d theta_k = p_j (delta_jk - p_k),
    d/dtheta_k E f = p_k (c_k - p . c)                                       (exact gradient G)
Each estimate averages S >= 2 draws (S = `draws`), so that a leave-one-out baseline exists;
`CATEGORICAL_ESTIMATORS`:

- ``score_function``: g = mean_i f(z_i) s(z_i), with the score s(z) = d/dtheta log p_z = z - p.
- ``score_function_baseline``: g = mean_i (f(z_i) - b_i) s(z_i), b_i = mean_{j != i} f(z_j)
  (`estimators.gradients.leave_one_out_baseline`; Kool et al. 2019). Both are unbiased.
- ``pathwise_hard``: the naive pathwise gradient through the hard sample z = one_hot(argmax(
  theta + g)), g_k ~ Gumbel(0, 1) (the Gumbel-max trick, an exact sampler). z is piecewise
  constant in theta, so its derivative is 0 wherever it exists (almost everywhere), and
  autograd finds no path from theta to z at all: the estimate is exactly 0 on every draw,
  while G is not 0. Bias -G, variance 0.
- ``gumbel_softmax``: the relaxed sample y = softmax((theta + g) / T) (`GumbelSoftmax`), and
  g = mean_i grad_theta c . y_i: unbiased for the gradient of the RELAXED objective E[c . y_T],
  so biased for G. High T: y is smooth (low variance) but far from one-hot (more bias); as
  T -> 0, y -> z and the bias vanishes while the Jacobian of softmax(./T), of size 1/T near
  the decision boundaries, makes the variance grow.
- ``straight_through``: forward the hard one-hot argmax of y, backward the gradient of y
  (`GumbelSoftmax(hard=True)`). For this f, linear in z, df/dz = c wherever z is, so its
  gradient equals ``gumbel_softmax``'s draw by draw: same bias, same variance. (They differ
  for an f that is not linear on the simplex; here only the forward values differ.)

Closed forms, per component k, with s(z) = z - p (by enumeration over the K categories):
- score_function: Var g_k = [sum_j p_j c_j^2 (delta_jk - p_k)^2 - G_k^2] / S.
- score_function_baseline: summing pairs, g = C(S, 2)^{-1} sum_{i<j} h(z_i, z_j) is a
  U-statistic of order 2 with kernel h(x, y) = (f_x - f_y)(s_x - s_y)/2 = (c_x - c_y)(x - y)/2
  (p cancels), and E h = E[f s] = G. Hoeffding (1948): Var = [2 (S - 2) zeta_1 + zeta_2] / C(S, 2),
      zeta_1 = Var_x E_y h(x, y) = Var_x[(f_x - mu) s_x] / 4
             = [sum_j p_j (c_j - mu)^2 (delta_jk - p_k)^2 - G_k^2] / 4,   mu = p . c,
      zeta_2 = Var h = sum_{j,l} p_j p_l (c_j - c_l)^2 (delta_jk - delta_lk)^2 / 4 - G_k^2.
  (E_y h(x, y) = [(f_x - mu) s_x + G] / 2 since E s = 0.) S = 2 gives zeta_2; large S gives
  4 zeta_1 / S, the exact-constant-baseline variance.
- pathwise_hard: mean 0, variance 0.
- gumbel_softmax, straight_through: no closed form here; measured against G.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Gumbel, OneHotCategorical

from estimators.distributions import GumbelSoftmax
from estimators.gradients import (
    leave_one_out_baseline,
    pathwise_surrogate,
    score_function_surrogate,
)
from estimators.problems import GradientMoments

__all__ = ["CATEGORICAL_ESTIMATORS", "CategoricalProblem"]

# The estimators the categorical problem compares (module docstring defines each).
CATEGORICAL_ESTIMATORS = (
    "score_function",
    "score_function_baseline",
    "pathwise_hard",
    "gumbel_softmax",
    "straight_through",
)


@dataclass(frozen=True)
class CategoricalProblem:
    """E_{z ~ Categorical(softmax(logits))}[costs . z]; closed forms in the module docstring."""

    # Unnormalised log-probabilities theta, K >= 2 finite values.
    logits: tuple[float, ...]
    # Cost c_k of category k, K finite values.
    costs: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.logits) < 2:
            raise ValueError(f"logits need K >= 2 categories, got {len(self.logits)}")
        if len(self.costs) != len(self.logits):
            raise ValueError(
                f"costs must have one value per category: {len(self.costs)} costs vs "
                f"{len(self.logits)} logits"
            )
        for name, values in (("logits", self.logits), ("costs", self.costs)):
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name} must be finite, got {list(values)}")

    @property
    def probs(self) -> Tensor:
        """p = softmax(logits), float64 (K,)."""
        return torch.tensor(self.logits, dtype=torch.float64).softmax(-1)

    def expected_value(self) -> float:
        return float(self.probs @ torch.tensor(self.costs, dtype=torch.float64))  # E f = p . c

    def exact_gradient(self) -> tuple[float, ...]:
        """G_k = d/dtheta_k E f = p_k (c_k - p . c)."""
        p, c = self.probs, torch.tensor(self.costs, dtype=torch.float64)
        return tuple((p * (c - p @ c)).tolist())  # (K,)

    def moments(self, estimator: str, draws: int) -> GradientMoments | None:
        """Closed-form per-component mean and variance of an S-draw estimate; None where there
        is none (gumbel_softmax, straight_through)."""
        _check_estimator(estimator)
        _check_draws(draws)
        p, c = self.probs, torch.tensor(self.costs, dtype=torch.float64)
        grad = p * (c - p @ c)  # (K,)
        num_k = p.shape[0]
        score = torch.eye(num_k, dtype=torch.float64) - p  # row j: s(e_j) = e_j - p, (K, K)
        if estimator == "pathwise_hard":
            return GradientMoments((0.0,) * num_k, (0.0,) * num_k)
        if estimator == "score_function":
            second = p @ (c.pow(2).unsqueeze(1) * score.pow(2))  # sum_j p_j c_j^2 s_jk^2, (K,)
            var = (second - grad**2) / draws  # (K,)
            return GradientMoments(tuple(grad.tolist()), tuple(var.tolist()))
        if estimator == "score_function_baseline":
            mu = p @ c
            zeta1 = (p @ ((c - mu).pow(2).unsqueeze(1) * score.pow(2)) - grad**2) / 4.0  # (K,)
            eye = torch.eye(num_k, dtype=torch.float64)
            # h(e_j, e_l)_k = (c_j - c_l)(delta_jk - delta_lk) / 2: (K, K, K) over (j, l, k)
            cost_gap = (c.unsqueeze(1) - c.unsqueeze(0)).unsqueeze(2)  # c_j - c_l: (K, K, 1)
            kernel = cost_gap * (eye.unsqueeze(1) - eye.unsqueeze(0)) / 2.0
            zeta2 = torch.einsum("j,l,jlk->k", p, p, kernel.pow(2)) - grad**2  # (K,)
            pairs = draws * (draws - 1) / 2.0
            var = (2.0 * (draws - 2) * zeta1 + zeta2) / pairs  # Hoeffding's U-statistic variance
            return GradientMoments(tuple(grad.tolist()), tuple(var.tolist()))
        return None

    def estimates(
        self, estimator: str, temperature: float, draws: int, num_samples: int, seed: int
    ) -> Tensor:
        """N independent S-draw estimates of grad_theta E f, in float64, through the library's
        samplers and surrogates, on a private RNG stream seeded by `seed`. `temperature` is used
        by gumbel_softmax and straight_through only.

        Shapes: returns (N, K); row n is estimate n.
        """
        _check_estimator(estimator)
        _check_draws(draws)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be > 0 and finite, got {temperature}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        num_k = len(self.logits)
        # One copy of theta per estimate: the gradient of the mean surrogate over the (S, N)
        # draws w.r.t. copy n is estimate n divided by N, so one backward pass gives all N.
        theta = torch.tensor(self.logits, dtype=torch.float64).expand(num_samples, num_k).clone()
        theta.requires_grad_(True)
        costs = torch.tensor(self.costs, dtype=torch.float64)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if estimator in ("score_function", "score_function_baseline"):
                q = OneHotCategorical(logits=theta, validate_args=False)
                z = q.sample((draws,))  # (S, N, K), no gradient path
                f = z @ costs  # (S, N, K) -> (S, N)
                baseline = None
                if estimator == "score_function_baseline":
                    baseline = leave_one_out_baseline(f, dim=0)  # b_i from the other S - 1 draws
                surrogate = score_function_surrogate(f, q.log_prob(z), baseline)
            elif estimator == "pathwise_hard":
                unit = torch.ones((), dtype=torch.float64)
                gumbel = Gumbel(0.0 * unit, unit).sample((draws, num_samples, num_k))  # (S, N, K)
                index = (theta + gumbel).argmax(-1)  # Gumbel-max: (S, N, K) -> (S, N)
                z = F.one_hot(index, num_k).to(theta.dtype)  # an integer index: no derivative
                surrogate = pathwise_surrogate(z @ costs)  # (S, N) -> ()
                if not surrogate.requires_grad:  # autograd found no path from theta to z
                    return torch.zeros(num_samples, num_k, dtype=torch.float64)
            else:
                hard = estimator == "straight_through"
                q_relaxed = GumbelSoftmax(theta, temperature, hard=hard, validate_args=False)
                y = q_relaxed.rsample((draws,))  # (S, N, K)
                surrogate = pathwise_surrogate(y @ costs)  # (S, N, K) -> (S, N) -> ()
        (grad,) = torch.autograd.grad(surrogate, theta)
        return grad * num_samples  # (N, K)


def _check_estimator(estimator: str) -> None:
    if estimator not in CATEGORICAL_ESTIMATORS:
        valid = ", ".join(CATEGORICAL_ESTIMATORS)
        raise ValueError(f"unknown estimator {estimator!r}; valid: {valid}")


def _check_draws(draws: int) -> None:
    if draws < 2:
        raise ValueError(f"draws must be >= 2 (the leave-one-out baseline needs two), got {draws}")
