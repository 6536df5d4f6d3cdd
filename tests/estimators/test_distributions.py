"""Samplers: densities against independent constructions, entropies against -E[log p],
gradient paths, the Gumbel-Softmax relaxation, temperature schedules and argument checks.

Statistical checks use a fixed seed and a tolerance of 4 standard errors of the sample mean.
"""

from __future__ import annotations

import itertools
import math
import typing

import pytest
import scipy.integrate
import scipy.stats
import torch
from torch.distributions import (
    AffineTransform,
    Independent,
    Normal,
    TanhTransform,
    TransformedDistribution,
)

from estimators.distributions import (
    LOCATION_SCALE_FAMILIES,
    ConstantTemperature,
    DiagNormal,
    Exponential,
    ExponentialTemperature,
    GumbelSoftmax,
    Kumaraswamy,
    Laplace,
    LocationScaleFamily,
    Logistic,
    LogNormal,
    TanhSquashed,
    Weibull,
)
from estimators.problems import FAMILIES as TOY_FAMILIES
from estimators.variance import gradient_samples, gradient_stats

K_SE = 4.0  # standard errors allowed in every statistical comparison
F64 = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tanh_normal_params(batch: int = 5, dim: int = 3):
    loc = torch.randn(batch, dim, dtype=F64)
    scale = torch.rand(batch, dim, dtype=F64) + 0.3
    action_scale = torch.tensor([2.0, 0.5, 1.0], dtype=F64)
    action_bias = torch.tensor([0.0, 1.0, -3.0], dtype=F64)
    return loc, scale, action_scale, action_bias


# --- DiagNormal ----------------------------------------------------------------------------


def test_diag_normal_sums_log_prob_over_the_last_dim():
    loc, scale = torch.randn(4, 3, dtype=F64), torch.rand(4, 3, dtype=F64) + 0.1
    dist = DiagNormal(loc, scale)
    z = dist.rsample((7,))
    assert z.shape == (7, 4, 3)
    expected = Normal(loc, scale).log_prob(z).sum(-1)
    torch.testing.assert_close(dist.log_prob(z), expected)
    assert dist.entropy().shape == (4,)
    assert dist.loc is loc and dist.scale is scale
    torch.testing.assert_close(dist.mean, loc)
    torch.testing.assert_close(dist.stddev, scale)


# --- TanhSquashed with the normal family (the SAC paper's tanh-Gaussian) ---------------------


