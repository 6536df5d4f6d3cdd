"""The Bayesian layer: the three pre-activation samplers against the closed-form moments of
a = x W^T + b under q, the closed-form KL, and equal expected gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from bnn.config import ModelConfig
from bnn.layers import ESTIMATORS, BayesLinear
from bnn.model import Regression

NUM_DRAWS = 4000


def random_layer(seed: int = 0) -> tuple[BayesLinear, torch.Tensor]:
    """A 4 -> 3 layer in float64 with uneven means and scales, and 2 inputs (2, 4)."""
    torch.manual_seed(seed)
    layer = BayesLinear(4, 3, prior_std=1.0, init_std=0.1).double()
    with torch.no_grad():
        layer.weight_mu.normal_()
        layer.weight_rho.normal_(-1.0, 0.7)
        layer.bias_mu.normal_()
        layer.bias_rho.normal_(-1.0, 0.7)
    return layer, torch.randn(2, 4, dtype=torch.float64)


def within(estimate: torch.Tensor, expected: torch.Tensor, standard_error: torch.Tensor) -> None:
    """Every entry within 5 standard errors (the tolerance of a 5-sigma two-sided test)."""
    assert bool(((estimate - expected).abs() <= 5 * standard_error).all()), (estimate, expected,
                                                                             standard_error)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_sampler_has_the_closed_form_pre_activation_mean_and_variance(estimator: str) -> None:
    layer, x = random_layer()
    with torch.no_grad():
        draws = torch.stack([layer(x, estimator) for _ in range(NUM_DRAWS)])  # (N, 2, 3)
    # Closed form, written out here independently of BayesLinear.moments:
    mean = x @ layer.weight_mu.T + layer.bias_mu  # (2, 3)
    var = x.square() @ F.softplus(layer.weight_rho).square().T + F.softplus(layer.bias_rho).square()
    centred = draws - draws.mean(0)
    within(draws.mean(0), mean, draws.std(0) / math.sqrt(NUM_DRAWS))
    within(centred.square().mean(0), var, centred.square().std(0) / math.sqrt(NUM_DRAWS))
    local_mean, local_var = layer.moments(x)
    torch.testing.assert_close(local_mean, mean)
    torch.testing.assert_close(local_var, var)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_only_the_global_sampler_correlates_two_examples(estimator: str) -> None:
    layer, x = random_layer(1)
    with torch.no_grad():
        draws = torch.stack([layer(x, estimator) for _ in range(NUM_DRAWS)])  # (N, 2, 3)
    centred = draws - draws.mean(0)
    products = centred[:, 0] * centred[:, 1]  # (N, 3): example 0 times example 1, per unit
    # One W shared: Cov(a_0j, a_1j) = sum_i x_0i x_1i sigma_ji^2 + sigma_bj^2; otherwise 0.
    shared = ((x[0] * x[1]) @ F.softplus(layer.weight_rho).square().T
              + F.softplus(layer.bias_rho).square())
    expected = shared if estimator == "global" else torch.zeros(3, dtype=torch.float64)
    within(products.mean(0), expected, products.std(0) / math.sqrt(NUM_DRAWS))


def test_kl_equals_the_gaussian_closed_form() -> None:
    layer, _ = random_layer(2)
    prior_std = layer.prior_std
    terms = []
    for mu, rho in ((layer.weight_mu, layer.weight_rho), (layer.bias_mu, layer.bias_rho)):
        sigma = F.softplus(rho)
        # KL(N(mu, s^2) || N(0, p^2)) = log(p / s) + (s^2 + mu^2) / (2 p^2) - 1/2
        terms.append((math.log(prior_std) - sigma.log()
                      + (sigma.square() + mu.square()) / (2 * prior_std**2) - 0.5).sum())
    torch.testing.assert_close(layer.kl(), sum(terms))


def test_softplus_scale_starts_at_init_std() -> None:
    layer = BayesLinear(3, 2, prior_std=1.0, init_std=0.05)
    torch.testing.assert_close(layer.weight_std(), torch.full((2, 3), 0.05))
    torch.testing.assert_close(layer.bias_std(), torch.full((2,), 0.05))


def test_the_three_estimators_have_the_same_expected_elbo_gradient() -> None:
    torch.manual_seed(3)
    model = Regression(2, ModelConfig(hidden_sizes=[3], init_std=0.3)).double()
    x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    params = model.variational_parameters()
    draws = 500
    means, errors = {}, {}
    for name in ESTIMATORS:
        # (draws, P)
        grads = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            model.objective(x, y, name, num_train=100)[0], params)]) for _ in range(draws)])
        means[name], errors[name] = grads.mean(0), grads.std(0) / math.sqrt(draws)
    for name in ("local", "flipout"):
        # The difference of two independent means has standard error sqrt(se_1^2 + se_2^2).
        within(means[name], means["global"],
               (errors[name].square() + errors["global"].square()).sqrt())


def test_an_unknown_estimator_is_a_one_line_error() -> None:
    layer, x = random_layer()
    with pytest.raises(ValueError, match="estimator must be one of global, local, flipout"):
        layer(x, "exact")  # type: ignore[arg-type]
