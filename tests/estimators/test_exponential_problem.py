"""The inverse-CDF toy problem E_{x ~ Exp(rate)}[x^2]: closed forms against Gauss-Laguerre
quadrature (exact: every estimator is a polynomial in eps ~ Exp(1)), with the score from
autograd of torch.distributions.Exponential's log-density; then Monte Carlo through the
library's inverse-CDF sampler within 4 standard errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from estimators.distributions import Exponential
from estimators.exponential_problem import ExponentialSecondMoment
from estimators.problems import ESTIMATORS

PROBLEM = ExponentialSecondMoment()
K_SE = 4.0


def quadrature_moments(estimator: str, rate: float) -> tuple[float, float]:
    """Mean and variance of the one-sample d/drate estimate by 40-node Gauss-Laguerre."""
    nodes, weights = np.polynomial.laguerre.laggauss(40)  # weight e^{-eps} on [0, inf)
    eps = torch.tensor(nodes, dtype=torch.float64)
    w = torch.tensor(weights, dtype=torch.float64)
    rate_j = torch.full_like(eps, rate, requires_grad=True)  # one copy of the rate per node
    if estimator == "pathwise":
        x = eps / rate_j  # x = F^{-1}(u) with eps = -log(1 - u)
        (g,) = torch.autograd.grad(PROBLEM.f(x).sum(), rate_j)
    else:
        x = eps / rate
        log_p = torch.distributions.Exponential(rate_j).log_prob(x)
        (score,) = torch.autograd.grad(log_p.sum(), rate_j)
        b = PROBLEM.expected_value(rate) if estimator == "score_function_baseline" else 0.0
        g = (PROBLEM.f(x) - b) * score
    mean = float((w * g).sum())
    return mean, float((w * (g - mean) ** 2).sum())


@pytest.mark.parametrize("rate", [0.5, 1.0, 2.5])
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_closed_forms_equal_quadrature(estimator, rate):
    moments = PROBLEM.moments(estimator, rate)
    mean, var = quadrature_moments(estimator, rate)
    assert moments.mean[0] == pytest.approx(mean, rel=1e-10)
    assert moments.var[0] == pytest.approx(var, rel=1e-10)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimates_are_unbiased_with_the_closed_form_variance(estimator):
    """SE of the sample variance from the sample 4th central moment; the score-function
    estimates are heavy-tailed (E g^4 involves E eps^12 = 12!), so that SE is wide for them,
    and the quadrature test above carries the exact check."""
    rate, n = 1.5, 200_000
    g = PROBLEM.one_sample_gradients(estimator, rate, n, seed=5)[:, 0]
    moments = PROBLEM.moments(estimator, rate)
    mean, s2 = g.mean(), g.var()
    m4 = ((g - mean) ** 4).mean()
    assert abs(mean - moments.mean[0]) <= K_SE * (s2 / n).sqrt()
    assert abs(s2 - moments.var[0]) <= K_SE * ((m4 - s2**2) / n).sqrt()


def test_pathwise_gradient_is_minus_two_x_squared_over_rate_on_every_draw():
    """x = eps / rate, so d(x^2)/drate = -2 x^2 / rate exactly; check against the samples the
    same seed draws from the library's sampler."""
    rate = 1.5
    g = PROBLEM.one_sample_gradients("pathwise", rate, 1000, seed=0)[:, 0]
    torch.manual_seed(0)
    x = Exponential(torch.full((1000, 1), rate, dtype=torch.float64)).rsample()[:, 0]
    torch.testing.assert_close(g, -2.0 * x**2 / rate)


def test_pathwise_beats_the_score_function():
    variances = {e: PROBLEM.moments(e, 1.0).var[0] for e in ESTIMATORS}
    assert variances == {
        "pathwise": 80.0,
        "score_function": 488.0,
        "score_function_baseline": 436.0,
    }


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_rate_is_a_one_line_error(rate):
    with pytest.raises(ValueError, match="rate must be > 0 and finite") as err:
        PROBLEM.moments("pathwise", rate)
    assert "\n" not in str(err.value)