def test_tanh_normal_log_prob_matches_transformed_distribution():
    loc, scale, action_scale, action_bias = tanh_normal_params()
    dist = TanhSquashed(loc, scale, action_scale, action_bias)
    reference = Independent(
        TransformedDistribution(
            Normal(loc, scale), [TanhTransform(), AffineTransform(action_bias, action_scale)]
        ),
        1,
    )
    u = loc + scale * torch.randn(11, 5, 3, dtype=F64).clamp(-3, 3)  # unsaturated: atanh is exact
    action = dist.squash(u)
    expected = reference.log_prob(action)
    torch.testing.assert_close(dist.log_prob_pre_squash(u), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(dist.log_prob(action), expected, atol=1e-5, rtol=0)


def test_tanh_normal_log_prob_matches_autograd_jacobian():
    loc, scale, action_scale, action_bias = tanh_normal_params(batch=1)
    dist = TanhSquashed(loc[0], scale[0], action_scale, action_bias)
    u = torch.tensor([0.3, -1.7, 2.5], dtype=F64)
    jacobian = torch.autograd.functional.jacobian(dist.squash, u)  # (A, A)
    _, log_abs_det = torch.linalg.slogdet(jacobian)
    expected = DiagNormal(loc[0], scale[0]).log_prob(u) - log_abs_det
    torch.testing.assert_close(dist.log_prob_pre_squash(u), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_tanh_normal_log_prob_is_finite_for_saturated_pre_squash_values(dtype):
    u = torch.tensor([[-50.0, -20.0, 0.0, 20.0, 50.0]], dtype=dtype)
    dist = TanhSquashed(torch.zeros(1, 5, dtype=dtype), torch.full((1, 5), 30.0, dtype=dtype))
    naive = torch.log(1 - torch.tanh(u) ** 2)  # what the stable form replaces
    assert not torch.isfinite(naive).all()
    log_prob = dist.log_prob_pre_squash(u)
    assert torch.isfinite(log_prob).all()
    # log(1 - tanh(u)^2) = log sech^2(u) = -2 (|u| + log1p(exp(-2|u|)) - log 2), another form.
    log_det = -2.0 * (u.abs() + torch.log1p(torch.exp(-2.0 * u.abs())) - math.log(2.0))
    expected = Normal(0.0, 30.0).log_prob(u.double()).sum(-1) - log_det.double().sum(-1)
    torch.testing.assert_close(log_prob.double(), expected, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_tanh_normal_log_prob_is_finite_at_the_action_bounds(dtype):
    loc = torch.zeros(2, 2, dtype=dtype, requires_grad=True)
    scale = torch.ones(2, 2, dtype=dtype)
    action_scale = torch.tensor([2.0, 0.5], dtype=dtype)
    action_bias = torch.tensor([1.0, 0.0], dtype=dtype)
    dist = TanhSquashed(loc, scale, action_scale, action_bias)
    bounds = torch.stack([action_bias + action_scale, action_bias - action_scale])  # exactly +-1
    log_prob = dist.log_prob(bounds)
    assert log_prob.shape == (2,)
    assert torch.isfinite(log_prob).all()
    (grad,) = torch.autograd.grad(log_prob.sum(), loc)
    assert torch.isfinite(grad).all()


def test_tanh_normal_samples_and_scores_one_pre_squash_draw():
    loc, scale, action_scale, action_bias = tanh_normal_params()
    dist = TanhSquashed(loc, scale, action_scale, action_bias)
    torch.manual_seed(3)
    action, log_prob = dist.rsample_and_log_prob((2,))
    torch.manual_seed(3)
    u = dist.sample_pre_squash((2,))
    assert action.shape == (2, 5, 3) and log_prob.shape == (2, 5) and not u.requires_grad
    torch.testing.assert_close(action, dist.squash(u))
    torch.testing.assert_close(log_prob, dist.log_prob_pre_squash(u))
    assert ((action - action_bias).abs() <= action_scale).all()


def test_tanh_normal_mode_is_the_squashed_location():
    loc, scale, action_scale, action_bias = tanh_normal_params()
    dist = TanhSquashed(loc, scale, action_scale, action_bias)
    torch.testing.assert_close(dist.mode, action_bias + action_scale * torch.tanh(loc))


def test_tanh_normal_float_action_scale_adds_its_log_per_dimension():
    loc, scale = torch.randn(4, 3, dtype=F64), torch.rand(4, 3, dtype=F64) + 0.2
    u = torch.randn(4, 3, dtype=F64)
    unit = TanhSquashed(loc, scale).log_prob_pre_squash(u)
    scaled = TanhSquashed(loc, scale, action_scale=2.5, action_bias=0.7).log_prob_pre_squash(u)
    torch.testing.assert_close(scaled, unit - 3 * math.log(2.5))


def test_tanh_squashed_defaults_act_on_the_unit_box():
    """action_scale 1 and action_bias 0 unless given: actions in (-1, 1), the mode tanh(loc)."""
    loc, scale = torch.randn(200, 3, dtype=F64), torch.full((200, 3), 2.0, dtype=F64)
    dist = TanhSquashed(loc, scale)
    actions = dist.sample()
    assert (actions.abs() < 1).all() and (actions < 0).any() and (actions > 0).any()
    torch.testing.assert_close(dist.mode, torch.tanh(loc), rtol=0, atol=0)


def test_tanh_squashed_shapes_broadcast_loc_scale_and_the_action_bounds():
    """batch_shape and event_shape as torch.distributions defines them: the broadcast of loc,
    scale, action_scale and action_bias, the last dimension being the action."""
    dist = TanhSquashed(torch.zeros(4, 1), torch.ones(1, 3), action_scale=torch.ones(3),
                        action_bias=0.0)
    assert dist.batch_shape == (4,) and dist.event_shape == (3,)
    dist = TanhSquashed(torch.zeros(3), torch.ones(2, 1, 3), action_scale=torch.ones(4, 3))
    assert dist.batch_shape == (2, 4) and dist.event_shape == (3,)


def test_a_tensor_action_scale_is_value_checked_only_when_validating():
    """No host sync in the hot loop: validate_args=False skips the action_scale > 0 check."""
    loc, scale, bad = torch.zeros(3), torch.ones(3), torch.tensor([1.0, -1.0, 1.0])
    TanhSquashed(loc, scale, action_scale=bad, validate_args=False)
    _one_line_value_error(lambda: TanhSquashed(loc, scale, action_scale=bad, validate_args=True),
                          "action_scale must be > 0")


def test_float_action_bounds_take_the_parameters_dtype():
    """A float action_scale / bias becomes a tensor of loc's dtype:
    float64 policies stay float64."""
    loc, scale = torch.randn(4, 3, dtype=F64), torch.rand(4, 3, dtype=F64) + 0.2
    dist = TanhSquashed(loc, scale, action_scale=0.3, action_bias=0.1)
    assert dist.action_scale.dtype == dist.action_bias.dtype == F64
    u = torch.randn(4, 3, dtype=F64)
    torch.testing.assert_close(dist.squash(u), 0.1 + 0.3 * torch.tanh(u), rtol=1e-15, atol=1e-15)
    unit = TanhSquashed(loc, scale).log_prob_pre_squash(u)
    torch.testing.assert_close(dist.log_prob_pre_squash(u), unit - 3 * math.log(0.3), rtol=1e-13,
                               atol=1e-13)


def test_distributions_keep_no_sample_state():
    loc, scale, action_scale, action_bias = tanh_normal_params()
    dist = TanhSquashed(loc, scale, action_scale, action_bias)
    before = {k: v for k, v in vars(dist).items()}
    dist.rsample_and_log_prob((3,))
    dist.sample()
    assert vars(dist).keys() == before.keys()
    assert all(vars(dist)[k] is v for k, v in before.items())


# --- TanhSquashed with every policy family ---------------------------------------------------

# scipy's log-density of each family with parameters (loc, scale): an independent construction.
SCIPY_FAMILIES = {"normal": scipy.stats.norm, "laplace": scipy.stats.laplace,
                  "logistic": scipy.stats.logistic}
FAMILIES = list(LOCATION_SCALE_FAMILIES)


def test_the_literal_and_the_toy_problems_name_every_location_scale_family() -> None:
    names = tuple(LOCATION_SCALE_FAMILIES)
    assert (typing.get_args(LocationScaleFamily) == names == tuple(SCIPY_FAMILIES)
            == tuple(TOY_FAMILIES))


@pytest.mark.parametrize("family", FAMILIES)
def test_squashed_log_prob_is_the_base_density_minus_the_log_jacobian(family: str) -> None:
    """log pi(a) = sum_i log p(u_i) - log |det d squash / du|,
    p from scipy, the Jacobian by autograd."""
    loc, scale, action_scale, action_bias = tanh_normal_params(batch=1)
    dist = TanhSquashed(loc[0], scale[0], action_scale, action_bias, family)
    u = torch.tensor([0.3, -1.7, 2.5], dtype=F64)
    _, log_abs_det = torch.linalg.slogdet(torch.autograd.functional.jacobian(dist.squash, u))
    base = SCIPY_FAMILIES[family].logpdf(u.numpy(), loc=loc[0].numpy(),
                                         scale=scale[0].numpy()).sum()
    torch.testing.assert_close(dist.log_prob_pre_squash(u),
                               torch.tensor(base, dtype=F64) - log_abs_det)
    torch.testing.assert_close(dist.log_prob(dist.squash(u)), dist.log_prob_pre_squash(u))


@pytest.mark.parametrize("family", FAMILIES)
def test_squashed_density_integrates_to_one_over_the_action_interval(family: str) -> None:
    """One action dimension on (bias - scale, bias + scale) = (-1.5, 2.5):
    quadrature of exp(log pi)."""
    dist = TanhSquashed(torch.tensor([0.4], dtype=F64), torch.tensor([0.8], dtype=F64), 2.0, 0.5,
                        family)
    density = lambda a: dist.log_prob(torch.tensor([a], dtype=F64)).exp().item()  # noqa: E731
    total, error = scipy.integrate.quad(density, -1.5, 2.5, limit=200)
    assert total == pytest.approx(1.0, abs=max(10 * error, 1e-7))


@pytest.mark.parametrize("family", FAMILIES)
def test_squashed_samples_follow_the_cdf_of_the_squashed_base(family: str) -> None:
    """P(a <= y) = F(atanh((y - bias) / scale)) with F scipy's CDF of the family, at three
    points; the empirical frequency of N draws within K_SE binomial standard errors."""
    n, loc, scale = 200_000, 0.3, 0.7
    dist = TanhSquashed(torch.full((1,), loc, dtype=F64), torch.full((1,), scale, dtype=F64), 2.0,
                        0.5, family)
    actions = dist.sample((n,))[:, 0]  # (N, 1) -> (N,)
    assert ((actions > -1.5) & (actions < 2.5)).all()
    for y in (-1.0, 0.5, 2.0):
        p = SCIPY_FAMILIES[family].cdf(math.atanh((y - 0.5) / 2.0), loc=loc, scale=scale)
        frequency = (actions <= y).double().mean().item()
        assert abs(frequency - p) < K_SE * math.sqrt(p * (1 - p) / n), (y, frequency, p)


@pytest.mark.parametrize("family", FAMILIES)
def test_hand_written_pathwise_gradient_equals_autograd_for_every_family(family: str) -> None:
    """rsample_and_log_prob_backward: dL/dloc and dL/dlog(scale) of
    L = <g_a, action> + <g_lp, log_prob> along u = loc + scale * eps, against autograd through
    rsample_and_log_prob on the same draw."""
    loc, scale, action_scale, action_bias = tanh_normal_params()
    loc = loc.detach().requires_grad_(True)
    log_scale = scale.detach().log().requires_grad_(True)
    dist = TanhSquashed(loc, log_scale.exp(), action_scale, action_bias, family)
    torch.manual_seed(4)
    action, log_prob = dist.rsample_and_log_prob((2,))  # sample and batch dims: (2, 5, 3), (2, 5)
    grad_action, grad_log_prob = torch.randn_like(action), torch.randn_like(log_prob)
    want = torch.autograd.grad((grad_action * action).sum() + (grad_log_prob * log_prob).sum(),
                               [loc, log_scale])
    torch.manual_seed(4)
    with torch.no_grad():
        plain = TanhSquashed(loc.detach(), log_scale.detach().exp(), action_scale, action_bias,
                             family)
        got = plain.rsample_and_log_prob_backward(plain.base.rsample((2,)), grad_action,
                                                  grad_log_prob)
    # (2, 5, 3) -> (5, 3): each draw's gradient, summed as autograd sums
    got = [g.sum(0) for g in got]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


def test_an_unknown_policy_family_is_one_line_naming_the_choices() -> None:
    _one_line_value_error(lambda: TanhSquashed(torch.zeros(3), torch.ones(3), family="cauchy"),
                          "family must be one of normal, laplace, logistic", "'cauchy'")


# --- entropy, densities and sampling of the location-scale families -------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: DiagNormal(torch.tensor([0.3, -1.0], dtype=F64),
                           torch.tensor([0.5, 2.0], dtype=F64)),
        lambda: Laplace(torch.tensor([0.3, -1.0], dtype=F64), torch.tensor([0.5, 2.0], dtype=F64)),
        lambda: Logistic(torch.tensor([0.3, -1.0], dtype=F64), torch.tensor([0.5, 2.0], dtype=F64)),
        lambda: LogNormal(torch.tensor([0.3, -1.0], dtype=F64),
                          torch.tensor([0.5, 0.8], dtype=F64)),
    ],
    ids=["DiagNormal", "Laplace", "Logistic", "LogNormal"],
)
def test_entropy_equals_minus_expected_log_prob(make):
    """H = -E[log p(z)]: the sample mean of -log p(z) lies within 4 SE of the closed form."""
    dist = make()
    n = 100_000
    neg_log_p = -dist.log_prob(dist.sample((n,)))  # (N, ...) one entry per sample
    se = neg_log_p.std(0) / math.sqrt(n)
    assert ((neg_log_p.mean(0) - dist.entropy()).abs() <= K_SE * se).all()


