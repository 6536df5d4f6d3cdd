"""The categorical toy problem: exact gradient, closed-form variances, and every estimator
against them (or, for the relaxations, against an independent quadrature).

Independent checks:
- the exact gradient against autograd of p . c and against finite differences;
- the score-function variances (with and without the leave-one-out baseline) against brute
  enumeration of all K^S joint draws, so a wrong factor in Hoeffding's formula fails;
- Monte Carlo through the library's samplers with tolerances of 4 standard errors (of the mean,
  and of the sample variance from the sample 4th central moment);
- for K = 2, the Gumbel-Softmax estimator's mean and variance by scipy quadrature over the
  logistic difference of two Gumbels: y_0 = sigmoid((theta_0 - theta_1 + L) / T), L ~ Logistic.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch

from estimators.categorical import CATEGORICAL_ESTIMATORS, CategoricalProblem

F64 = torch.float64
K_SE = 4.0  # standard errors allowed per comparison: P(|N(0,1)| > 4) = 6e-5
NUM_SAMPLES = 40_000
PROBLEM = CategoricalProblem((1.0, 0.0, -1.0, 0.5), (1.0, 2.0, 4.0, -1.0))


def assert_within_standard_errors(samples: torch.Tensor, mean, var=None) -> None:
    """Sample mean within 4 SE(mean) of `mean`; sample variance within 4 SE(var) of `var`."""
    n = samples.shape[0]
    got_mean, s2 = samples.mean(0), samples.var(0)  # (N, K) -> (K,)
    m4 = ((samples - got_mean) ** 4).mean(0)
    se_mean = (s2 / n).sqrt()
    se_var = ((m4 - s2**2 * (n - 3) / (n - 1)).clamp(min=0) / n).sqrt()
    mean = torch.as_tensor(mean, dtype=F64)
    assert ((got_mean - mean).abs() <= K_SE * se_mean + 1e-12).all(), (got_mean, mean, se_mean)
    if var is not None:
        var = torch.as_tensor(var, dtype=F64)
        assert ((s2 - var).abs() <= K_SE * se_var + 1e-12).all(), (s2, var, se_var)


def test_exact_gradient_equals_autograd_and_finite_differences():
    theta = torch.tensor(PROBLEM.logits, dtype=F64, requires_grad=True)
    costs = torch.tensor(PROBLEM.costs, dtype=F64)
    (autograd,) = torch.autograd.grad(theta.softmax(-1) @ costs, theta)
    exact = torch.tensor(PROBLEM.exact_gradient(), dtype=F64)
    torch.testing.assert_close(exact, autograd)
    h = 1e-6
    for k in range(len(PROBLEM.logits)):
        up, down = list(PROBLEM.logits), list(PROBLEM.logits)
        up[k] += h
        down[k] -= h
        central = (
            CategoricalProblem(tuple(up), PROBLEM.costs).expected_value()
            - CategoricalProblem(tuple(down), PROBLEM.costs).expected_value()
        ) / (2 * h)
        assert exact[k].item() == pytest.approx(central, rel=1e-7)


def enumerated_moments(problem: CategoricalProblem, baseline: bool, draws: int):
    """Exact mean and variance of the S-draw score-function estimator by summing over all K^S
    joint draws (z_1..z_S), each with probability prod_i p_{z_i}."""
    p = problem.probs
    c = torch.tensor(problem.costs, dtype=F64)
    num_k = p.shape[0]
    eye = torch.eye(num_k, dtype=F64)
    first, second = torch.zeros(num_k, dtype=F64), torch.zeros(num_k, dtype=F64)
    for draw in itertools.product(range(num_k), repeat=draws):
        weight = math.prod(float(p[j]) for j in draw)
        f = c[list(draw)]  # (S,)
        b = (f.sum() - f) / (draws - 1) if baseline else torch.zeros(draws, dtype=F64)
        g = ((f - b).unsqueeze(1) * (eye[list(draw)] - p)).mean(0)  # (S, K) -> (K,)
        first += weight * g
        second += weight * g**2
    return first, second - first**2


@pytest.mark.parametrize("draws", [2, 3, 4])
@pytest.mark.parametrize("estimator", ["score_function", "score_function_baseline"])
def test_score_function_closed_forms_equal_enumeration(estimator, draws):
    moments = PROBLEM.moments(estimator, draws)
    mean, var = enumerated_moments(PROBLEM, estimator == "score_function_baseline", draws)
    torch.testing.assert_close(torch.tensor(moments.mean, dtype=F64), mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.tensor(moments.var, dtype=F64), var, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(mean, torch.tensor(PROBLEM.exact_gradient(), dtype=F64))


@pytest.mark.parametrize("draws", [2, 5])
@pytest.mark.parametrize("estimator", ["score_function", "score_function_baseline"])
def test_score_function_estimates_are_unbiased_with_the_closed_form_variance(estimator, draws):
    g = PROBLEM.estimates(estimator, 1.0, draws, NUM_SAMPLES, seed=1)
    moments = PROBLEM.moments(estimator, draws)
    assert_within_standard_errors(g, moments.mean, moments.var)


def test_leave_one_out_variance_ignores_a_constant_offset_of_the_costs():
    """The leave-one-out estimator sees only cost differences c_x - c_y, so adding 10 to every
    cost leaves its variance unchanged; the plain score function's grows (by about 10^2 E s^2)
    and the baseline then wins. (With costs near 0 on average and S = 2, the one-draw baseline
    can instead add variance: PROBLEM is such a case.)"""
    shifted = CategoricalProblem(PROBLEM.logits, tuple(c + 10.0 for c in PROBLEM.costs))
    for draws in (2, 4):
        loo = PROBLEM.moments("score_function_baseline", draws).var
        assert shifted.moments("score_function_baseline", draws).var == pytest.approx(loo, rel=1e-9)
        plain = sum(PROBLEM.moments("score_function", draws).var)
        plain_shifted = sum(shifted.moments("score_function", draws).var)
        assert plain_shifted > 20 * plain and sum(loo) < plain_shifted / 20
    assert sum(PROBLEM.moments("score_function_baseline", 2).var) > sum(
        PROBLEM.moments("score_function", 2).var
    )


def test_pathwise_gradient_through_the_hard_sample_is_zero_though_the_gradient_is_not():
    g = PROBLEM.estimates("pathwise_hard", 1.0, 2, 1000, seed=0)
    assert torch.equal(g, torch.zeros_like(g))
    assert torch.tensor(PROBLEM.exact_gradient()).norm() > 0.3
    # Independently: with the Gumbel noise fixed, the hard sample does not move under a small
    # change of a logit (central differences of f are 0) for all but the rare draws that sit
    # within h of a decision boundary.
    torch.manual_seed(0)
    gumbel = torch.distributions.Gumbel(0.0, 1.0).sample((5000, 4)).double()
    theta, costs = torch.tensor(PROBLEM.logits, dtype=F64), torch.tensor(PROBLEM.costs, dtype=F64)
    h = 1e-6
    shift = torch.zeros(4, dtype=F64)
    shift[0] = h
    f_up = costs[(theta + shift + gumbel).argmax(-1)]
    f_down = costs[(theta - shift + gumbel).argmax(-1)]
    assert ((f_up - f_down) / (2 * h) == 0).float().mean() > 0.999


def relaxed_moments_k2(theta: tuple[float, float], costs: tuple[float, float], temperature: float):
    """Mean and variance of the one-draw Gumbel-Softmax estimate of d/dtheta_0 for K = 2, by
    scipy quadrature over L = g_0 - g_1 ~ Logistic(0, 1):
    f(y) = c_1 + (c_0 - c_1) y_0, y_0 = sigmoid((theta_0 - theta_1 + L) / T), so
    g_0 = (c_0 - c_1) y_0 (1 - y_0) / T and g_1 = -g_0."""
    gap, scale = theta[0] - theta[1], costs[0] - costs[1]

    def g(t):
        y = scipy.special.expit((gap + t) / temperature)
        return scale * y * (1 - y) / temperature

    def moment(n):
        return scipy.integrate.quad(
            lambda t: g(t) ** n * scipy.stats.logistic.pdf(t), -60, 60, points=[-gap], limit=200
        )[0]

    mean = moment(1)
    return mean, moment(2) - mean**2


@pytest.mark.parametrize("temperature", [0.2, 1.0, 3.0])
def test_gumbel_softmax_mean_and_variance_equal_quadrature_for_two_categories(temperature):
    problem = CategoricalProblem((0.7, -0.2), (1.0, 3.0))
    mean, var = relaxed_moments_k2(problem.logits, problem.costs, temperature)
    draws = 2
    g = problem.estimates("gumbel_softmax", temperature, draws, NUM_SAMPLES, seed=2)
    # The S-draw estimate averages S independent one-draw estimates: variance / S.
    assert_within_standard_errors(g, [mean, -mean], [var / draws, var / draws])


def test_gumbel_softmax_bias_vanishes_as_temperature_falls_for_two_categories():
    """By quadrature (no sampling): the relaxed gradient tends to the exact one as T -> 0, and
    the bias grows with T."""
    problem = CategoricalProblem((0.7, -0.2), (1.0, 3.0))
    exact = problem.exact_gradient()[0]
    biases = [abs(relaxed_moments_k2(problem.logits, problem.costs, t)[0] - exact)
              for t in (0.01, 0.1, 1.0, 10.0)]  # fmt: skip
    assert biases[0] < 1e-3 * abs(exact)
    assert all(a < b for a, b in itertools.pairwise(biases))


def test_temperature_trades_bias_for_variance():
    """On the K = 4 problem: as T rises, |bias| rises and the variance trace falls, each step by
    more than 4 combined standard errors (SE of |bias| <= sqrt(trace var / N); SE of a variance
    trace from the per-estimate squared deviations)."""
    exact = torch.tensor(PROBLEM.exact_gradient(), dtype=F64)
    bias, bias_se, trace, trace_se = [], [], [], []
    for temperature in (0.3, 1.0, 3.0):
        g = PROBLEM.estimates("gumbel_softmax", temperature, 2, NUM_SAMPLES, seed=3)
        n = g.shape[0]
        deviation = ((g - g.mean(0)) ** 2).sum(1)  # (N, K) -> (N,)
        bias.append(float((g.mean(0) - exact).norm()))
        bias_se.append(math.sqrt(float(g.var(0).sum()) / n))
        trace.append(float(deviation.mean()))
        trace_se.append(float(deviation.std()) / math.sqrt(n))
    for i in range(2):
        assert bias[i + 1] - bias[i] > K_SE * math.hypot(bias_se[i], bias_se[i + 1]), bias
        assert trace[i] - trace[i + 1] > K_SE * math.hypot(trace_se[i], trace_se[i + 1]), trace


def test_straight_through_equals_gumbel_softmax_draw_by_draw_for_a_linear_f():
    soft = PROBLEM.estimates("gumbel_softmax", 0.5, 2, 500, seed=4)
    hard = PROBLEM.estimates("straight_through", 0.5, 2, 500, seed=4)
    torch.testing.assert_close(hard, soft)
    assert soft.std(0).min() > 0.01  # genuinely random estimates


def test_every_estimator_returns_one_row_per_estimate():
    for estimator in CATEGORICAL_ESTIMATORS:
        g = PROBLEM.estimates(estimator, 1.0, 3, 7, seed=0)
        assert g.shape == (7, 4) and g.dtype == F64
    assert PROBLEM.moments("gumbel_softmax", 2) is None


def test_estimates_are_reproducible_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = PROBLEM.estimates("score_function_baseline", 1.0, 2, 50, seed=9)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(first, PROBLEM.estimates("score_function_baseline", 1.0, 2, 50, seed=9))


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: CategoricalProblem((1.0,), (1.0,)), "K >= 2 categories, got 1"),
        (lambda: CategoricalProblem((1.0, 2.0), (1.0, 2.0, 3.0)), "3 costs vs 2 logits"),
        (lambda: CategoricalProblem((1.0, math.nan), (1.0, 2.0)), "logits must be finite"),
        (lambda: PROBLEM.moments("reinforce", 2), "valid: score_function, score_function_baseline"),
        (lambda: PROBLEM.moments("score_function", 1), "draws must be >= 2"),
        (lambda: PROBLEM.estimates("gumbel_softmax", 0.0, 2, 10, 0), "temperature must be > 0"),
    ],
)
def test_bad_input_raises_one_line_value_error(build, fragment):
    with pytest.raises(ValueError, match=None) as err:
        build()
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_probabilities_are_the_softmax():
    np.testing.assert_allclose(PROBLEM.probs.sum().item(), 1.0)
    np.testing.assert_allclose(
        PROBLEM.probs.numpy(), scipy.special.softmax(np.array(PROBLEM.logits)), rtol=1e-12
    )
