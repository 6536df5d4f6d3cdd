r"""Toy objectives E_{z ~ q(mu, sigma)}[f(z)] whose gradient estimators have closed forms.

Setting. z = mu + sigma * eps, where eps is standard noise of a location-scale family
(`FAMILIES`: normal N(0, 1), laplace Laplace(0, 1), logistic Logistic(0, 1), each symmetric
about 0); the parameters are theta = (mu, sigma) (location and SCALE: the standard deviation
for the normal, b for Laplace(mu, b) with std b sqrt 2, s for Logistic(mu, s) with std
s pi / sqrt 3). We estimate grad_theta E[f(z)] = (d/dmu, d/dsigma) from ONE draw of eps. With
psi = (log p_0)' the derivative of the standard log-density, the scores in units of 1/sigma are
    s_mu(eps) = sigma d/dmu log q(z) = -psi(eps),
    s_sigma(eps) = sigma d/dsigma log q(z) = -1 - eps psi(eps),
and the three one-sample estimators (`ESTIMATORS`) are:

- ``pathwise``: dz/dmu = 1 and dz/dsigma = eps, so  g = (f'(z), f'(z) * eps).
- ``score_function``:  g = f(z) * (s_mu, s_sigma) / sigma.
- ``score_function_baseline``: the same with f(z) replaced by f(z) - b, where b = E[f(z)] is
  the EXACT constant baseline, computed in closed form by `ToyProblem.expected_value`. (It is
  the usual choice, the value an EMA baseline of f tends to, but not the variance-minimising
  constant, which is E[f s^2] / E[s^2] for each score component s.) Since b is a constant,
  E[b * score] = 0 (the score has mean 0): no bias, and the variance stays a closed form.

Every estimator is unbiased, so each has mean grad_theta E[f]. Its variance is
Var g = E[g^2] - (E g)^2. For the polynomial problems it needs only these moments of the
family (`Family`), each derived below:
    m2 = E eps^2, m4 = E eps^4,
    S_mu[j] = E[eps^(2j) s_mu^2] and S_sigma[j] = E[eps^(2j) s_sigma^2],  j = 0, 1, 2.
s_mu is odd and s_sigma even (p_0 is symmetric), so every odd moment below vanishes.

- normal: psi = -eps, s_mu = eps, s_sigma = eps^2 - 1. E eps^(2n) = (2n - 1)!!: 1, 3, 15, 105,
  so m2 = 1, m4 = 3, S_mu = (1, 3, 15), S_sigma = (E(eps^2-1)^2, E eps^2 (eps^2-1)^2,
  E eps^4 (eps^2-1)^2) = (2, 15 - 6 + 1, 105 - 30 + 3) = (2, 10, 78).
- laplace: psi = -sign(eps), s_mu = sign(eps), s_sigma = |eps| - 1, and e = |eps| ~ Exp(1)
  with E e^n = n!, so m2 = 2, m4 = 24, S_mu = (1, 2, 24), S_sigma = E[e^(2j) (e - 1)^2] =
  (2 - 2 + 1, 24 - 12 + 2, 720 - 240 + 24) = (1, 14, 504).
- logistic: p_0 = sech^2(eps/2) / 4, psi = -t with t = tanh(eps/2), s_mu = t,
  s_sigma = eps t - 1. Moments E eps^(2n) = 2 (2n)! eta(2n) (eta the Dirichlet eta function):
  m2 = pi^2/3, m4 = 7 pi^4/15, m6 = 31 pi^6/21. Stein's identity E[h(eps) psi(eps)] =
  -E[h'(eps)] (integration by parts, h p_0 -> 0 in the tails) gives E[eps^(2j+1) t] =
  (2j + 1) m_(2j), and with h = eps^(2j) t, since t' = (1 - t^2)/2:
      T_j = E[eps^(2j) t^2] = (4 j (2j - 1) m_(2j-2) + m_(2j)) / 3,
  so T = (1/3, (4 + m2)/3, (24 m2 + m4)/3, (60 m4 + m6)/3) for j = 0..3, and
      S_mu[j] = T_j,
      S_sigma[j] = T_(j+1) - 2 (2j + 1) m_(2j) + m_(2j) = T_(j+1) - (4j + 1) m_(2j).
  (S_mu[0] = 1/3 and S_sigma[0] = (pi^2 + 3)/9 are the logistic's known Fisher informations.)

The normal's Gaussian facts give the one non-polynomial problem (lognormal, normal only):
shifting the Gaussian (complete the square), E[exp(t eps) h(eps)] = exp(t^2/2) E[h(eps + t)],
with  E(eps + t)^2 = 1 + t^2  and  E[((eps + t)^2 - 1)^2] = 2 + 4 t^2 + t^4.

Each problem's docstring gives its derivation; `python -m estimators.variance` compares them
with sampled estimates, and the tests check both against quadrature and Monte Carlo.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from estimators.distributions import location_scale_family
from estimators.gradients import ConstantBaseline, pathwise_surrogate, score_function_surrogate

__all__ = [
    "ESTIMATORS",
    "FAMILIES",
    "PROBLEMS",
    "Family",
    "GradientMoments",
    "Linear",
    "LogNormalMean",
    "Quadratic",
    "Residual",
    "ToyProblem",
    "one_sample_estimates",
    "one_sample_gradients",
    "toy_problem",
]

# The one-sample estimators the toy problems compare (module docstring defines each).
ESTIMATORS = ("pathwise", "score_function", "score_function_baseline")


@dataclass(frozen=True)
class Family:
    """A location-scale family z = mu + sigma * eps and the moments of its standard noise eps
    that the closed forms use (module docstring derives each)."""

    # Name used on the command line (--distribution).
    name: str
    # E eps^2.
    m2: float
    # E eps^4.
    m4: float
    # E[eps^(2j) s_mu(eps)^2] for j = 0, 1, 2 (s_mu = sigma d/dmu log q).
    s_mu: tuple[float, float, float]
    # E[eps^(2j) s_sigma(eps)^2] for j = 0, 1, 2 (s_sigma = sigma d/dsigma log q).
    s_sigma: tuple[float, float, float]
    # The library's sampler with an event dimension: (loc, scale) (N, 1) -> q over (N, 1).
    sampler: Callable[[Tensor, Tensor], Distribution]


def _sampler(name: str) -> Callable[[Tensor, Tensor], Distribution]:
    """The family `name` of estimators.LOCATION_SCALE_FAMILIES over an event dimension."""
    family = location_scale_family(name)
    return lambda loc, scale: Independent(family(loc, scale, validate_args=False), 1)


def _logistic() -> Family:
    """The logistic family; its moments from Stein's identity (module docstring)."""
    m = (1.0, math.pi**2 / 3.0, 7.0 * math.pi**4 / 15.0, 31.0 * math.pi**6 / 21.0)  # E eps^(2n)
    # T_j = E[eps^(2j) tanh^2(eps/2)] = (4 j (2j - 1) m_(2j-2) + m_(2j)) / 3
    t = [(4.0 * j * (2 * j - 1) * (m[j - 1] if j > 0 else 0.0) + m[j]) / 3.0 for j in range(4)]
    return Family(
        name="logistic",
        m2=m[1],
        m4=m[2],
        s_mu=(t[0], t[1], t[2]),
        s_sigma=(t[1] - m[0], t[2] - 5.0 * m[1], t[3] - 9.0 * m[2]),  # T_(j+1) - (4j + 1) m_(2j)
        sampler=_sampler("logistic"),
    )