def test_logistic_matches_scipy_density_and_distribution():
    loc, scale = 0.4, 1.7
    dist = Logistic(torch.tensor(loc, dtype=F64), torch.tensor(scale, dtype=F64))
    x = torch.linspace(-60, 60, 101, dtype=F64)  # far tails too: the softplus form stays finite
    expected = scipy.stats.logistic.logpdf(x.numpy(), loc=loc, scale=scale)
    torch.testing.assert_close(dist.log_prob(x), torch.from_numpy(expected))
    samples = dist.sample((20_000,))
    # Kolmogorov-Smirnov at level 1e-3 against the exact CDF (fixed seed).
    assert scipy.stats.kstest(samples.numpy(), "logistic", args=(loc, scale)).pvalue > 1e-3
    torch.testing.assert_close(dist.variance, torch.tensor(scale**2 * math.pi**2 / 3, dtype=F64))


# --- gradient paths -------------------------------------------------------------------------


def _params(*shapes):
    return [torch.rand(*shape, dtype=F64).add(0.5).requires_grad_() for shape in shapes]


SAMPLERS = {
    "DiagNormal": (lambda p: DiagNormal(p[0], p[1]), (2, 3)),
    "TanhSquashed": (lambda p: TanhSquashed(p[0], p[1], 2.0, 0.5), (2, 3)),
    "Laplace": (lambda p: Laplace(p[0], p[1]), (2, 3)),
    "Logistic": (lambda p: Logistic(p[0], p[1]), (2, 3)),
    "LogNormal": (lambda p: LogNormal(p[0], p[1]), (2, 3)),
    "GumbelSoftmax": (lambda p: GumbelSoftmax(p[0], p[1].mean()), (2, 3)),
    "GumbelSoftmax-hard": (lambda p: GumbelSoftmax(p[0], p[1].mean(), hard=True), (2, 3)),
    "Exponential": (lambda p: Exponential(p[0] * p[1]), (2, 3)),
    "Weibull": (lambda p: Weibull(p[0], p[1]), (2, 3)),
    "Kumaraswamy": (lambda p: Kumaraswamy(p[0], p[1]), (2, 3)),
}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_gradients_flow_through_rsample(name):
    make, shape = SAMPLERS[name]
    params = _params(shape, shape)
    z = make(params).rsample((4,))
    weights = torch.randn(z.shape, dtype=F64)  # a generic linear read-out of the sample
    grads = torch.autograd.grad((weights * z).sum(), params)
    for grad in grads:
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_no_gradient_flows_through_sample(name):
    make, shape = SAMPLERS[name]
    z = make(_params(shape, shape)).sample((4,))
    assert not z.requires_grad and z.grad_fn is None


