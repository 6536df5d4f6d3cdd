"""The VAE's math against independent constructions from torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, ContinuousBernoulli, Normal, kl_divergence, normal

from estimators.flows import CouplingFlow, PlanarFlow
from vae.config import ModelConfig
from vae.model import LOG_SIGMA_MAX, LOG_SIGMA_MIN, VAE, CategoricalLatent, FlowLatent
from vae.objectives import elbo_objective, evaluation_bounds

DATA_DIM = 6


def tiny_vae(seed: int = 0, **overrides: object) -> tuple[VAE, torch.Tensor]:
    """An untrained 6-pixel VAE (its q is far from the posterior) and 3 images in [0, 1]."""
    torch.manual_seed(seed)
    config = ModelConfig(latent_dim=2, categories=3, hidden_sizes=[8], **overrides)  # type: ignore[arg-type]
    return VAE(DATA_DIM, config), torch.rand(3, DATA_DIM)


def test_gaussian_kl_equals_torch_kl_divergence() -> None:
    model, x = tiny_vae()
    params = model.encoder(x)
    q = model.latent.posterior(params)  # type: ignore[union-attr]
    expected = kl_divergence(Normal(q.loc, q.scale), Normal(0.0, 1.0)).sum(-1)  # (B, L) -> (B,)
    torch.testing.assert_close(model.latent.kl(params), expected)


def test_categorical_kl_equals_torch_kl_divergence_to_uniform() -> None:
    model, x = tiny_vae(latent="categorical")
    params = model.encoder(x)
    logits = params.unflatten(-1, (2, 3))  # (B, L*C) -> (B, L, C)
    expected = kl_divergence(Categorical(logits=logits), Categorical(logits=torch.zeros(3))).sum(-1)
    torch.testing.assert_close(model.latent.kl(params), expected)


def test_posterior_scale_is_smoothly_bounded() -> None:
    model, _ = tiny_vae()
    extreme = torch.tensor([[0.0, 0.0, -1e3, 1e3]])  # raw log-sigma far outside the bounds
    scale = model.latent.posterior(extreme).scale  # type: ignore[union-attr]
    torch.testing.assert_close(scale.log(), torch.tensor([[LOG_SIGMA_MIN, LOG_SIGMA_MAX]]))


def hand_log_weights(
    model: VAE, x: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x|z), and log p(x|z) + log p(z) - log q(z|x), at z = mu + sigma * eps: (K, B) each."""
    q = model.latent.posterior(model.encoder(x))  # type: ignore[union-attr]
    mu, sigma = q.loc, q.scale
    z = mu + sigma * eps  # (K, B, L)
    # (K, B, D) -> (K, B)
    log_lik = ContinuousBernoulli(logits=model.decoder(z)).log_prob(x).sum(-1)
    log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)  # (K, B, L) -> (K, B)
    log_q = Normal(mu, sigma).log_prob(z).sum(-1)  # (K, B, L) -> (K, B)
    return log_lik, log_lik + log_prior - log_q


def test_elbo_equals_independent_monte_carlo_on_the_same_noise() -> None:
    model, x = tiny_vae()
    num_samples = 20_000
    # DiagNormal.rsample draws its noise with the same global-RNG call as torch.randn, so
    # reseeding reproduces eps exactly.
    torch.manual_seed(1)
    _, info = elbo_objective(model, x, "pathwise", num_samples, temperature=1.0, baseline=None)
    torch.manual_seed(1)
    eps = torch.randn(num_samples, 3, 2)
    with torch.no_grad():
        log_lik, mc_elbo = hand_log_weights(model, x, eps)
    # Same noise: the reconstruction term agrees sample by sample.
    torch.testing.assert_close(info["log_lik"], log_lik)
    # The analytic KL replaces the Monte-Carlo log q - log p; they agree in expectation. The
    # difference of the two batch-mean estimates has standard error from its K samples.
    # (K, B) -> (K,)
    difference = (mc_elbo.mean(1)
                  - (info["log_lik"] - model.latent.kl(model.encoder(x)).detach()).mean(1))
    standard_error = difference.std() / math.sqrt(num_samples)
    assert abs(mc_elbo.mean() - info["elbo"]) <= 4 * standard_error
    assert standard_error > 0  # the Monte-Carlo KL is not degenerate