# Families by command-line name (--distribution): each of estimators.LOCATION_SCALE_FAMILIES.
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("normal", 1.0, 3.0, (1.0, 3.0, 15.0), (2.0, 10.0, 78.0), _sampler("normal")),
        Family("laplace", 2.0, 24.0, (1.0, 2.0, 24.0), (1.0, 14.0, 504.0), _sampler("laplace")),
        _logistic(),
    )
}  # fmt: skip


@dataclass(frozen=True)
class GradientMoments:
    """Closed-form mean and variance of a one-sample estimator, one entry per parameter."""

    # Means: the true gradient for every unbiased estimator (all of this module's).
    mean: tuple[float, ...]
    # Variances of the one-sample estimator.
    var: tuple[float, ...]


class ToyProblem(ABC):
    """An objective f with closed forms for E[f], its gradient and each estimator's variance,
    under z = mu + sigma * eps from one location-scale family (normal by default)."""

    # Name used on the command line.
    name: ClassVar[str]
    # f written out, for tables and plot titles.
    formula: ClassVar[str]
    # The families whose closed forms this problem has.
    families: ClassVar[tuple[str, ...]] = tuple(FAMILIES)

    def __init__(self, family: str = "normal") -> None:
        if family not in self.families:
            raise ValueError(
                f"problem {self.name} has closed forms for --distribution "
                f"{', '.join(self.families)} only, got {family!r}"
            )
        self.family = FAMILIES[family]

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
    """f(z) = z = mu + sigma eps.  E f = mu;  gradient (1, 0);  b = mu.  With r = mu / sigma:

    pathwise: f' = 1, g = (1, eps)                          -> Var = (0, m2).
    score_function: f / sigma = r + eps, g = (r + eps)(s_mu, s_sigma); E[eps s_mu] = 1 is the
        mean of g_mu (Stein), the mean of g_sigma is 0, and the cross terms r eps s^2 are odd:
        Var_mu    = r^2 S_mu[0] + S_mu[1] - 1,  Var_sigma = r^2 S_sigma[0] + S_sigma[1].
    score_function_baseline: (f - b) / sigma = eps, g = eps (s_mu, s_sigma)
        -> Var = (S_mu[1] - 1, S_sigma[1]).
    Normal: (0, 1); (r^2 + 2, 2 r^2 + 10); (2, 10). Laplace: (0, 2); (r^2 + 1, r^2 + 14);
    (1, 14). The pathwise d/dmu estimate is exactly 1 for every draw: zero variance.
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
        fam, r2 = self.family, (mu / sigma) ** 2
        return {
            "pathwise": (0.0, fam.m2),
            "score_function": (
                r2 * fam.s_mu[0] + fam.s_mu[1] - 1.0,
                r2 * fam.s_sigma[0] + fam.s_sigma[1],
            ),
            "score_function_baseline": (fam.s_mu[1] - 1.0, fam.s_sigma[1]),
        }


class Quadratic(ToyProblem):
    """f(z) = z^2.  E f = mu^2 + m2 sigma^2;  gradient (2 mu, 2 m2 sigma);  b = E f.

    pathwise: f' = 2z = 2 mu + 2 sigma eps,
        g_mu    = 2 mu + 2 sigma eps                  -> Var = 4 m2 sigma^2
        g_sigma = 2 mu eps + 2 sigma eps^2            -> Var = 4 m2 mu^2 + 4 (m4 - m2^2) sigma^2.
    score_function: write f / sigma = A + B eps + C eps^2 with A = mu^2/sigma, B = 2 mu,
    C = sigma; g = (A + B eps + C eps^2)(s_mu, s_sigma). Squaring, the AB and BC cross terms
    are odd and vanish:
        Var_mu    = A^2 S_mu[0] + (B^2 + 2AC) S_mu[1] + C^2 S_mu[2] - B^2
        Var_sigma = A^2 S_sigma[0] + (B^2 + 2AC) S_sigma[1] + C^2 S_sigma[2] - 4 m2^2 C^2.
    score_function_baseline: (f - b) / sigma = B eps + C (eps^2 - m2), and
    E[(eps^2 - m2)^2 s^2] = S[2] - 2 m2 S[1] + m2^2 S[0]:
        Var_mu    = B^2 S_mu[1] + C^2 (S_mu[2] - 2 m2 S_mu[1] + m2^2 S_mu[0]) - B^2
        Var_sigma = B^2 S_sigma[1] + C^2 (S_sigma[2] - 2 m2 S_sigma[1] + m2^2 S_sigma[0])
                    - 4 m2^2 C^2.
    Normal (m2 = 1, m4 = 3): pathwise (4 sigma^2, 4 mu^2 + 8 sigma^2); score_function
    (mu^4/sigma^2 + 14 mu^2 + 15 sigma^2, 2 mu^4/sigma^2 + 60 mu^2 + 74 sigma^2); baseline
    (8 mu^2 + 10 sigma^2, 40 mu^2 + 56 sigma^2). As sigma -> 0 (mu != 0) the score-function
    d/dmu variance grows like S_mu[0] mu^4/sigma^2 without bound while the pathwise one,
    4 m2 sigma^2, shrinks to 0; the exact baseline removes the 1/sigma^2 term but leaves
    4 (S_mu[1] - 1) mu^2 (8 mu^2 for the normal).
    """

    name = "quadratic"
    formula = "f(z) = z^2"

    def f(self, z: Tensor) -> Tensor:
        return z.pow(2)

    def expected_value(self, mu: float, sigma: float) -> float:
        return mu**2 + self.family.m2 * sigma**2

    def gradient(self, mu: float, sigma: float) -> tuple[float, float]:
        return (2.0 * mu, 2.0 * self.family.m2 * sigma)

    def variances(self, mu: float, sigma: float) -> dict[str, tuple[float, float]]:
        fam = self.family
        a, b, c = mu**2 / sigma, 2.0 * mu, sigma
        mean2 = (b**2, 4.0 * fam.m2**2 * c**2)  # squared means of (g_mu, g_sigma)

        def score(s: tuple[float, float, float]) -> float:  # E[(A + B eps + C eps^2)^2 s^2]
            return a**2 * s[0] + (b**2 + 2.0 * a * c) * s[1] + c**2 * s[2]

        def centred(s: tuple[float, float, float]) -> float:  # E[(B eps + C (eps^2 - m2))^2 s^2]
            return b**2 * s[1] + c**2 * (s[2] - 2.0 * fam.m2 * s[1] + fam.m2**2 * s[0])

        return {
            "pathwise": (
                4.0 * fam.m2 * c**2,
                4.0 * fam.m2 * mu**2 + 4.0 * (fam.m4 - fam.m2**2) * c**2,
            ),
            "score_function": (score(fam.s_mu) - mean2[0], score(fam.s_sigma) - mean2[1]),
            "score_function_baseline": (
                centred(fam.s_mu) - mean2[0],
                centred(fam.s_sigma) - mean2[1],
            ),
        }


class Residual(Quadratic):
    """Learning the scale of noise that corrupts an input: f = (x + z - x)^2, mu fixed at 0.

    The corrupted input is x + z with z = sigma eps and the loss is the squared residual to
    the clean x. x cancels, so every closed form is the quadratic's at mu = 0: for the normal,
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
    """f(z) = exp(z), z ~ N(mu, sigma^2): the mean of a log-normal; gradients grow like exp(mu).

    Normal only: E exp(sigma eps) is infinite for a Laplace or logistic eps once sigma >= 1.
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
    and E g_sigma^2 = [M2 (2 + 16 sigma^2 + 16 sigma^4) - 2 m^2 (2 + 4 sigma^2 + sigma^4)
                       + 2 m^2]/sigma^2,
        Var_sigma = m^2 [q (2 + 16 sigma^2 + 16 sigma^4)/sigma^2 + 8 + 13 sigma^2].
    """

    name = "lognormal"
    formula = "f(z) = exp(z)"
    families = ("normal",)

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
            "score_function": (second * (1.0 + 4.0 * s2) / s2 - m2,
                               second * quartic / s2 - s2 * m2),
            "score_function_baseline": (
                m2 * (q * (1.0 + 4.0 * s2) / s2 + 1.0),
                m2 * (q * quartic / s2 + 8.0 + 13.0 * s2),
            ),
        }


