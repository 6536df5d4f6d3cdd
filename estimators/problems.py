r"""Toy objectives E_{z ~ N(mu, sigma^2)}[f(z)] whose gradient estimators have closed forms.

Setting. z = mu + sigma * eps with eps ~ N(0, 1); the parameters are theta = (mu, sigma) and
we estimate grad_theta E[f(z)] = (d/dmu, d/dsigma) from ONE draw of eps. The three
one-sample estimators (`ESTIMATORS`):

- ``pathwise``: dz/dmu = 1 and dz/dsigma = eps, so
      g = (f'(z), f'(z) * eps).
- ``score_function``: the score of N(z; mu, sigma^2) is
      d/dmu log q = (z - mu) / sigma^2 = eps / sigma,
      d/dsigma log q = -1/sigma + (z - mu)^2 / sigma^3 = (eps^2 - 1) / sigma,
  so  g = f(z) * (eps / sigma, (eps^2 - 1) / sigma).
- ``score_function_baseline``: the same with f(z) replaced by f(z) - b, where b = E[f(z)] is
  the EXACT constant baseline, computed in closed form by `ToyProblem.expected_value`. (It is
  the usual choice, the value an EMA baseline of f tends to, but not the variance-minimising
  constant, which is E[f s^2] / E[s^2] for each score component s.) Since b is a constant, E[b * score] = 0 (the score has mean 0): no bias, and the variance
  stays a closed form:  g = (f(z) - b) * (eps / sigma, (eps^2 - 1) / sigma).

Every estimator is unbiased, so each has mean grad_theta E[f]. Its variance is
Var g = E[g^2] - (E g)^2, computed per problem below with these facts:

- Gaussian moments: E eps^(2n+1) = 0; E eps^2 = 1, E eps^4 = 3, E eps^6 = 15, E eps^8 = 105.
  Hence  E(eps^2 - 1)^2 = 2,  E(eps^3 - eps)^2 = 10,  E(eps^4 - eps^2)^2 = 78,
         E[(eps^2 - 1)(eps^4 - eps^2)] = 10,  E(eps^2 - 1)^4 = 60.
- Shifting the Gaussian (complete the square): E[exp(t eps) h(eps)] = exp(t^2/2) E[h(eps + t)],
  with  E(eps + t)^2 = 1 + t^2  and  E[((eps + t)^2 - 1)^2] = 2 + 4 t^2 + t^4.

Each problem's docstring gives its derivation; `python -m estimators.variance` compares them
with sampled estimates, and the tests check both against quadrature and Monte Carlo.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from estimators.distributions import DiagNormal
from estimators.gradients import ConstantBaseline, pathwise_surrogate, score_function_surrogate

__all__ = [
    "ESTIMATORS",
    "PROBLEMS",
    "GradientMoments",
    "Linear",
    "LogNormalMean",
    "Quadratic",
    "Residual",
    "ToyProblem",
    "one_sample_gradients",
]

# The one-sample estimators the toy problems compare (module docstring defines each).
ESTIMATORS = ("pathwise", "score_function", "score_function_baseline")


@dataclass(frozen=True)
class GradientMoments:
    """Closed-form mean and variance of a one-sample estimator of (d/dmu, d/dsigma) E[f]."""

    # (d/dmu, d/dsigma) means: the true gradient, since every estimator here is unbiased.
    mean: tuple[float, float]
    # (d/dmu, d/dsigma) variances of the one-sample estimator.
    var: tuple[float, float]


class ToyProblem(ABC):
    """An objective f with closed forms for E[f], its gradient and each estimator's variance."""

    # Name used on the command line.
    name: ClassVar[str]
    # f written out, for tables and plot titles.
    formula: ClassVar[str]

    def check(self, mu: float, sigma: float) -> None:
        """One-line ValueError unless (mu, sigma) is a valid point for this problem."""
        if not math.isfinite(mu):
            raise ValueError(f"mu must be finite, got {mu}")
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be > 0 and finite, got {sigma}")

    @abstractmethod
    def f(self, z: Tensor) -> Tensor:
        """The objective, element-wise: z (*) -> f(z) (*)."""

    @abstractmethod
    def expected_value(self, mu: float, sigma: float) -> float:
        """E[f(z)], also the exact baseline b of ``score_function_baseline``."""

    @abstractmethod
    def gradient(self, mu: float, sigma: float) -> tuple[float, float]:
        """(d/dmu, d/dsigma) E[f(z)]."""

    @abstractmethod
    def variances(self, mu: float, sigma: float) -> dict[str, tuple[float, float]]:
        """Per estimator name, the (d/dmu, d/dsigma) variance of its one-sample estimate."""

    def moments(self, estimator: str, mu: float, sigma: float) -> GradientMoments:
        """Closed-form mean and variance of one estimator at (mu, sigma)."""
        self.check(mu, sigma)
        return GradientMoments(self.gradient(mu, sigma), self.variances(mu, sigma)[estimator])