def test_single_sample_iwae_is_the_monte_carlo_log_weight_of_the_same_noise() -> None:
    model, x = tiny_vae()
    torch.manual_seed(2)
    bounds = evaluation_bounds(model, x, num_samples=1)
    torch.manual_seed(2)
    with torch.no_grad():
        log_lik, log_weight = hand_log_weights(model, x, torch.randn(1, 3, 2))
    torch.testing.assert_close(bounds["iwae"], log_weight[0])
    torch.testing.assert_close(bounds["recon_nll"], -log_lik[0])
    torch.testing.assert_close(bounds["elbo"], log_lik[0] - bounds["kl"])


def test_iwae_of_k_samples_is_the_log_mean_of_their_weights_for_the_same_noise() -> None:
    """IWAE_K = log (1/K) sum_k w_k (Burda et al. 2016, eq. 8), replayed by hand for K = 4, the
    mean taken after shifting by the largest log weight."""
    model, x = tiny_vae()
    torch.manual_seed(2)
    bounds = evaluation_bounds(model, x, num_samples=4)
    torch.manual_seed(2)
    with torch.no_grad():
        _, log_weight = hand_log_weights(model, x, torch.randn(4, 3, 2))  # (K, B)
    top = log_weight.max(0).values  # (B,)
    torch.testing.assert_close(bounds["iwae"], top + (log_weight - top).exp().mean(0).log())


def test_iwae_is_at_least_the_elbo_and_rises_with_k() -> None:
    model, x = tiny_vae()
    repeats = 1000
    copies = x.repeat(repeats, 1)  # (B, D) -> (R*B, D): R independent evaluations in one call
    torch.manual_seed(3)

    def batch_means(key: str, k: int) -> torch.Tensor:
        # (R*B,) -> (R,)
        return evaluation_bounds(model, copies, k)[key].view(repeats, len(x)).mean(1)

    runs = {k: batch_means("iwae", k) for k in (1, 8, 64)}
    elbo = batch_means("elbo", 64)

    def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
        return float(values.mean()), float(values.std() / math.sqrt(len(values)))

    # E[IWAE_1] = ELBO: equal within 4 standard errors of the difference.
    gap, se = mean_and_se(runs[1] - elbo)
    assert abs(gap) <= 4 * se
    # E[IWAE_8] > E[IWAE_1] and E[IWAE_64] > E[IWAE_8] (Burda et al. 2016, theorem 1): each
    # increase is more than 4 standard errors above 0.
    for smaller, larger in ((1, 8), (8, 64)):
        rise, se = mean_and_se(runs[larger] - runs[smaller])
        assert rise > 4 * se, (smaller, larger, rise, se)


def test_categorical_samples_lie_on_the_simplex() -> None:
    model, x = tiny_vae(latent="categorical", temperature_start=0.7, temperature_floor=0.7)
    params = model.encoder(x)
    latent = model.latent
    assert isinstance(latent, CategoricalLatent)
    # (K, B, L, C)
    relaxed = latent.relaxed_sample(params, 50, temperature=0.7).unflatten(-1, (2, 3))
    assert (relaxed >= 0).all() and (relaxed < 1).all()  # interior points: soft, not one-hot
    torch.testing.assert_close(relaxed.sum(-1), torch.ones(50, 3, 2))
    exact = latent.exact_sample(params, 50).unflatten(-1, (2, 3))
    assert ((exact == 0) | (exact == 1)).all() and (exact.sum(-1) == 1).all()
    assert not exact.requires_grad
    assert torch.equal(latent.prior_sample(7, x).unflatten(-1, (2, 3)).sum(-1), torch.ones(7, 2))


def test_straight_through_codes_are_one_hot_with_a_relaxed_gradient() -> None:
    model, x = tiny_vae(latent="categorical", straight_through=True)
    params = model.encoder(x)
    codes = model.latent.relaxed_sample(params, 4, temperature=1.0).unflatten(-1, (2, 3))
    assert ((codes == 0) | (codes == 1)).all() and (codes.sum(-1) == 1).all()
    (gradient,) = torch.autograd.grad(model.log_likelihood(x, codes.flatten(-2)).sum(), params)
    assert gradient.abs().sum() > 0


