"""Surrogates: their gradients equal the estimator formulas, every baseline keeps the
score-function estimator unbiased, and bad shapes are rejected with both shapes named.

Objective for the statistical checks: E_{z ~ N(mu, sigma^2)}[z^2] with true gradient
(2 mu, 2 sigma). Tolerance: 4 standard errors of the sample mean over M independent estimates.
"""

from __future__ import annotations

import math

import pytest
import torch

from estimators.distributions import DiagNormal
from estimators.gradients import (
    ConstantBaseline,
    EMABaseline,
    baseline_regression_loss,
    leave_one_out_baseline,
    pathwise_surrogate,
    score_function_surrogate,
)

F64 = torch.float64
K_SE = 4.0


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_pathwise_gradient_is_the_mean_of_per_sample_derivatives():
    mu = torch.tensor([0.4], dtype=F64, requires_grad=True)
    sigma = torch.tensor([1.3], dtype=F64, requires_grad=True)
    eps = torch.randn(50, 1, dtype=F64)
    z = mu + sigma * eps  # the reparameterized draw, written out
    grad_mu, grad_sigma = torch.autograd.grad(pathwise_surrogate(z.pow(2).squeeze(-1)), [mu, sigma])
    torch.testing.assert_close(grad_mu, (2 * z).mean(0).detach())  # f'(z) dz/dmu
    torch.testing.assert_close(grad_sigma, (2 * z * eps).mean(0).detach())  # f'(z) dz/dsigma


def test_score_function_gradient_uses_the_score_not_the_sample():
    mu = torch.tensor([0.4], dtype=F64, requires_grad=True)
    sigma = torch.tensor([1.3], dtype=F64, requires_grad=True)
    q = DiagNormal(mu, sigma)
    z = q.sample((50,))  # (50, 1), detached
    f = z.pow(2).squeeze(-1)
    baseline = 0.8
    grad_mu, grad_sigma = torch.autograd.grad(
        score_function_surrogate(f, q.log_prob(z), baseline), [mu, sigma]
    )
    eps = ((z - mu) / sigma).detach().squeeze(-1)
    s = sigma.detach()
    torch.testing.assert_close(grad_mu, ((f - baseline) * eps / s).mean().reshape(1))
    torch.testing.assert_close(grad_sigma, ((f - baseline) * (eps**2 - 1) / s).mean().reshape(1))


def test_score_function_keeps_the_direct_dependence_of_f():
    """f = -log q(z) (an entropy term): its gradient is E[-log q * score] + E[-grad log q]."""
    mu = torch.tensor([0.2], dtype=F64, requires_grad=True)
    sigma = torch.tensor([0.9], dtype=F64, requires_grad=True)
    q = DiagNormal(mu, sigma)
    z = q.sample((20,))
    log_prob = q.log_prob(z)
    grads = torch.autograd.grad(
        score_function_surrogate(-log_prob, log_prob), [mu, sigma], retain_graph=True
    )
    for i, grad in enumerate(grads):
        per_sample = [  # -log q(z_k) * score_k  +  d(-log q(z_k))/dtheta
            -lp.detach() * score[i] - score[i]
            for lp in log_prob
            for score in [torch.autograd.grad(lp, [mu, sigma], retain_graph=True)]
        ]
        torch.testing.assert_close(grad, torch.stack(per_sample).mean(0))


def test_learned_baseline_receives_no_gradient_from_the_surrogate():
    mu = torch.zeros(1, dtype=F64, requires_grad=True)
    q = DiagNormal(mu, torch.ones(1, dtype=F64))
    z = q.sample((8,))
    baseline = torch.full((8,), 0.5, dtype=F64, requires_grad=True)
    surrogate = score_function_surrogate(z.squeeze(-1) ** 2, q.log_prob(z), baseline)
    grad_mu, grad_baseline = torch.autograd.grad(surrogate, [mu, baseline], allow_unused=True)
    assert grad_baseline is None and grad_mu.abs().sum() > 0


def _gradient_estimates(estimator, mu: float, sigma: float, num_estimates: int,
                        k: int) -> torch.Tensor:
    """M independent K-sample estimates of (d/dmu, d/dsigma) E[z^2]; returns (M, 2).

    One copy of (mu, sigma) per estimate, so one backward pass gives all M estimates.
    """
    mu_m = torch.full((num_estimates, 1, 1), mu, dtype=F64, requires_grad=True)
    sigma_m = torch.full((num_estimates, 1, 1), sigma, dtype=F64, requires_grad=True)
    surrogate = estimator(DiagNormal(mu_m.expand(-1, k, -1), sigma_m.expand(-1, k, -1)))
    grads = torch.autograd.grad(surrogate, [mu_m, sigma_m])
    return torch.cat([g.reshape(num_estimates, 1) for g in grads], dim=1) * num_estimates  # (M, 2)


def _score_function(baseline_of):
    def estimator(q):
        z = q.sample()  # (M, K, 1)
        f = z.pow(2).squeeze(-1)  # (M, K, 1) -> (M, K)
        return score_function_surrogate(f, q.log_prob(z), baseline_of(f))

    return estimator


MU, SIGMA = 0.8, 0.5
TRUE_GRADIENT = torch.tensor([2 * MU, 2 * SIGMA], dtype=F64)


def _warm_ema() -> EMABaseline:
    ema = EMABaseline(decay=0.9)
    for _ in range(20):  # earlier batches only: independent of the batch it is used on
        ema.update((MU + SIGMA * torch.randn(16, dtype=F64)) ** 2)
    return ema