class Linear(ToyProblem):
    """f(z) = z.  E f = mu;  gradient (1, 0);  b = mu.

    pathwise: f' = 1, g = (1, eps)                         -> Var = (0, 1).
    score_function: with f/sigma = mu/sigma + eps,
        g_mu    = (mu/sigma) eps + eps^2                   -> Var = mu^2/sigma^2 + 2
        g_sigma = (mu/sigma)(eps^2 - 1) + (eps^3 - eps)    -> Var = 2 mu^2/sigma^2 + 10
        (the cross terms are odd moments, 0).
    score_function_baseline: (f - b)/sigma = eps,
        g = (eps^2, eps^3 - eps)                           -> Var = (2, 10).
    The pathwise d/dmu estimate is exactly 1 for every draw: zero variance.
    """

    name = "linear"
    formula = "f(z) = z"

    def f(self, z: Tensor) -> Tensor:
        return z

    def expected_value(self, mu: float, sigma: float) -> float:
        return mu

    def gradient(self, mu: float, sigma: float) -> tuple[float, float]:
        return (1.0, 0.0)

    def variances(self, mu: float, sigma: float) -> dict[str, tuple[float, float]]:
        r2 = (mu / sigma) ** 2
        return {
            "pathwise": (0.0, 1.0),
            "score_function": (r2 + 2.0, 2.0 * r2 + 10.0),
            "score_function_baseline": (2.0, 10.0),
        }


class Quadratic(ToyProblem):
    """f(z) = z^2.  E f = mu^2 + sigma^2;  gradient (2 mu, 2 sigma);  b = mu^2 + sigma^2.

    pathwise: f' = 2z = 2 mu + 2 sigma eps,
        g_mu    = 2 mu + 2 sigma eps                       -> Var = 4 sigma^2
        g_sigma = 2 mu eps + 2 sigma eps^2                 -> Var = 4 mu^2 + 8 sigma^2.
    score_function: write f/sigma = A + B eps + C eps^2 with A = mu^2/sigma, B = 2 mu, C = sigma.
        g_mu    = A eps + B eps^2 + C eps^3:
                  E g^2 = A^2 + 3 B^2 + 15 C^2 + 6 A C, minus (E g)^2 = B^2
                  -> Var = mu^4/sigma^2 + 14 mu^2 + 15 sigma^2
        g_sigma = A (eps^2 - 1) + B (eps^3 - eps) + C (eps^4 - eps^2):
                  E g^2 = 2 A^2 + 10 B^2 + 78 C^2 + 20 A C, minus (E g)^2 = 4 C^2
                  -> Var = 2 mu^4/sigma^2 + 60 mu^2 + 74 sigma^2.
    score_function_baseline: (f - b)/sigma = 2 mu eps + sigma (eps^2 - 1),
        g_mu    = 2 mu eps^2 + sigma (eps^3 - eps):  E g^2 = 12 mu^2 + 10 sigma^2
                  -> Var = 8 mu^2 + 10 sigma^2
        g_sigma = 2 mu (eps^3 - eps) + sigma (eps^2 - 1)^2:  E g^2 = 40 mu^2 + 60 sigma^2
                  -> Var = 40 mu^2 + 56 sigma^2.
    As sigma -> 0 (mu != 0) the score-function d/dmu variance grows like mu^4/sigma^2 without
    bound while the pathwise one, 4 sigma^2, shrinks to 0; the exact baseline removes the
    1/sigma^2 term but leaves 8 mu^2.
    """

    name = "quadratic"
    formula = "f(z) = z^2"

    def f(self, z: Tensor) -> Tensor:
        return z.pow(2)

    def expected_value(self, mu: float, sigma: float) -> float:
        return mu**2 + sigma**2

    def gradient(self, mu: float, sigma: float) -> tuple[float, float]:
        return (2.0 * mu, 2.0 * sigma)

    def variances(self, mu: float, sigma: float) -> dict[str, tuple[float, float]]:
        m2, s2 = mu**2, sigma**2
        return {
            "pathwise": (4.0 * s2, 4.0 * m2 + 8.0 * s2),
            "score_function": (m2**2 / s2 + 14.0 * m2 + 15.0 * s2, 2.0 * m2**2 / s2 + 60.0 * m2 + 74.0 * s2),
            "score_function_baseline": (8.0 * m2 + 10.0 * s2, 40.0 * m2 + 56.0 * s2),
        }