@pytest.mark.parametrize("likelihood", ["continuous_bernoulli", "bernoulli"])
def test_likelihood_mean_is_in_the_unit_interval_and_the_continuous_bernoulli_is_normalized(
    likelihood: str
) -> None:
    model, _ = tiny_vae(likelihood=likelihood)
    mean = model.likelihood(torch.randn(5, 2)).mean
    assert mean.shape == (5, DATA_DIM) and ((mean > 0) & (mean < 1)).all()
    if likelihood == "continuous_bernoulli":
        # A density on [0, 1]: integrates to 1 over a pixel (trapezoid rule on a fine grid).
        grid = torch.linspace(0, 1, 20_001)
        density = model.likelihood(torch.zeros(1, 2)).log_prob(grid[:, None]).exp()  # (G, D)
        torch.testing.assert_close(torch.trapezoid(density, grid, dim=0), torch.ones(DATA_DIM),
                                   rtol=0, atol=1e-4)


def test_model_config_rejects_bad_values_in_one_line() -> None:
    for kwargs, message in [
        ({"latent_dim": 0}, "latent_dim must be a positive integer, got 0"),
        ({"categories": 1}, "categories must be an integer >= 2, got 1"),
        ({"hidden_sizes": []}, "hidden_sizes must be a non-empty list"),
        ({"temperature_floor": 2.0},
         r"temperature_floor must be in \(0, temperature_start=1.0\], got 2.0"),
        ({"likelihood": "gaussian"}, "likelihood must be continuous_bernoulli or bernoulli"),
        ({"iwae_samples": 0}, "iwae_samples must be a positive integer, got 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            ModelConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("flow", ["planar", "coupling"])
def test_flow_posterior_iwae_weighs_each_draw_by_its_exact_log_q(flow: str) -> None:
    model, x = tiny_vae(posterior="flow", flow=flow, flow_steps=3, flow_context=5)
    with torch.no_grad():  # a coupling flow starts as the identity: move it off
        for p in model.latent.parameters():
            p.normal_(0.0, 0.3)
    torch.manual_seed(4)
    bounds = evaluation_bounds(model, x, num_samples=1)
    torch.manual_seed(4)
    with torch.no_grad():
        q = model.latent.posterior(model.encoder(x))  # type: ignore[union-attr]
        z = q.sample((1,))  # the same base noise; torch's sampler applies the same steps
        # torch's TransformedDistribution.log_prob inverts the flow: an independent log q
        log_q = q.log_prob(z)  # (1, B)
        # (1, B, D) -> (1, B)
        log_lik = ContinuousBernoulli(logits=model.decoder(z)).log_prob(x).sum(-1)
        log_prior = Normal(0.0, 1.0).log_prob(z).sum(-1)  # (1, B, L) -> (1, B)
    torch.testing.assert_close(bounds["iwae"], (log_lik + log_prior - log_q)[0])
    torch.testing.assert_close(bounds["kl"], (log_q - log_prior)[0])
    torch.testing.assert_close(bounds["elbo"], bounds["iwae"])  # K = 1: the bounds coincide


def test_flow_posterior_pathwise_gradient_reaches_the_flow_and_score_function_is_refused() -> None:
    model, x = tiny_vae(posterior="flow", flow="planar", flow_steps=2)
    objective, info = elbo_objective(model, x, "pathwise", 4, temperature=1.0, baseline=None)
    assert info["kl"].shape == () and info["log_lik"].shape == (4, 3)
    objective.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0)
               for p in model.latent.parameters())
    with pytest.raises(ValueError, match=r"^a flow posterior is trained with the pathwise "
                                         r"estimator, got 'score_function'$"):
        elbo_objective(model, x, "score_function", 4, temperature=1.0, baseline=None)
    with pytest.raises(ValueError, match="posterior: flow needs latent: gaussian"):
        ModelConfig(latent="categorical", posterior="flow")


@pytest.mark.parametrize(("flow", "kind"), [("planar", PlanarFlow), ("coupling", CouplingFlow)])
def test_the_configured_flow_is_built_and_its_parameters_belong_to_the_posterior(
        flow: str, kind: type) -> None:
    model, _ = tiny_vae(posterior="flow", flow=flow, flow_steps=2, flow_context=3)
    assert isinstance(model.latent, FlowLatent) and isinstance(model.latent.flow, kind)
    assert model.latent.num_params == 2 * 2 + 3  # base mu, log sigma and the context
    expected = [*model.encoder.parameters(), *model.latent.flow.parameters()]
    assert [id(p) for p in model.posterior_parameters()] == [id(p) for p in expected]
    gaussian, _ = tiny_vae()
    encoder = [id(p) for p in gaussian.encoder.parameters()]
    assert [id(p) for p in gaussian.posterior_parameters()] == encoder