def _fitted_learned_baseline() -> torch.Tensor:
    value = torch.zeros((), dtype=F64, requires_grad=True)
    optimizer = torch.optim.SGD([value], lr=0.1)
    for _ in range(100):
        optimizer.zero_grad()
        f = (MU + SIGMA * torch.randn(32, dtype=F64)) ** 2
        baseline_regression_loss(value.expand(32), f).backward()
        optimizer.step()
    return value


BASELINES = {
    "none": lambda f: None,
    "constant": lambda f: ConstantBaseline(1.0).value,
    "ema": lambda f: _warm_ema().value,
    "learned": lambda f: _fitted_learned_baseline().expand(f.shape),
    "leave_one_out": lambda f: leave_one_out_baseline(f, dim=1),
}


@pytest.mark.parametrize("name", ["pathwise", *BASELINES])
def test_every_estimator_is_unbiased(name):
    if name == "pathwise":

        def estimator(q):
            return pathwise_surrogate(q.rsample().pow(2).squeeze(-1))

    else:
        estimator = _score_function(BASELINES[name])
    g = _gradient_estimates(estimator, MU, SIGMA, num_estimates=20_000, k=4)
    se = g.std(0) / math.sqrt(g.shape[0])
    assert ((g.mean(0) - TRUE_GRADIENT).abs() <= K_SE * se).all(), (g.mean(0), se)


def test_leave_one_out_reduces_variance_against_no_baseline():
    """Var of the d/dmu estimate with K = 8: leave-one-out below none by more than 4 SE of the
    difference (SE of each sample variance from its sample 4th central moment)."""
    variances, ses = [], []
    for baseline_of in (BASELINES["none"], BASELINES["leave_one_out"]):
        g = _gradient_estimates(_score_function(baseline_of), MU, SIGMA, num_estimates=20_000,
                                k=8)[:, 0]
        n, s2 = g.shape[0], g.var()
        m4 = ((g - g.mean()) ** 4).mean()
        variances.append(float(s2))
        ses.append(float(((m4 - s2**2 * (n - 3) / (n - 1)) / n).sqrt()))
    assert variances[0] - variances[1] > K_SE * math.hypot(*ses), (variances, ses)


def test_leave_one_out_baseline_is_the_mean_of_the_others():
    f = torch.tensor([[1.0, 2.0, 3.0, 6.0]], requires_grad=True)
    b = leave_one_out_baseline(f, dim=1)
    torch.testing.assert_close(b, torch.tensor([[11 / 3, 10 / 3, 9 / 3, 6 / 3]]))
    assert not b.requires_grad


def test_ema_baseline_update_and_resume():
    ema = EMABaseline(decay=0.75)
    ema.update(torch.tensor([2.0, 4.0]))
    assert float(ema.value) == 3.0  # the first update starts at the batch mean
    ema.update(torch.tensor([7.0]))
    assert float(ema.value) == pytest.approx(0.75 * 3.0 + 0.25 * 7.0)
    fresh = EMABaseline(decay=0.75)
    fresh.load_state_dict(ema.state_dict())
    for baseline in (ema, fresh):
        baseline.update(torch.tensor([1.0]))
    assert torch.equal(fresh.value, ema.value) and fresh.num_updates == ema.num_updates == 3


def test_ema_baseline_starts_as_a_zero_tensor_and_decay_zero_follows_the_last_batch():
    ema = EMABaseline(decay=0.0)  # decay 0 is allowed: b = the latest batch mean
    assert isinstance(ema.value, torch.Tensor) and ema.value.shape == () and float(ema.value) == 0.0
    for batch in ([2.0, 4.0], [7.0]):
        ema.update(torch.tensor(batch))
    assert float(ema.value) == 7.0


def test_baseline_regression_loss_is_minimised_at_the_mean():
    f = torch.tensor([1.0, 2.0, 6.0])
    at_mean = torch.full((3,), 3.0, requires_grad=True)
    (grad,) = torch.autograd.grad(baseline_regression_loss(at_mean.mean().expand(3), f), at_mean)
    assert grad.abs().max() == 0.0
    assert float(baseline_regression_loss(torch.zeros(3), f)) == pytest.approx((1 + 4 + 36) / 3)


def _one_line_value_error(build, *fragments):
    with pytest.raises(ValueError) as err:
        build()
    assert "\n" not in str(err.value)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_shape_mismatches_name_both_shapes():
    f, log_prob = torch.zeros(4), torch.zeros(4, 1)
    _one_line_value_error(lambda: score_function_surrogate(f, log_prob), "f (4,)",
                          "log_prob (4, 1)")
    _one_line_value_error(
        lambda: score_function_surrogate(f, torch.zeros(4), torch.zeros(4, 1)),
        "baseline (4, 1)", "f (4,)"
    )
    _one_line_value_error(lambda: baseline_regression_loss(torch.zeros(4, 1), f), "(4, 1)", "(4,)")
    # a (B,) baseline against (B, 1) values would broadcast to (B, B)
    with pytest.raises(ValueError) as err:
        score_function_surrogate(torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4))
    assert str(err.value) == "shape mismatch: baseline (4,) vs f (4, 1) (they must be equal)"


def test_bad_baseline_arguments():
    _one_line_value_error(lambda: EMABaseline(decay=1.0), "decay must be in [0, 1)")
    _one_line_value_error(lambda: leave_one_out_baseline(torch.zeros(1, 3)), "K >= 2", "(1, 3)")
    with pytest.raises(ValueError) as zero_dim:
        leave_one_out_baseline(torch.tensor(1.0))
    assert (str(zero_dim.value)
            == "leave-one-out needs K >= 2 samples along a dimension, got a 0-dim f")