def test_no_gradient_flows_through_sample_pre_squash():
    loc, scale = _params((2, 3), (2, 3))
    assert not TanhSquashed(loc, scale).sample_pre_squash((4,)).requires_grad


# --- Gumbel-Softmax -------------------------------------------------------------------------

PROBS = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)


def test_gumbel_softmax_samples_lie_on_the_simplex():
    y = GumbelSoftmax(PROBS.log(), 0.3).rsample((1000,))
    assert y.shape == (1000, 4)
    assert (y >= 0).all()
    torch.testing.assert_close(y.sum(-1), torch.ones(1000, dtype=F64))


def test_gumbel_softmax_log_prob_is_the_concrete_density():
    """Maddison et al. 2017, eq. 2: p(y) = (K-1)! tau^(K-1) prod_k pi_k y_k^(-tau-1)
    / (sum_i pi_i y_i^(-tau))^K, for probabilities pi."""
    tau, k = 0.7, 4
    dist = GumbelSoftmax(PROBS.log(), tau)
    y = dist.sample((50,))
    expected = (
        math.lgamma(k)
        + (k - 1) * math.log(tau)
        + (PROBS.log() - (tau + 1) * y.log()).sum(-1)
        - k * torch.logsumexp(PROBS.log() - tau * y.log(), dim=-1)
    )
    torch.testing.assert_close(dist.log_prob(y), expected)