def test_the_decoder_mirrors_the_encoders_hidden_sizes() -> None:
    model = VAE(DATA_DIM, ModelConfig(latent_dim=2, hidden_sizes=[8, 4]))

    def widths(net: torch.nn.Module) -> list[tuple[int, int]]:
        return [(m.in_features, m.out_features) for m in net if isinstance(m, torch.nn.Linear)]
    assert widths(model.encoder) == [(DATA_DIM, 8), (8, 4), (4, 2 * 2)]  # D -> 8 -> 4 -> 2L
    assert widths(model.decoder) == [(2, 4), (4, 8), (8, DATA_DIM)]  # L -> 4 -> 8 -> D


def test_mean_codes_are_the_posterior_means() -> None:
    """Gaussian: mu (the first L of 2L encoder outputs, L = 3); categorical: each variable's
    softmax."""
    torch.manual_seed(0)
    model, x = VAE(DATA_DIM, ModelConfig(latent_dim=3, hidden_sizes=[8])), torch.rand(3, DATA_DIM)
    params = model.encoder(x)  # (B, 6)
    torch.testing.assert_close(model.latent.mean_code(params), params[:, :3])
    model, x = tiny_vae(latent="categorical")
    params = model.encoder(x)
    probs = torch.softmax(params.view(3, 2, 3), dim=-1).view(3, 6)  # (B, L, C) -> (B, L*C)
    torch.testing.assert_close(model.latent.mean_code(params), probs)


def test_a_flow_mean_code_is_the_draw_at_zero_base_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = tiny_vae(posterior="flow", flow="coupling", flow_steps=2, flow_context=3)
    with torch.no_grad():  # a coupling flow starts as the identity: move it off
        for p in model.latent.parameters():
            p.normal_(0.0, 0.3)
    latent = model.latent
    assert isinstance(latent, FlowLatent)
    params = model.encoder(x)
    code = latent.mean_code(params)
    assert not torch.allclose(code, params[:, :2])  # the flow moved mu
    monkeypatch.setattr(normal, "_standard_normal",
                        lambda shape, dtype, device: torch.zeros(shape, dtype=dtype))
    z, _ = latent.rsample_and_log_q(params, 1)  # z = f_x(mu + sigma * 0)
    torch.testing.assert_close(code, z[0])


@pytest.mark.parametrize("overrides", [{}, {"posterior": "flow", "flow_context": 3}])
def test_gaussian_prior_samples_are_standard_normal(overrides: dict[str, object]) -> None:
    """4000 draws of z ~ N(0, I): each coordinate's mean within 4 SE (1 / sqrt(N)) of 0 and its
    variance within 4 SE (sqrt(2 / N)) of 1."""
    model, x = tiny_vae(**overrides)
    z = model.latent.prior_sample(4000, x)
    assert z.shape == (4000, 2) and z.dtype == x.dtype
    assert (z.mean(0).abs() < 4 / math.sqrt(4000)).all()
    assert ((z.var(0) - 1).abs() < 4 * math.sqrt(2 / 4000)).all()


def test_categorical_prior_is_uniform_and_normalized() -> None:
    """log p(c) = -L log C for every code (sums to 1 over the C^L codes); prior samples pick each
    category with frequency 1/C within 4 binomial SE."""
    model, x = tiny_vae(latent="categorical")
    latent = model.latent
    assert isinstance(latent, CategoricalLatent)
    pairs = torch.cartesian_prod(torch.arange(3), torch.arange(3))  # the 9 codes (c_1, c_2)
    codes = torch.eye(3)[pairs].flatten(-2)  # (9, 2, 3) -> (9, 6) one-hot
    log_prior = latent.log_prior(codes[None])  # (1, 9)
    torch.testing.assert_close(log_prior, torch.full((1, 9), -2 * math.log(3)))
    torch.testing.assert_close(log_prior.exp().sum(), torch.tensor(1.0))
    frequency = latent.prior_sample(3000, x).view(3000, 2, 3).mean(0)  # (N, L, C) -> (L, C)
    assert ((frequency - 1 / 3).abs() < 4 * math.sqrt(2 / 9 / 3000)).all(), frequency


def test_the_bernoulli_likelihood_is_the_pixel_cross_entropy() -> None:
    """log p(x|z) = sum_d x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d), l = decoder(z)."""
    model, x = tiny_vae(likelihood="bernoulli")
    z = torch.randn(4, 3, 2)  # (K, B, L)
    logits = model.decoder(z)  # (K, B, D)
    hand = (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)  # -> (K, B)
    torch.testing.assert_close(model.log_likelihood(x, z), hand)
