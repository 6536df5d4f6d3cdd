r"""The inverse-CDF toy problem: E_{x ~ Exp(rate)}[x^2], differentiated in the rate.

The exponential is not a location-scale family of a fixed noise in the usual sense, but it is
reparameterized by its inverse CDF (`estimators.distributions.Exponential`):
    x = F^{-1}(u; lambda) = -log(1 - u) / lambda = eps / lambda,   eps = -log(1 - u) ~ Exp(1),
so dx/dlambda = -x / lambda, the implicit derivative -(dF/dlambda) / p = -(x e^{-lambda x}) /
(lambda e^{-lambda x}). With f(x) = x^2 and lambda = rate:
    E f = 2 / lambda^2,   d/dlambda E f = -4 / lambda^3,   b = E f for the baseline.
Moments of eps ~ Exp(1): E eps^n = n!  (1, 1, 2, 6, 24, 120, 720 for n = 0..6).

- pathwise: g = f'(x) dx/dlambda = 2x (-x/lambda) = -2 eps^2 / lambda^3, so
      Var = 4 (E eps^4 - (E eps^2)^2) / lambda^6 = 4 (24 - 4) / lambda^6 = 80 / lambda^6.
- score_function: d/dlambda log p(x) = 1/lambda - x = (1 - eps)/lambda, so
  g = eps^2 (1 - eps) / lambda^3:
      E g^2 lambda^6 = E[eps^4 - 2 eps^5 + eps^6] = 24 - 240 + 720 = 504,
      Var = (504 - 16) / lambda^6 = 488 / lambda^6.
- score_function_baseline: g = (eps^2 - 2)(1 - eps)/lambda^3, and
      (eps^2 - 2)^2 (1 - eps)^2 = eps^6 - 2 eps^5 - 3 eps^4 + 8 eps^3 - 8 eps + 4
      -> E g^2 lambda^6 = 720 - 240 - 72 + 48 - 8 + 4 = 452,   Var = 436 / lambda^6.
Every estimator has mean -4 / lambda^3. The pathwise estimator is 6.1x less variable than the
score function (488 / 80); the exact baseline helps the score function only a little (436).
"""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor
from torch.distributions import Independent

from estimators.distributions import Exponential
from estimators.problems import ESTIMATORS, GradientMoments, one_sample_estimates

__all__ = ["ExponentialSecondMoment"]


class ExponentialSecondMoment:
    """f(x) = x^2 under x ~ Exp(rate); one parameter, the rate (module docstring derives all)."""

    # Name used on the command line.
    name: ClassVar[str] = "exponential"
    # f written out, for tables.
    formula: ClassVar[str] = "f(x) = x^2, x ~ Exp(rate)"
    # The parameter the gradient is taken with respect to.
    param_names: ClassVar[tuple[str, ...]] = ("rate",)

    def check(self, rate: float) -> None:
        """One-line ValueError unless rate is a valid point."""
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be > 0 and finite, got {rate}")

    def f(self, x: Tensor) -> Tensor:
        """The objective, element-wise: x (*) -> x^2 (*)."""
        return x.pow(2)

    def expected_value(self, rate: float) -> float:
        return 2.0 / rate**2  # E x^2 = 2 / lambda^2

    def moments(self, estimator: str, rate: float) -> GradientMoments:
        """Closed-form mean and variance of one estimator's one-sample d/drate estimate."""
        self.check(rate)
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
        # Var * lambda^6 per estimator: 4 (4! - 2!^2); 504 - 16; 452 - 16 (module docstring)
        var_times_rate6 = {
            "pathwise": 80.0, "score_function": 488.0, "score_function_baseline": 436.0
        }  # fmt: skip
        return GradientMoments((-4.0 / rate**3,), (var_times_rate6[estimator] / rate**6,))

    def one_sample_gradients(
        self, estimator: str, rate: float, num_samples: int, seed: int
    ) -> Tensor:
        """N one-sample estimates of d/drate E[x^2] through the library's inverse-CDF sampler.

        Shapes: returns (N, 1).
        """
        self.check(rate)
        return one_sample_estimates(
            estimator,
            lambda rate_k: Independent(Exponential(rate_k, validate_args=False), 1),
            (rate,),
            self.f,
            self.expected_value(rate),
            num_samples,
            seed,
        )
