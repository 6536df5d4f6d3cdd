"""The estimator switch: the score-function encoder gradient is unbiased.

Gaussian latent: against the pathwise gradient (both unbiased for the same ELBO).
Categorical latent: against the exact gradient by enumerating every code.
Tolerances: 4 standard errors of the difference of means, per parameter.
"""

from __future__ import annotations

import itertools
import math
from functools import partial

import pytest
import torch
from torch import Tensor
from torch.distributions import ContinuousBernoulli, Normal, kl_divergence

from estimators.gradients import EMABaseline
from estimators.variance import GradientStats, gradient_samples, gradient_stats
from vae.config import ModelConfig
from vae.model import VAE
from vae.objectives import Estimator, elbo_objective

NUM_ESTIMATES = 1000


def tiny_vae(latent: str) -> tuple[VAE, Tensor]:
    torch.manual_seed(0)
    config = ModelConfig(latent=latent, latent_dim=2, categories=3, hidden_sizes=[8])  # type: ignore[arg-type]
    return VAE(5, config), torch.rand(4, 5)


def assert_means_agree(samples: Tensor, reference_mean: Tensor, reference_var: Tensor,
                       num_reference: int) -> None:
    """|mean(samples) - reference_mean| <= 4 SE per parameter, SE^2 = var/N + var_ref/N_ref.

    Parameters without noise in either (a ReLU unit dead on every image) must agree exactly.
    """
    stats = gradient_stats(samples)
    variance = stats.var / len(samples) + reference_var / num_reference  # (P,)
    difference = stats.mean - reference_mean  # (P,)
    noisy = variance > 0
    assert noisy.any()
    z_scores = difference[noisy].abs() / variance[noisy].sqrt()
    assert z_scores.max() <= 4.0, f"max |z| {z_scores.max():.2f} at {int(z_scores.argmax())}"
    assert torch.equal(difference[~noisy], torch.zeros_like(difference[~noisy]))


def surrogate(model: VAE, x: Tensor, estimator: Estimator,
              baseline: EMABaseline | str | None) -> Tensor:
    """One minibatch gradient estimate's surrogate, K = 2 latent samples per image."""
    return elbo_objective(model, x, estimator, 2, 1.0, baseline)[0]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pathwise_reference() -> GradientStats:
    model, x = tiny_vae("gaussian")
    torch.manual_seed(1)
    return gradient_stats(
        gradient_samples(partial(surrogate, model, x, "pathwise", None),
                         list(model.encoder.parameters()), NUM_ESTIMATES)
    )


@pytest.mark.parametrize("baseline", ["leave_one_out", "ema", None])
def test_score_function_encoder_gradient_matches_pathwise_in_expectation(
    baseline: str | None, pathwise_reference: GradientStats
) -> None:
    model, x = tiny_vae("gaussian")
    ema = EMABaseline(0.9)
    ema.update(torch.tensor([40.0]))  # a fixed value: it does not depend on the sample
    chosen = ema if baseline == "ema" else baseline
    torch.manual_seed(2)
    score = gradient_samples(
        partial(surrogate, model, x, "score_function", chosen),
        list(model.encoder.parameters()), NUM_ESTIMATES
    )
    assert_means_agree(score, pathwise_reference.mean, pathwise_reference.var, NUM_ESTIMATES)
    # The point of the comparison: same mean, larger variance.
    assert gradient_stats(score).var_trace > pathwise_reference.var_trace


def exact_categorical_elbo(model: VAE, x: Tensor) -> Tensor:
    """Batch-mean ELBO of the discrete model by summing over all C^L codes."""
    latent_dim, categories = 2, 3
    params = model.encoder(x)  # (B, L*C)
    log_probs = params.unflatten(-1, (latent_dim, categories)).log_softmax(-1)  # (B, L, C)
    eye = torch.eye(categories)
    total = torch.zeros(len(x))
    for code in itertools.product(range(categories), repeat=latent_dim):
        one_hot = torch.stack([eye[c] for c in code])  # (L, C)
        log_q = (log_probs * one_hot).sum((-2, -1))  # (B, L, C) -> (B,)
        z = one_hot.flatten().expand(1, len(x), -1)  # (L, C) -> (1, B, L*C)
        total = total + log_q.exp() * model.log_likelihood(x, z)[0]  # E_q[log p(x|c)] term, (B,)
    kl = (log_probs.exp() * (log_probs + math.log(categories))).sum((-2, -1))  # (B,)
    return (total - kl).mean()  # (B,) -> ()


def test_categorical_score_function_gradient_matches_exact_enumeration() -> None:
    model, x = tiny_vae("categorical")
    encoder = list(model.encoder.parameters())
    exact = torch.cat(
        [g.reshape(-1) for g in torch.autograd.grad(exact_categorical_elbo(model, x), encoder)]
    )
    torch.manual_seed(2)
    score = gradient_samples(partial(surrogate, model, x, "score_function", "leave_one_out"),
                             encoder, NUM_ESTIMATES)
    assert_means_agree(score, exact, torch.zeros_like(exact), 1)


def test_decoder_gradient_is_the_ordinary_one_under_both_estimators() -> None:
    """With the same latent sample, the decoder's gradient does not depend on the estimator."""
    model, x = tiny_vae("gaussian")
    decoder = list(model.decoder.parameters())
    grads = {}
    for estimator in ("pathwise", "score_function"):
        torch.manual_seed(3)  # same noise: rsample and sample draw identical z here
        objective, _ = elbo_objective(model, x, estimator, 2, 1.0, "leave_one_out")
        grads[estimator] = torch.autograd.grad(objective, decoder)
    for pathwise, score in zip(grads["pathwise"], grads["score_function"], strict=True):
        torch.testing.assert_close(pathwise, score)