# Problem classes by command-line name.
PROBLEM_TYPES: dict[str, type[ToyProblem]] = {
    cls.name: cls for cls in (Linear, Quadratic, Residual, LogNormalMean)
}
# The problems under the normal family, by command-line name.
PROBLEMS: dict[str, ToyProblem] = {name: cls() for name, cls in PROBLEM_TYPES.items()}


def toy_problem(name: str, family: str = "normal") -> ToyProblem:
    """The problem `name` under the location-scale family `family`; one-line ValueError if
    either is unknown or the pair has no closed forms."""
    if name not in PROBLEM_TYPES:
        raise ValueError(f"unknown problem {name!r}; valid: {', '.join(PROBLEM_TYPES)}")
    if family not in FAMILIES:
        raise ValueError(f"unknown distribution {family!r}; valid: {', '.join(FAMILIES)}")
    return PROBLEM_TYPES[name](family)


def one_sample_estimates(
    estimator: str,
    sampler: Callable[..., Distribution],
    params: Sequence[float],
    f: Callable[[Tensor], Tensor],
    expected_f: float,
    num_samples: int,
    seed: int,
) -> Tensor:
    """N independent one-sample estimates of grad_theta E_{z ~ q_theta}[f(z)], in float64.

    `sampler(*theta)` builds q from one (N, 1) copy per parameter and must score a sample with
    log_prob of shape (N,). Runs the library's own surrogates (`rsample` + `pathwise_surrogate`;
    `sample` + `score_function_surrogate`, with b = `expected_f` for the baseline estimator)
    on a private RNG stream seeded by `seed` (the global torch RNG is left as it was).

    Shapes: returns (N, P) for P = len(params); row k is sample k's estimate.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    # One copy of theta per sample: the gradient of the batch-mean surrogate w.r.t. copy k is
    # sample k's one-sample estimate divided by N, so one backward pass gives all N.
    copies = [
        torch.full((num_samples, 1), value, dtype=torch.float64, requires_grad=True)
        for value in params
    ]
    q = sampler(*copies)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if estimator == "pathwise":
            surrogate = pathwise_surrogate(f(q.rsample()).squeeze(-1))  # (N, 1) -> (N,)
        else:
            z = q.sample()  # (N, 1), detached: no gradient path through the sample
            f_z = f(z).squeeze(-1)  # (N, 1) -> (N,)
            baseline = None
            if estimator == "score_function_baseline":
                baseline = ConstantBaseline(expected_f).value
            surrogate = score_function_surrogate(f_z, q.log_prob(z), baseline)
    grads = torch.autograd.grad(surrogate, copies)
    return torch.cat(grads, dim=-1) * num_samples  # P x (N, 1) -> (N, P)


def one_sample_gradients(
    problem: ToyProblem, estimator: str, mu: float, sigma: float, num_samples: int, seed: int
) -> Tensor:
    """N independent one-sample estimates of (d/dmu, d/dsigma) E[f(z)], in float64, from the
    problem's family sampler (`DiagNormal`, `Laplace` or `Logistic`).

    Shapes: returns (N, 2); row k is sample k's estimate, columns (d/dmu, d/dsigma).
    """
    problem.check(mu, sigma)
    return one_sample_estimates(
        estimator, problem.family.sampler, (mu, sigma), problem.f,
        problem.expected_value(mu, sigma), num_samples, seed,
    )  # fmt: skip