def test_gumbel_softmax_hard_samples_follow_the_category_probabilities():
    """Chi-square goodness of fit at level 1e-3 (fixed seed); the same counts reject a nearby
    wrong distribution, so the test has power."""
    n = 20_000
    y = GumbelSoftmax(PROBS.log(), 0.5, hard=True).sample((n,))
    counts = y.sum(0).numpy()  # (N, K) -> (K,)
    assert scipy.stats.chisquare(counts, n * PROBS.numpy()).pvalue > 1e-3
    wrong = torch.tensor([0.12, 0.2, 0.3, 0.38], dtype=F64)
    assert scipy.stats.chisquare(counts, n * wrong.numpy()).pvalue < 1e-3


def test_gumbel_softmax_hard_is_one_hot_forward_with_the_soft_gradient():
    logits = PROBS.log().clone().requires_grad_()
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)
    torch.manual_seed(5)
    hard = GumbelSoftmax(logits, 0.5, hard=True).rsample((64,))
    torch.manual_seed(5)
    soft = GumbelSoftmax(logits, 0.5).rsample((64,))
    assert set(hard.detach().unique().tolist()) == {0.0, 1.0}
    assert (hard.detach().sum(-1) == 1.0).all()
    assert torch.equal(hard.detach().argmax(-1), soft.detach().argmax(-1))
    (grad_hard,) = torch.autograd.grad((weights * hard).sum(), logits)
    (grad_soft,) = torch.autograd.grad((weights * soft).sum(), logits)
    assert grad_hard.abs().sum() > 0
    torch.testing.assert_close(grad_hard, grad_soft)


def test_gumbel_softmax_gradient_variance_grows_as_temperature_falls():
    """Trace of the covariance of the pathwise gradient of E[w . y] w.r.t. the logits, from K
    draws per temperature; each step down must exceed the previous by 4 combined SE, where
    SE(trace) = std_k(||g_k - mean||^2) / sqrt(K)."""
    logits = torch.tensor([0.5, -0.3, 0.1, 0.9], dtype=F64, requires_grad=True)
    weights = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)
    k = 1000
    traces, ses = [], []
    for tau in (2.0, 1.0, 0.5, 0.25):
        samples = gradient_samples(
            lambda tau=tau: (
                weights * GumbelSoftmax(logits, tau, validate_args=False).rsample()).sum(),
            [logits],
            k,
        )
        traces.append(gradient_stats(samples).var_trace)
        ses.append(float(((samples - samples.mean(0)) ** 2).sum(1).std()) / math.sqrt(k))
    for i in range(len(traces) - 1):
        assert traces[i + 1] - traces[i] > K_SE * math.hypot(ses[i], ses[i + 1]), (traces, ses)