def test_unknown_estimator_is_rejected() -> None:
    model, x = tiny_vae("gaussian")
    with pytest.raises(ValueError) as error:
        elbo_objective(model, x, "reinforce", 2, 1.0, None)  # type: ignore[arg-type]
    message = "estimator must be one of ('pathwise', 'score_function'), got 'reinforce'"
    assert str(error.value) == message


@pytest.mark.parametrize("baseline", ["leave_one_out", "ema", None])
def test_score_function_encoder_gradient_is_the_hand_computed_centred_score(
        baseline: str | None) -> None:
    """On the drawn z (K = 3): grad mean_kb[(log p(x|z_kb) - c_kb) log q(z_kb|x)] - grad mean_b KL,
    with c the mean of the other two samples of the same image, the EMA's value 40, or 0; log q and
    the KL from torch.distributions."""
    model, x = tiny_vae("gaussian")
    ema = EMABaseline(0.9)
    ema.update(torch.tensor([40.0]))
    encoder = list(model.encoder.parameters())
    torch.manual_seed(5)
    chosen = ema if baseline == "ema" else baseline
    objective, info = elbo_objective(model, x, "score_function", 3, 1.0, chosen)  # type: ignore
    ours = torch.autograd.grad(objective, encoder)
    torch.manual_seed(5)
    params = model.encoder(x)
    z = model.latent.exact_sample(params, 3)  # (K, B, L), the same draw
    q = model.latent.posterior(params)  # type: ignore[union-attr]
    mu, sigma = q.loc, q.scale
    with torch.no_grad():
        log_lik = ContinuousBernoulli(logits=model.decoder(z)).log_prob(x).sum(-1)  # (K, B)
    torch.testing.assert_close(info["log_lik"], log_lik)
    centres = {"leave_one_out": (log_lik.sum(0) - log_lik) / 2, "ema": 40.0, None: 0.0}  # (K, B)
    log_q = Normal(mu, sigma).log_prob(z).sum(-1)  # (K, B, L) -> (K, B)
    kl = kl_divergence(Normal(mu, sigma), Normal(0.0, 1.0)).sum(-1)  # (B, L) -> (B,)
    hand = torch.autograd.grad(((log_lik - centres[baseline]) * log_q).mean() - kl.mean(), encoder)
    for a, b in zip(ours, hand, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("estimator", ["pathwise", "score_function"])
def test_the_reported_figures_are_batch_means_of_log_p_x_given_z_and_the_kl(
        estimator: Estimator) -> None:
    model, x = tiny_vae("gaussian")
    objective, info = elbo_objective(model, x, estimator, 3, 1.0, None)
    log_lik = info["log_lik"]
    assert log_lik.shape == (3, 4) and not log_lik.requires_grad
    kl = model.latent.kl(model.encoder(x)).detach()  # (B,)
    torch.testing.assert_close(info["kl"], kl.mean())
    torch.testing.assert_close(info["recon_nll"], -log_lik.mean())
    torch.testing.assert_close(info["elbo"], log_lik.mean() - kl.mean())
    if estimator == "pathwise":  # the pathwise surrogate's value is the estimate itself
        torch.testing.assert_close(objective.detach(), info["elbo"])


def test_a_flow_posterior_elbo_subtracts_the_one_draw_kl_log_q_minus_log_p() -> None:
    """Coupling flow (exactly invertible): log q of the drawn z by torch's inverse."""
    torch.manual_seed(0)
    config = ModelConfig(latent_dim=2, hidden_sizes=[8], posterior="flow", flow="coupling",
                         flow_steps=2, flow_context=3)
    model, x = VAE(5, config), torch.rand(4, 5)
    with torch.no_grad():  # a coupling flow starts as the identity: move it off
        for p in model.latent.parameters():
            p.normal_(0.0, 0.3)
    torch.manual_seed(6)
    objective, info = elbo_objective(model, x, "pathwise", 3, 1.0, None)
    torch.manual_seed(6)
    with torch.no_grad():
        q = model.latent.posterior(model.encoder(x))  # type: ignore[union-attr]
        z = q.sample((3,))  # the same base noise through the same steps
        kl = q.log_prob(z) - Normal(0.0, 1.0).log_prob(z).sum(-1)  # (K, B)
        log_lik = ContinuousBernoulli(logits=model.decoder(z)).log_prob(x).sum(-1)  # (K, B)
    torch.testing.assert_close(info["kl"], kl.mean())
    torch.testing.assert_close(info["elbo"], (log_lik - kl).mean())
    torch.testing.assert_close(objective.detach(), (log_lik - kl).mean())


def test_categorical_pathwise_codes_are_relaxed_at_the_given_temperature() -> None:
    model, x = tiny_vae("categorical")
    params = model.encoder(x)
    torch.manual_seed(7)
    _, info = elbo_objective(model, x, "pathwise", 2, 0.3, None)
    draws = {}
    for temperature in (0.3, 1.0):
        torch.manual_seed(7)
        with torch.no_grad():
            codes = model.latent.relaxed_sample(params, 2, temperature)  # (K, B, L*C)
            draws[temperature] = model.log_likelihood(x, codes)
    torch.testing.assert_close(info["log_lik"], draws[0.3])
    assert not torch.allclose(draws[0.3], draws[1.0])
    torch.testing.assert_close(info["kl"], model.latent.kl(params).detach().mean())