class Residual(Quadratic):
    """Learning the scale of noise that corrupts an input: f = (x + z - x)^2, mu fixed at 0.

    The corrupted input is x + z with z ~ N(0, sigma^2) and the loss is the squared residual
    to the clean x. x cancels, so every closed form is the quadratic's at mu = 0:
    E f = sigma^2, gradient (0, 2 sigma), and variances
        pathwise (4 sigma^2, 8 sigma^2); score_function (15 sigma^2, 74 sigma^2);
        score_function_baseline (10 sigma^2, 56 sigma^2).
    Every variance scales like sigma^2; the score function pays about 9x (74/8) on d/dsigma.
    f is computed literally as (x + z) - x, the way a denoising model would compute it.
    """

    name = "residual"
    formula = "f(z) = (x + z - x)^2, x = 3"
    # The clean input; any value gives the same closed forms.
    x: ClassVar[float] = 3.0

    def check(self, mu: float, sigma: float) -> None:
        super().check(mu, sigma)
        if mu != 0.0:
            raise ValueError(f"residual fixes mu at 0 (zero-mean corruption noise), got mu {mu}")

    def f(self, z: Tensor) -> Tensor:
        corrupted = self.x + z
        return (corrupted - self.x).pow(2)


class LogNormalMean(ToyProblem):
    """f(z) = exp(z): the mean of a log-normal; gradients grow like exp(mu).

    Let m = E f = exp(mu + sigma^2/2), M2 = E f^2 = exp(2 mu + 2 sigma^2) = m^2 e^{sigma^2}, and
    q = expm1(sigma^2) = e^{sigma^2} - 1 (used in code to avoid cancellation at small sigma).
    Gradient (m, sigma m); b = m. Shifting the Gaussian (module docstring) with t = sigma for
    exp(z) and t = 2 sigma for exp(2z):
        E[exp(z) eps^2] = m (1 + sigma^2),  E[exp(2z) eps^2] = M2 (1 + 4 sigma^2),
        E[exp(z)(eps^2-1)^2] = m (2 + 4 sigma^2 + sigma^4),
        E[exp(2z)(eps^2-1)^2] = M2 (2 + 16 sigma^2 + 16 sigma^4).
    pathwise: g = (exp z, exp z * eps)
        Var_mu = M2 - m^2 = m^2 q;   Var_sigma = M2 (1 + 4 sigma^2) - sigma^2 m^2.
    score_function: g = exp z * (eps/sigma, (eps^2 - 1)/sigma)
        Var_mu = M2 (1 + 4 sigma^2)/sigma^2 - m^2
        Var_sigma = M2 (2 + 16 sigma^2 + 16 sigma^4)/sigma^2 - sigma^2 m^2.
    score_function_baseline: g = (exp z - m) * (eps/sigma, (eps^2 - 1)/sigma); expanding the
    square, E g_mu^2 = [M2 (1 + 4 sigma^2) - 2 m^2 (1 + sigma^2) + m^2]/sigma^2, so
        Var_mu = m^2 [q (1 + 4 sigma^2)/sigma^2 + 1],
    and E g_sigma^2 = [M2 (2 + 16 sigma^2 + 16 sigma^4) - 2 m^2 (2 + 4 sigma^2 + sigma^4) + 2 m^2]/sigma^2,
        Var_sigma = m^2 [q (2 + 16 sigma^2 + 16 sigma^4)/sigma^2 + 8 + 13 sigma^2].
    """

    name = "lognormal"
    formula = "f(z) = exp(z)"

    def f(self, z: Tensor) -> Tensor:
        return z.exp()

    def expected_value(self, mu: float, sigma: float) -> float:
        return math.exp(mu + sigma**2 / 2.0)  # E e^z = e^{mu + sigma^2/2}

    def gradient(self, mu: float, sigma: float) -> tuple[float, float]:
        m = self.expected_value(mu, sigma)
        return (m, sigma * m)

    def variances(self, mu: float, sigma: float) -> dict[str, tuple[float, float]]:
        m2, s2 = self.expected_value(mu, sigma) ** 2, sigma**2
        q = math.expm1(s2)
        second = (1.0 + q) * m2  # M2 = E f^2
        quartic = 2.0 + 16.0 * s2 + 16.0 * s2**2  # E[exp(2z)(eps^2-1)^2] / M2
        return {
            "pathwise": (m2 * q, second * (1.0 + 4.0 * s2) - s2 * m2),
            "score_function": (second * (1.0 + 4.0 * s2) / s2 - m2, second * quartic / s2 - s2 * m2),
            "score_function_baseline": (
                m2 * (q * (1.0 + 4.0 * s2) / s2 + 1.0),
                m2 * (q * quartic / s2 + 8.0 + 13.0 * s2),
            ),
        }


