"""The ELBO as a training objective (pathwise or score-function encoder gradient) and the
evaluation bounds (Monte-Carlo ELBO and importance-weighted bound), as pure functions.

ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))    (Kingma & Welling 2014, eq. 3)

The KL is analytic and keeps its direct gradient. Only the reconstruction expectation needs
an estimator for the encoder's gradient:
- ``pathwise``: log p(x|z) on reparameterized z (Gaussian) or on Gumbel-Softmax relaxed codes
  (categorical, biased by the relaxation, annealed towards the discrete model).
- ``score_function``: log p(x|z) on detached exact samples times the gradient of log q(z|x),
  centred by a baseline (leave-one-out over the K samples of each example, an EMA of the
  batch mean, or none). The decoder still gets its ordinary gradient through the ``+ f`` term
  of the core's surrogate.

A flow posterior (``FlowLatent``) has no analytic KL: its ELBO is the pathwise estimate of
E_q[log p(x|z) + log p(z) - log q(z|x)], with log q exact from the flow's change of variables
on the same draw, and its IWAE bound weighs each draw by that same exact log q.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from estimators.gradients import (
    EMABaseline,
    leave_one_out_baseline,
    pathwise_surrogate,
    score_function_surrogate,
)
from vae.model import VAE, FlowLatent

Estimator = Literal["pathwise", "score_function"]
ESTIMATORS: tuple[Estimator, ...] = ("pathwise", "score_function")


def elbo_objective(
    model: VAE,
    x: Tensor,
    estimator: Estimator,
    num_samples: int,
    temperature: float,
    baseline: EMABaseline | Literal["leave_one_out"] | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Surrogate whose gradient estimates the gradient of the batch-mean ELBO (maximize it).

    | argument / result   | shape  | meaning                                             |
    |---------------------|--------|-----------------------------------------------------|
    | x                   | (B, D) | images in [0, 1]                                    |
    | objective           | ()     | surrogate; ``-objective`` is the loss                |
    | info["elbo"]        | ()     | mean over K and B of log p(x|z) - KL (nats/example) |
    | info["recon_nll"]   | ()     | mean of -log p(x|z)                                 |
    | info["kl"]          | ()     | mean KL: analytic, or log q - log p (flow posterior) |
    | info["log_lik"]     | (K, B) | log p(x|z) per sample, detached (for an EMA update) |
    """
    params = model.encoder(x)  # (B, P)
    if isinstance(model.latent, FlowLatent):
        if estimator != "pathwise":
            raise ValueError("a flow posterior is trained with the pathwise estimator, got "
                             f"{estimator!r}")
        z, log_q = model.latent.rsample_and_log_q(params, num_samples)  # (K, B, L), (K, B)
        kl = log_q - model.latent.log_prior(z)  # (K, B): one-sample KL estimate per draw
        log_lik = model.log_likelihood(x, z)  # (K, B)
        reconstruction = pathwise_surrogate(log_lik)
    elif estimator == "pathwise":
        kl = model.latent.kl(params)  # (B,)
        z = model.latent.relaxed_sample(params, num_samples, temperature)  # (K, B, Z)
        log_lik = model.log_likelihood(x, z)  # (K, B)
        reconstruction = pathwise_surrogate(log_lik)
    elif estimator == "score_function":
        kl = model.latent.kl(params)  # (B,)
        z = model.latent.exact_sample(params, num_samples)  # (K, B, Z), no gradient path
        log_lik = model.log_likelihood(x, z)  # (K, B)
        log_q = model.latent.log_q(params, z)  # (K, B)
        if baseline == "leave_one_out":
            centre: Tensor | float | None = leave_one_out_baseline(log_lik, dim=0)  # (K, B)
        elif isinstance(baseline, EMABaseline):
            centre = baseline.value
        else:
            centre = None
        reconstruction = score_function_surrogate(log_lik, log_q, centre)
    else:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    objective = reconstruction - kl.mean()  # (B,) or (K, B) -> ()
    log_lik = log_lik.detach()
    info = {
        "elbo": (log_lik - kl.detach()).mean(),  # (K, B) -> ()
        "recon_nll": -log_lik.mean(),  # (K, B) -> ()
        "kl": kl.detach().mean(),  # (B,) -> ()
        "log_lik": log_lik,
    }
    return objective, info


@torch.no_grad()
def evaluation_bounds(model: VAE, x: Tensor, num_samples: int) -> dict[str, Tensor]:
    """Per-example bounds from K exact posterior samples (the discrete codes for a
    categorical latent, so both are bounds on the discrete model's log-likelihood).

    | argument / result | shape  | meaning                                                |
    |-------------------|--------|--------------------------------------------------------|
    | x                 | (B, D) | images in [0, 1]                                       |
    | "elbo"            | (B,)   | mean_k log p(x|z_k) - KL                               |
    | "recon_nll"       | (B,)   | -mean_k log p(x|z_k)                                   |
    | "kl"              | (B,)   | analytic KL, or mean_k log q(z_k|x) - log p(z_k) (flow) |
    | "iwae"            | (B,)   | log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)             |
    """
    params = model.encoder(x)  # (B, P)
    if isinstance(model.latent, FlowLatent):
        # (K, B, L), exact log q (K, B)
        z, log_q = model.latent.rsample_and_log_q(params, num_samples)
        log_prior = model.latent.log_prior(z)  # (K, B)
        kl = (log_q - log_prior).mean(0)  # (K, B) -> (B,)
    else:
        z = model.latent.exact_sample(params, num_samples)  # (K, B, Z)
        log_q, log_prior = model.latent.log_q(params, z), model.latent.log_prior(z)  # (K, B) each
        kl = model.latent.kl(params)  # (B,)
    log_lik = model.log_likelihood(x, z)  # (K, B)
    log_weights = log_lik + log_prior - log_q  # (K, B)
    # IWAE_K = log mean_k w_k, w_k = p(x, z_k) / q(z_k|x)   (Burda et al. 2016, eq. 8)
    iwae = torch.logsumexp(log_weights, dim=0) - math.log(num_samples)  # (K, B) -> (B,)
    recon_nll = -log_lik.mean(0)  # (K, B) -> (B,)
    return {"elbo": -recon_nll - kl, "recon_nll": recon_nll, "kl": kl, "iwae": iwae}
