"""Toy problems: closed forms are right, and every estimator is unbiased with that variance.

Two independent checks of each closed form, for every location-scale family:
1. quadrature of the one-sample estimator written out in eps, with f' by autograd and the
   score by autograd of torch.distributions' log-density (logistic: log sigmoid(t) +
   log sigmoid(-t) - log s, a form of its own): Gauss-Hermite (normal), Gauss-Laguerre on each
   half-line (laplace), Gauss-Legendre on [-80, 80] (logistic). Deterministic; exact or
   accurate to ~1e-12 relative, so rtol 1e-9 fails on any factor error;
2. Monte Carlo through the library's own samplers and surrogates (`one_sample_gradients`),
   with tolerances from the standard errors of the sample mean and sample variance.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from estimators.problems import ESTIMATORS, FAMILIES, PROBLEMS, one_sample_gradients, toy_problem

# (problem, family, mu, sigma) points; residual fixes mu = 0. Moderate sigma keeps the 4th
# moments of the score-function estimators (and so the standard error of their variance)
# finite and usable.
POINTS = [
    ("linear", "normal", 0.7, 0.6),
    ("quadratic", "normal", 0.7, 0.6),
    ("quadratic", "normal", 1.0, 0.1),
    ("residual", "normal", 0.0, 0.6),
    ("lognormal", "normal", 0.3, 0.5),
    ("linear", "laplace", 0.7, 0.6),
    ("quadratic", "laplace", 0.7, 0.6),
    ("residual", "laplace", 0.0, 0.6),
    ("linear", "logistic", 0.7, 0.6),
    ("quadratic", "logistic", 0.7, 0.6),
    ("quadratic", "logistic", 1.0, 0.1),
]
NUM_SAMPLES = 40_000
# Number of standard errors allowed: P(|N(0,1)| > 4) = 6e-5 per comparison.
K_SE = 4.0


def family_quadrature(family: str) -> tuple[np.ndarray, np.ndarray]:
    """Nodes eps_j and weights w_j (sum 1) with sum_j w_j h(eps_j) ~ E[h(eps)] for the family's
    standard noise."""
    if family == "normal":
        nodes, weights = np.polynomial.hermite_e.hermegauss(100)  # weight exp(-eps^2/2)
    elif family == "laplace":
        half, half_w = np.polynomial.laguerre.laggauss(60)  # weight exp(-x) on [0, inf)
        nodes, weights = np.concatenate([-half, half]), np.concatenate([half_w, half_w])
    else:  # logistic density sech^2(eps/2)/4 on [-80, 80], mirrored Gauss-Legendre halves
        x, w = np.polynomial.legendre.leggauss(600)
        half, half_w = (x + 1.0) * 40.0, w * 40.0
        nodes, weights = np.concatenate([-half, half]), np.concatenate([half_w, half_w])
        weights = weights * 0.25 / np.cosh(nodes / 2.0) ** 2
    return nodes, weights / weights.sum()


def reference_log_prob(family: str, z, mu, sigma):
    if family == "normal":
        return torch.distributions.Normal(mu, sigma).log_prob(z)
    if family == "laplace":
        return torch.distributions.Laplace(mu, sigma).log_prob(z)
    t = (z - mu) / sigma  # logistic: p = sigmoid(t) sigmoid(-t) / s
    return F.logsigmoid(t) + F.logsigmoid(-t) - torch.log(sigma)


def reference_score(family: str, z, mu: float, sigma: float):
    """d log q(z_j) / d(mu, sigma) by autograd, one copy of (mu, sigma) per node: (J,) -> (J, 2)."""
    mu_j = torch.full_like(z, mu, requires_grad=True)
    sigma_j = torch.full_like(z, sigma, requires_grad=True)
    grads = torch.autograd.grad(reference_log_prob(family, z, mu_j, sigma_j).sum(), [mu_j, sigma_j])
    return torch.stack(grads, dim=1)  # 2 x (J,) -> (J, 2)


def quadrature_estimates(problem_name: str, family: str, estimator: str, mu: float, sigma: float):
    """The one-sample estimator at the quadrature nodes eps_j (J, 2), and the weights (J,)."""
    nodes, weights = family_quadrature(family)
    eps = torch.tensor(nodes, dtype=torch.float64)
    problem = toy_problem(problem_name, family)
    z = (mu + sigma * eps).requires_grad_()
    f = problem.f(z)
    (f_prime,) = torch.autograd.grad(f.sum(), z)  # f'(z) by autograd, not from the closed forms
    f = f.detach()
    if estimator == "pathwise":
        g = torch.stack([f_prime, f_prime * eps], dim=1)
    else:
        b = problem.expected_value(mu, sigma) if estimator == "score_function_baseline" else 0.0
        g = (f - b).unsqueeze(1) * reference_score(family, z.detach(), mu, sigma)
    return g, torch.tensor(weights, dtype=torch.float64)


@pytest.mark.parametrize(("problem_name", "family", "mu", "sigma"), POINTS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_closed_forms_equal_quadrature(problem_name, family, mu, sigma, estimator):
    g, w = quadrature_estimates(problem_name, family, estimator, mu, sigma)
    mean = (w.unsqueeze(1) * g).sum(0)  # (J, 2) -> (2,)
    var = (w.unsqueeze(1) * (g - mean) ** 2).sum(0)  # (J, 2) -> (2,)
    moments = toy_problem(problem_name, family).moments(estimator, mu, sigma)
    scale = 1.0 + max(abs(v) for v in moments.var)
    np.testing.assert_allclose(mean.numpy(), moments.mean, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(var.numpy(), moments.var, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_moments_equal_quadrature(family):
    """m2, m4 and the six score moments of each family, against quadrature of the scores
    differentiated by autograd (a factor error in any one of them fails)."""
    nodes, weights = family_quadrature(family)
    eps = torch.tensor(nodes, dtype=torch.float64)
    w = torch.tensor(weights, dtype=torch.float64)
    scores = reference_score(family, eps, 0.0, 1.0)  # (J, 2): s_mu, s_sigma at mu 0, sigma 1
    fam = FAMILIES[family]
    expected = {"m2": (w * eps**2).sum(), "m4": (w * eps**4).sum()}
    for j in range(3):
        expected[f"s_mu[{j}]"] = (w * eps ** (2 * j) * scores[:, 0] ** 2).sum()
        expected[f"s_sigma[{j}]"] = (w * eps ** (2 * j) * scores[:, 1] ** 2).sum()
    got = {"m2": fam.m2, "m4": fam.m4}
    got |= {f"s_mu[{j}]": fam.s_mu[j] for j in range(3)}
    got |= {f"s_sigma[{j}]": fam.s_sigma[j] for j in range(3)}
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), rel=1e-9), key


@pytest.mark.parametrize(("problem_name", "family", "mu", "sigma"), POINTS)
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimator_is_unbiased_with_closed_form_variance(problem_name, family, mu, sigma,
                                                         estimator):
    """Sample mean within 4 SE of the true gradient; sample variance within 4 SE of Var.

    SE(mean) = sqrt(s^2 / N). SE(s^2) = sqrt((m4 - s^4 (N - 3)/(N - 1)) / N), the standard
    error of a sample variance, with m4 the sample 4th central moment. Zero-variance estimators
    (pathwise d/dmu of the linear f) have SE 0: they may differ from the truth only by float64
    rounding of the per-sample gradient, bounded by 1e-12.
    """
    problem = toy_problem(problem_name, family)
    moments = problem.moments(estimator, mu, sigma)
    g = one_sample_gradients(problem, estimator, mu, sigma, NUM_SAMPLES, seed=1)
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


@pytest.mark.parametrize(("problem_name", "mu", "sigma"),
                         [(name, mu, sigma)
                          for name, family, mu, sigma in POINTS if family == "normal"])
def test_expected_value_is_the_quadrature_of_f_and_gradient_its_derivative(problem_name, mu, sigma):
    """The normal family's expected_value (also the exact baseline b) against Gauss-Hermite
    quadrature of f, and gradient against central finite differences of expected_value:
    neither check uses the closed form it checks."""
    problem = PROBLEMS[problem_name]
    nodes, weights = np.polynomial.hermite_e.hermegauss(100)
    f = problem.f(torch.tensor(mu + sigma * nodes, dtype=torch.float64)).numpy()
    assert problem.expected_value(mu, sigma) == pytest.approx(float(weights @ f / weights.sum()),
                                                              rel=1e-10)
    h = 1e-5  # truncation error h^2/6 * (3rd derivative) ~ 1e-10; float64 rounding ~ 1e-16 / h
    d_mu = (problem.expected_value(mu + h, sigma) - problem.expected_value(mu - h, sigma)) / (2 * h)
    d_sigma = ((problem.expected_value(mu, sigma + h) - problem.expected_value(mu, sigma - h))
               / (2 * h))
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


def test_lognormal_has_closed_forms_for_the_normal_only():
    with pytest.raises(ValueError,
                       match="lognormal has closed forms for --distribution normal only"):
        toy_problem("lognormal", "laplace")
    with pytest.raises(ValueError, match="valid: normal, laplace, logistic"):
        toy_problem("linear", "cauchy")


def test_heavier_tailed_families_change_the_closed_forms():
    """Same (mu, sigma), different family: the quadratic's gradient scales with m2, and the
    pathwise d/dsigma variance with the excess kurtosis m4 - m2^2."""
    mu, sigma = 0.5, 0.8
    moments = {fam: toy_problem("quadratic", fam).moments("pathwise", mu, sigma)
               for fam in FAMILIES}
    assert moments["laplace"].mean[1] == pytest.approx(2 * 2.0 * sigma)  # m2 = 2
    assert moments["logistic"].mean[1] == pytest.approx(2 * math.pi**2 / 3 * sigma)
    assert moments["laplace"].var[1] == pytest.approx(4 * 2 * mu**2 + 4 * (24 - 4) * sigma**2)