# Problems by command-line name.
PROBLEMS: dict[str, ToyProblem] = {p.name: p for p in (Linear(), Quadratic(), Residual(), LogNormalMean())}


def one_sample_gradients(
    problem: ToyProblem, estimator: str, mu: float, sigma: float, num_samples: int, seed: int
) -> Tensor:
    """N independent one-sample estimates of (d/dmu, d/dsigma) E[f(z)], in float64.

    Runs the library's own samplers and surrogates (`DiagNormal.rsample` +
    `pathwise_surrogate`; `DiagNormal.sample` + `score_function_surrogate`), with a private
    RNG stream seeded by `seed` (the global torch RNG is left as it was).

    Shapes: returns (N, 2); row k is sample k's estimate, columns (d/dmu, d/dsigma).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    problem.check(mu, sigma)
    # One copy of (mu, sigma) per sample: the gradient of the batch-mean surrogate w.r.t.
    # copy k is sample k's one-sample estimate divided by N, so one backward pass gives all N.
    mu_k = torch.full((num_samples, 1), mu, dtype=torch.float64, requires_grad=True)
    sigma_k = torch.full((num_samples, 1), sigma, dtype=torch.float64, requires_grad=True)
    q = DiagNormal(mu_k, sigma_k, validate_args=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if estimator == "pathwise":
            surrogate = pathwise_surrogate(problem.f(q.rsample()).squeeze(-1))  # (N, 1) -> (N,)
        else:
            z = q.sample()  # (N, 1), detached: no gradient path through the sample
            f = problem.f(z).squeeze(-1)  # (N, 1) -> (N,)
            baseline = None
            if estimator == "score_function_baseline":
                baseline = ConstantBaseline(problem.expected_value(mu, sigma)).value
            surrogate = score_function_surrogate(f, q.log_prob(z), baseline)
    grad_mu, grad_sigma = torch.autograd.grad(surrogate, [mu_k, sigma_k])
    return torch.cat([grad_mu, grad_sigma], dim=-1) * num_samples  # 2 x (N, 1) -> (N, 2)