def test_temperature_schedules_are_pure_functions_of_the_step():
    constant = ConstantTemperature(0.7)
    assert [constant(s) for s in (0, 10, 10_000)] == [0.7, 0.7, 0.7]
    schedule = ExponentialTemperature(start=1.0, decay_rate=1e-3, floor=0.5)
    assert schedule(0) == 1.0
    assert schedule(100) == pytest.approx(math.exp(-0.1))
    values = [schedule(s) for s in range(0, 2000, 50)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert schedule(10_000) == 0.5 and schedule(10**9) == 0.5  # exp(-10) < 0.5: at the floor
    assert schedule(300) == ExponentialTemperature(1.0, 1e-3, 0.5)(300)  # no hidden state


# --- argument checks ------------------------------------------------------------------------


def _one_line_value_error(build, *fragments):
    with pytest.raises(ValueError) as err:
        build()
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("bad", [0.0, -0.3])
@pytest.mark.parametrize(
    "cls", [DiagNormal, TanhSquashed, Laplace, Logistic, LogNormal], ids=lambda c: c.__name__
)
def test_nonpositive_scale_is_rejected(cls, bad):
    scale = torch.tensor([1.0, bad, 2.0])
    _one_line_value_error(lambda: cls(torch.zeros(3), scale), "scale must be > 0", f"{bad:g}")


@pytest.mark.parametrize("cls", [DiagNormal, TanhSquashed, Laplace, Logistic, LogNormal],
                         ids=lambda c: c.__name__)
def test_mismatched_shapes_state_both_shapes(cls):
    _one_line_value_error(
        lambda: cls(torch.zeros(4, 3), torch.ones(4, 2)), "shape mismatch", "(4, 3)", "(4, 2)"
    )


def test_tanh_normal_checks_action_scale():
    loc, scale = torch.zeros(3), torch.ones(3)
    _one_line_value_error(lambda: TanhSquashed(loc, scale, action_scale=0.0),
                          "action_scale must be > 0")
    _one_line_value_error(
        lambda: TanhSquashed(loc, scale, action_scale=torch.tensor([1.0, -1.0, 1.0])),
        "action_scale must be > 0"
    )
    _one_line_value_error(
        lambda: TanhSquashed(loc, scale, action_bias=torch.zeros(2)),
        "shape mismatch", "(3,)", "(2,)"
    )


def test_diag_normal_needs_an_event_dimension():
    _one_line_value_error(lambda: DiagNormal(torch.tensor(0.0), torch.tensor(1.0)),
                          "event dimension")


def test_tanh_squashed_needs_an_event_dimension():
    _one_line_value_error(lambda: TanhSquashed(torch.tensor(0.0), torch.tensor(1.0)),
                          "TanhSquashed needs an event dimension: "
                          "loc and scale must have at least 1 dim")


@pytest.mark.parametrize("cls", [DiagNormal, TanhSquashed], ids=lambda c: c.__name__)
def test_validate_args_false_skips_value_checks_but_not_shape_checks(cls):
    cls(torch.zeros(3), -torch.ones(3), validate_args=False)  # no host sync, no check
    _one_line_value_error(
        lambda: DiagNormal(torch.zeros(3), torch.ones(2), validate_args=False), "(3,)", "(2,)"
    )


@pytest.mark.parametrize("temperature", [0.0, -1.0, torch.tensor(0.0), torch.tensor([0.5, -0.5])])
def test_nonpositive_temperature_is_rejected(temperature):
    logits = torch.zeros(2, 4)
    _one_line_value_error(lambda: GumbelSoftmax(logits, temperature), "temperature must be > 0")


def test_gumbel_softmax_needs_two_categories():
    _one_line_value_error(lambda: GumbelSoftmax(torch.zeros(3, 1), 1.0), "K >= 2", "(3, 1)")


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: ConstantTemperature(0.0), "value must be > 0"),
        (lambda: ExponentialTemperature(0.0, 0.1, 0.1), "start must be > 0"),
        (lambda: ExponentialTemperature(1.0, -0.1, 0.1), "decay_rate must be >= 0"),
        (lambda: ExponentialTemperature(1.0, 0.1, 0.0), "floor must be in (0, start=1.0]"),
        (lambda: ExponentialTemperature(1.0, 0.1, 2.0), "floor must be in (0, start=1.0]"),
        (lambda: ConstantTemperature(1.0)(-1), "step must be >= 0"),
    ],
)
def test_schedule_arguments_are_checked(build, fragment):
    _one_line_value_error(build, fragment)


