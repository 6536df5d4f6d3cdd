"""Toy problems: closed forms are right, and every estimator is unbiased with that variance.

Two independent checks of each closed form:
1. Gauss-Hermite quadrature of the one-sample estimator written out in eps (deterministic;
   exact for the polynomial problems, accurate to ~1e-12 for exp(z));
2. Monte Carlo through the library's own samplers and surrogates (`one_sample_gradients`),
   with tolerances from the standard errors of the sample mean and sample variance.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from estimators.problems import ESTIMATORS, PROBLEMS, one_sample_gradients

# (problem, mu, sigma) points; residual fixes mu = 0. Moderate sigma keeps the 4th moments of
# the score-function estimators (and so the standard error of their variance) finite and usable.
POINTS = [
    ("linear", 0.7, 0.6),
    ("quadratic", 0.7, 0.6),
    ("quadratic", 1.0, 0.1),
    ("residual", 0.0, 0.6),
    ("lognormal", 0.3, 0.5),
]
NUM_SAMPLES = 40_000
# Number of standard errors allowed: P(|N(0,1)| > 4) = 6e-5 per comparison.
K_SE = 4.0


def quadrature_estimates(problem_name: str, estimator: str, mu: float, sigma: float):
    """The one-sample estimator at the Gauss-Hermite nodes eps_j, and the weights (sum 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(100)  # weight exp(-eps^2/2)
    eps = torch.tensor(nodes, dtype=torch.float64)
    problem = PROBLEMS[problem_name]
    z = (mu + sigma * eps).requires_grad_()
    f = problem.f(z)
    (f_prime,) = torch.autograd.grad(f.sum(), z)  # f'(z) by autograd, not from the closed forms
    f = f.detach()
    if estimator == "pathwise":
        g = torch.stack([f_prime, f_prime * eps], dim=1)
    else:
        b = problem.expected_value(mu, sigma) if estimator == "score_function_baseline" else 0.0
        score = torch.stack([eps / sigma, (eps**2 - 1) / sigma], dim=1)  # d log N / d(mu, sigma)
        g = (f - b).unsqueeze(1) * score
    return g, torch.tensor(weights / weights.sum(), dtype=torch.float64)


@pytest.mark.parametrize(("problem_name", "mu", "sigma"), POINTS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_closed_forms_equal_quadrature(problem_name, mu, sigma, estimator):
    g, w = quadrature_estimates(problem_name, estimator, mu, sigma)
    mean = (w.unsqueeze(1) * g).sum(0)  # (J, 2) -> (2,)
    var = (w.unsqueeze(1) * (g - mean) ** 2).sum(0)  # (J, 2) -> (2,)
    moments = PROBLEMS[problem_name].moments(estimator, mu, sigma)
    scale = 1.0 + max(abs(v) for v in moments.var)
    np.testing.assert_allclose(mean.numpy(), moments.mean, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(var.numpy(), moments.var, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize(("problem_name", "mu", "sigma"), POINTS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimator_is_unbiased_with_closed_form_variance(problem_name, mu, sigma, estimator):
    """Sample mean within 4 SE of the true gradient; sample variance within 4 SE of Var.

    SE(mean) = sqrt(s^2 / N). SE(s^2) = sqrt((m4 - s^4 (N - 3)/(N - 1)) / N), the standard
    error of a sample variance, with m4 the sample 4th central moment. Zero-variance estimators
    (pathwise d/dmu of the linear f) have SE 0: they may differ from the truth only by float64
    rounding of the per-sample gradient, bounded by 1e-12.
    """
    moments = PROBLEMS[problem_name].moments(estimator, mu, sigma)
    g = one_sample_gradients(PROBLEMS[problem_name], estimator, mu, sigma, NUM_SAMPLES, seed=1)
    n = g.shape[0]
    mean = g.mean(0)  # (N, 2) -> (2,)
    s2 = g.var(0)  # (N, 2) -> (2,)
    m4 = ((g - mean) ** 4).mean(0)  # (N, 2) -> (2,)
    se_mean = (s2 / n).sqrt()
    se_var = ((m4 - s2**2 * (n - 3) / (n - 1)).clamp(min=0) / n).sqrt()
    rounding = 1e-12
    for i in range(2):
        assert abs(mean[i] - moments.mean[i]) <= K_SE * se_mean[i] + rounding, (i, mean, moments)
        assert abs(s2[i] - moments.var[i]) <= K_SE * se_var[i] + rounding, (i, s2, se_var, moments)


def test_pathwise_linear_mu_gradient_is_exactly_one_every_draw():
    g = one_sample_gradients(PROBLEMS["linear"], "pathwise", 0.3, 2.0, 1000, seed=0)
    assert torch.all((g[:, 0] - 1.0).abs() < 1e-12)
    assert g[:, 1].std() > 0.5  # d/dsigma = eps: genuinely random


def test_quadratic_score_function_variance_explodes_as_sigma_shrinks_pathwise_vanishes():
    quadratic = PROBLEMS["quadratic"]
    sigmas = [1.0, 0.1, 0.01, 0.001]
    sf = [quadratic.moments("score_function", 1.0, s).var[0] for s in sigmas]
    pw = [quadratic.moments("pathwise", 1.0, s).var[0] for s in sigmas]
    baseline = [quadratic.moments("score_function_baseline", 1.0, s).var[0] for s in sigmas]
    assert all(a < b for a, b in itertools.pairwise(sf))
    assert sf[-1] > 1e6  # ~ mu^4 / sigma^2
    assert all(a > b for a, b in itertools.pairwise(pw))
    assert pw[-1] < 1e-5  # 4 sigma^2
    assert baseline[-1] == pytest.approx(8.0, rel=1e-5)  # the exact baseline leaves 8 mu^2


@pytest.mark.parametrize(("problem_name", "mu", "sigma"), POINTS)
def test_expected_value_is_the_quadrature_of_f_and_gradient_its_derivative(problem_name, mu, sigma):
    """expected_value (also the exact baseline b) against Gauss-Hermite quadrature of f, and
    gradient against central finite differences of expected_value: neither check uses the
    closed form it checks."""
    problem = PROBLEMS[problem_name]
    nodes, weights = np.polynomial.hermite_e.hermegauss(100)
    f = problem.f(torch.tensor(mu + sigma * nodes, dtype=torch.float64)).numpy()
    assert problem.expected_value(mu, sigma) == pytest.approx(float(weights @ f / weights.sum()), rel=1e-10)
    h = 1e-5  # truncation error h^2/6 * (3rd derivative) ~ 1e-10; float64 rounding ~ 1e-16 / h
    d_mu = (problem.expected_value(mu + h, sigma) - problem.expected_value(mu - h, sigma)) / (2 * h)
    d_sigma = (problem.expected_value(mu, sigma + h) - problem.expected_value(mu, sigma - h)) / (2 * h)
    assert problem.gradient(mu, sigma) == pytest.approx((d_mu, d_sigma), rel=1e-7, abs=1e-9)


@pytest.mark.parametrize(
    ("problem_name", "mu", "sigma", "fragment"),
    [
        ("quadratic", 0.0, 0.0, "sigma must be > 0"),
        ("quadratic", 0.0, -1.0, "sigma must be > 0"),
        ("linear", math.nan, 1.0, "mu must be finite"),
        ("residual", 1.0, 1.0, "residual fixes mu at 0"),
    ],
)
def test_bad_points_raise_one_line_value_error(problem_name, mu, sigma, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        PROBLEMS[problem_name].moments("pathwise", mu, sigma)
    assert "\n" not in str(err.value)


def test_unknown_estimator_lists_valid_names():
    with pytest.raises(ValueError, match="pathwise, score_function, score_function_baseline"):
        one_sample_gradients(PROBLEMS["linear"], "reinforce", 0.0, 1.0, 10, seed=0)