# --- inverse-CDF samplers -------------------------------------------------------------------

# name -> (ours, torch.distributions' own class, the density as a python function for scipy
# quadrature, its support); parameters chosen so every moment used below is finite.
INVERSE_CDF = {
    "Exponential": (
        lambda: Exponential(torch.tensor(1.7, dtype=F64)),
        lambda: torch.distributions.Exponential(torch.tensor(1.7, dtype=F64)),
        lambda x: scipy.stats.expon.pdf(x, scale=1 / 1.7),
        (0.0, math.inf),
    ),
    "Weibull": (
        lambda: Weibull(torch.tensor(1.3, dtype=F64), torch.tensor(1.6, dtype=F64)),
        lambda: torch.distributions.Weibull(
            torch.tensor(1.3, dtype=F64), torch.tensor(1.6, dtype=F64)
        ),
        lambda x: scipy.stats.weibull_min.pdf(x, 1.6, scale=1.3),
        (0.0, math.inf),
    ),
    "Kumaraswamy": (  # no scipy class: the density is written out, p = a b x^(a-1) (1 - x^a)^(b-1)
        lambda: Kumaraswamy(torch.tensor(2.0, dtype=F64), torch.tensor(3.5, dtype=F64)),
        lambda: torch.distributions.Kumaraswamy(
            torch.tensor(2.0, dtype=F64), torch.tensor(3.5, dtype=F64)
        ),
        lambda x: 2.0 * 3.5 * x ** (2.0 - 1) * (1 - x**2.0) ** (3.5 - 1),
        (0.0, 1.0),
    ),
}


def _interior_points(support: tuple[float, float]) -> torch.Tensor:
    upper = 6.0 if math.isinf(support[1]) else support[1]
    return torch.linspace(support[0], upper, 41, dtype=F64)[1:-1]  # (39,)


@pytest.mark.parametrize("name", list(INVERSE_CDF))
def test_inverse_cdf_density_cdf_and_moments_match_independent_constructions(name):
    make, make_torch, pdf, support = INVERSE_CDF[name]
    dist, reference = make(), make_torch()
    x = _interior_points(support)
    torch.testing.assert_close(dist.log_prob(x), reference.log_prob(x))
    torch.testing.assert_close(dist.log_prob(x).exp(), torch.from_numpy(pdf(x.numpy())))
    torch.testing.assert_close(dist.cdf(x), reference.cdf(x))
    torch.testing.assert_close(dist.icdf(dist.cdf(x)), x)
    # Moments by scipy quadrature of the density: normalised, then E x and Var x.
    moment = [scipy.integrate.quad(lambda t, n=n: t**n * pdf(t), *support)[0] for n in range(3)]
    assert moment[0] == pytest.approx(1.0, rel=1e-9)
    assert float(dist.mean) == pytest.approx(moment[1], rel=1e-9)
    assert float(dist.variance) == pytest.approx(moment[2] - moment[1] ** 2, rel=1e-9)
    torch.testing.assert_close(dist.mean, reference.mean)
    torch.testing.assert_close(dist.variance, reference.variance)


@pytest.mark.parametrize("name", list(INVERSE_CDF))
def test_inverse_cdf_samples_follow_the_distribution(name):
    """Sample mean and variance within 4 SE of the closed forms (SE of a sample variance from
    the sample 4th central moment), and Kolmogorov-Smirnov at level 1e-3 against the CDF."""
    make, _, _, _ = INVERSE_CDF[name]
    dist = make()
    n = 40_000
    x = dist.rsample((n,))
    mean, s2 = x.mean(), x.var()
    m4 = ((x - mean) ** 4).mean()
    assert abs(mean - dist.mean) <= K_SE * (s2 / n).sqrt()
    assert abs(s2 - dist.variance) <= K_SE * ((m4 - s2**2) / n).sqrt()

    def exact_cdf(t):
        return dist.cdf(torch.from_numpy(t)).numpy()

    assert scipy.stats.kstest(x.numpy(), exact_cdf).pvalue > 1e-3


# name -> (constructor from a list of parameter tensors, parameter values)
INVERSE_CDF_PARAMS = {
    "Exponential": (lambda p: Exponential(p[0]), [1.7]),
    "Weibull": (lambda p: Weibull(p[0], p[1]), [1.3, 1.6]),
    "Kumaraswamy": (lambda p: Kumaraswamy(p[0], p[1]), [2.0, 3.5]),
    "Logistic": (lambda p: Logistic(p[0], p[1]), [0.4, 1.7]),
}


@pytest.mark.parametrize("name", list(INVERSE_CDF_PARAMS))
def test_inverse_cdf_rsample_gradient_equals_finite_differences(name):
    """d x / d theta by autograd through rsample, against central differences of rsample on the
    same uniform draws (the same seed) with step h = 1e-6 in float64 (error O(h^2) + rounding
    1e-16 / h ~ 1e-10, so rtol 1e-6 is generous and still catches any factor error)."""
    make, values = INVERSE_CDF_PARAMS[name]
    params = [torch.tensor(v, dtype=F64, requires_grad=True) for v in values]
    torch.manual_seed(11)
    x = make(params).rsample((64,))
    h = 1e-6
    for i, p in enumerate(params):
        # per sample: a summed gradient could hide errors of opposite sign
        per_sample = torch.stack(
            [torch.autograd.grad(x[k], p, retain_graph=True)[0] for k in range(64)]
        )
        shifted = []
        for sign in (1.0, -1.0):
            moved = [q.detach() + (sign * h if j == i else 0.0) for j, q in enumerate(params)]
            torch.manual_seed(11)
            shifted.append(make(moved).rsample((64,)))
        central = (shifted[0] - shifted[1]) / (2 * h)
        torch.testing.assert_close(per_sample, central, rtol=1e-6, atol=1e-9)
        assert per_sample.abs().max() > 1e-3  # a real dependence, not a trivially zero one


@pytest.mark.parametrize("name", ["Exponential", "Weibull"])
def test_inverse_cdf_gradient_is_the_implicit_derivative_from_scipy(name):
    """dx/dtheta = -(dF/dtheta)(x) / p(x) with F and p from scipy (an independent construction):
    F(x; theta) = u held fixed, differentiated by central differences in theta."""
    make, values = INVERSE_CDF_PARAMS[name]
    cdf = {
        "Exponential": lambda t, v: scipy.stats.expon.cdf(t, scale=1 / v[0]),
        "Weibull": lambda t, v: scipy.stats.weibull_min.cdf(t, v[1], scale=v[0]),
    }[name]
    pdf = {
        "Exponential": lambda t, v: scipy.stats.expon.pdf(t, scale=1 / v[0]),
        "Weibull": lambda t, v: scipy.stats.weibull_min.pdf(t, v[1], scale=v[0]),
    }[name]
    params = [torch.tensor(v, dtype=F64, requires_grad=True) for v in values]
    x = make(params).rsample((16,))
    xs = x.detach().numpy()
    h = 1e-6
    for i, p in enumerate(params):
        autograd = torch.stack(
            [torch.autograd.grad(x[k], p, retain_graph=True)[0] for k in range(16)]
        )
        up = [v + (h if j == i else 0.0) for j, v in enumerate(values)]
        down = [v - (h if j == i else 0.0) for j, v in enumerate(values)]
        d_cdf = (cdf(xs, up) - cdf(xs, down)) / (2 * h)
        implicit = torch.from_numpy(-d_cdf / pdf(xs, values))
        torch.testing.assert_close(autograd, implicit, rtol=1e-5, atol=1e-8)


def test_inverse_cdf_samples_stay_finite_at_the_ends_of_the_uniform_draw():
    for dtype in (torch.float32, F64):
        finfo = torch.finfo(dtype)
        u = torch.tensor([finfo.eps, 1.0 - finfo.eps], dtype=dtype)  # where rsample clamps u to
        for dist in (
            Exponential(torch.tensor(2.0, dtype=dtype)),
            Weibull(torch.tensor(1.0, dtype=dtype), 0.5),
            Kumaraswamy(torch.tensor(0.5, dtype=dtype), 2.0),
            Logistic(torch.tensor(0.0, dtype=dtype), 1.0),
        ):
            x = dist.icdf(u)
            assert torch.isfinite(x).all() and torch.isfinite(dist.log_prob(x)).all(), (dist, x)


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Exponential(torch.tensor([1.0, 0.0])), "rate must be > 0, got min 0"),
        (lambda: Weibull(torch.tensor(-1.0), 1.0), "scale must be > 0, got -1"),
        (lambda: Weibull(1.0, torch.tensor([1.0, -2.0])), "concentration must be > 0"),
        (lambda: Kumaraswamy(torch.tensor(0.0), 1.0), "concentration1 must be > 0"),
        (lambda: Kumaraswamy(torch.ones(3), torch.ones(2)), "shape mismatch"),
    ],
)
def test_inverse_cdf_bad_parameters_raise_one_line_value_errors(build, fragment):
    _one_line_value_error(build, fragment)
