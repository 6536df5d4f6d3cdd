"""The VAE: MLP encoder -> latent space -> MLP decoder -> pixel likelihood.

Two latent spaces share one interface (posterior parameters in, flat codes out):
- ``GaussianLatent``: q(z|x) = N(mu, diag sigma^2), prior N(0, I), z = mu + sigma * eps drawn
  by the estimator core's ``DiagNormal.rsample`` (Kingma & Welling 2014, eq. 10).
- ``FlowLatent``: that Gaussian pushed through a normalizing flow whose parameters the
  encoder sets per example (the core's planar or affine coupling steps, amortized from a
  context vector); z and its exact log q(z|x) come from one forward pass (Rezende & Mohamed
  2015). No analytic KL: the ELBO uses the one-sample estimate log q(z|x) - log p(z).
- ``CategoricalLatent``: ``latent_dim`` independent ``categories``-way variables, uniform prior.
  The pathwise sample is the core's Gumbel-Softmax relaxation at an annealed temperature
  (Jang et al. 2017; Maddison et al. 2017); the exact sample is the one-hot Gumbel-max draw.

Shapes: B examples, K latent samples per example, D pixels, L latent variables, C categories,
P posterior parameters per example (2L, 2L + context, or L*C), Z code size seen by the
decoder (L or L*C).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, ContinuousBernoulli, Distribution

from estimators.distributions import DiagNormal, GumbelSoftmax
from estimators.flows import CouplingFlow, FlowDistribution, PlanarFlow
from networks import bounded_log_scale, mlp
from vae.config import ModelConfig

# Bounds on log sigma, applied smoothly (networks.bounded_log_scale): sigma in [e^-6, e^2] ~
# [0.0025, 7.4].
LOG_SIGMA_MIN = -6.0
LOG_SIGMA_MAX = 2.0


class GaussianLatent:
    """q(z|x) = N(mu, diag sigma^2) from P = 2L encoder outputs; prior p(z) = N(0, I)."""

    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = latent_dim
        self.num_params = 2 * latent_dim
        self.code_size = latent_dim

    def posterior(self, params: Tensor) -> DiagNormal:
        """(B, 2L) encoder outputs -> q with loc, scale (B, L)."""
        loc, raw_scale = params.chunk(2, dim=-1)  # (B, 2L) -> 2 x (B, L)
        log_sigma = bounded_log_scale(raw_scale, LOG_SIGMA_MIN, LOG_SIGMA_MAX)  # (B, L)
        return DiagNormal(loc, log_sigma.exp(), validate_args=False)

    def prior(self, like: Tensor) -> DiagNormal:
        """N(0, I) with the batch shape of ``like`` (..., L)."""
        return DiagNormal(torch.zeros_like(like), torch.ones_like(like), validate_args=False)

    def relaxed_sample(self, params: Tensor, num_samples: int, temperature: float) -> Tensor:
        """Reparameterized z = mu + sigma * eps, (K, B, L); the temperature is unused."""
        return self.posterior(params).rsample((num_samples,))

    def exact_sample(self, params: Tensor, num_samples: int) -> Tensor:
        """z ~ q(z|x) without a gradient path, (K, B, L)."""
        return self.posterior(params).sample((num_samples,))

    def log_q(self, params: Tensor, z: Tensor) -> Tensor:
        """log q(z|x) for z (K, B, L) -> (K, B)."""
        return self.posterior(params).log_prob(z)

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z) for z (K, B, L) -> (K, B)."""
        return self.prior(z).log_prob(z)

    def kl(self, params: Tensor) -> Tensor:
        """Analytic KL(q(z|x) || N(0, I)), (B,)."""
        q = self.posterior(params)
        # KL = 1/2 sum_l (mu^2 + sigma^2 - 1 - log sigma^2)   (Kingma & Welling 2014, appendix B)
        # (B, L) -> (B,)
        return 0.5 * (q.loc.square() + q.scale.square() - 1.0 - 2.0 * q.scale.log()).sum(-1)

    def mean_code(self, params: Tensor) -> Tensor:
        """Posterior mean mu, (B, L): the code used for reconstructions and the latent map."""
        return self.posterior(params).loc

    def prior_sample(self, num_samples: int, like: Tensor) -> Tensor:
        """z ~ N(0, I), (N, L), on the device and dtype of ``like``."""
        return self.prior(like.new_zeros(num_samples, self.latent_dim)).sample()


class FlowLatent(nn.Module):
    """q(z|x): z = f_x(z_0), z_0 ~ N(mu, diag sigma^2), from P = 2L + C encoder outputs.

    The first 2L outputs set the base Gaussian exactly as ``GaussianLatent`` does; the last C
    are a context vector from which the flow computes this example's steps. Prior N(0, I).
    """

    def __init__(self, latent_dim: int, flow: str, steps: int, context_dim: int) -> None:
        super().__init__()
        self.base = GaussianLatent(latent_dim)
        self.latent_dim = latent_dim
        self.num_params = 2 * latent_dim + context_dim
        self.code_size = latent_dim
        self.flow = (PlanarFlow(latent_dim, steps, context_dim=context_dim) if flow == "planar"
                     else CouplingFlow(latent_dim, steps, context_dim=context_dim))

    def posterior(self, params: Tensor) -> FlowDistribution:
        """(B, 2L + C) encoder outputs -> q with batch shape (B,) and event shape (L,)."""
        gaussian, context = params.split(
            [2 * self.latent_dim, self.num_params - 2 * self.latent_dim], dim=-1
        )
        return FlowDistribution(self.base.posterior(gaussian), self.flow(context),
                                validate_args=False)

    def rsample_and_log_q(self, params: Tensor, num_samples: int) -> tuple[Tensor, Tensor]:
        """Reparameterized z (K, B, L) and its exact log q(z|x) (K, B),
        scored on the forward path."""
        return self.posterior(params).rsample_and_log_prob((num_samples,))

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(z) for z (K, B, L) -> (K, B)."""
        return self.base.log_prior(z)

    def mean_code(self, params: Tensor) -> Tensor:
        """The base mean mu pushed through the flow, (B, L):
        the code for reconstructions and maps."""
        q = self.posterior(params)
        code = q.base_dist.mean
        for transform in q.transforms:
            code = transform(code)
        return code

    def prior_sample(self, num_samples: int, like: Tensor) -> Tensor:
        """z ~ N(0, I), (N, L)."""
        return self.base.prior_sample(num_samples, like)


class CategoricalLatent:
    """L independent C-way categorical variables from P = L*C logits; uniform prior.

    Codes are flat one-hot (or relaxed simplex) vectors of size Z = L*C.
    """

    def __init__(self, latent_dim: int, categories: int, straight_through: bool) -> None:
        self.latent_dim = latent_dim
        self.categories = categories
        self.straight_through = straight_through
        self.num_params = latent_dim * categories
        self.code_size = latent_dim * categories

    def log_probs(self, params: Tensor) -> Tensor:
        """(B, L*C) logits -> normalized log q(c_l = j | x), (B, L, C)."""
        logits = params.unflatten(-1, (self.latent_dim, self.categories))  # (B, L*C) -> (B, L, C)
        return logits.log_softmax(-1)

    def _gumbel_softmax(self, params: Tensor, num_samples: int, temperature: float,
                        hard: bool) -> Tensor:
        """Core Gumbel-Softmax draws, flattened: (K, B, L*C)."""
        sample = GumbelSoftmax(self.log_probs(params), temperature, hard=hard, validate_args=False)
        return sample.rsample((num_samples,)).flatten(-2)  # (K, B, L, C) -> (K, B, L*C)

    def relaxed_sample(self, params: Tensor, num_samples: int, temperature: float) -> Tensor:
        """Concrete relaxation on the simplex (one-hot forward if straight_through), (K, B, L*C)."""
        return self._gumbel_softmax(params, num_samples, temperature, self.straight_through)

    def exact_sample(self, params: Tensor, num_samples: int) -> Tensor:
        """One-hot c ~ q(c|x) by the Gumbel-max trick, no gradient path, (K, B, L*C)."""
        with torch.no_grad():
            return self._gumbel_softmax(params, num_samples, 1.0, hard=True)

    def log_q(self, params: Tensor, z: Tensor) -> Tensor:
        """log q(c|x) = sum_l log q(c_l|x) for one-hot c (K, B, L*C) -> (K, B)."""
        one_hot = z.unflatten(-1, (self.latent_dim, self.categories))  # (K, B, L*C) -> (K, B, L, C)
        return (one_hot * self.log_probs(params)).sum((-2, -1))  # (K, B, L, C) -> (K, B)

    def log_prior(self, z: Tensor) -> Tensor:
        """log p(c) = -L log C for every one-hot c, (K, B)."""
        return z.new_full(z.shape[:-1], -self.latent_dim * math.log(self.categories))

    def kl(self, params: Tensor) -> Tensor:
        """Analytic KL(q(c|x) || uniform) of the discrete variables, (B,)."""
        log_probs = self.log_probs(params)
        # KL = sum_l sum_j q_lj (log q_lj + log C)   (Jang et al. 2017, section 3.2)
        # (B, L, C) -> (B,)
        return (log_probs.exp() * (log_probs + math.log(self.categories))).sum((-2, -1))

    def mean_code(self, params: Tensor) -> Tensor:
        """Posterior probabilities q(c|x) flattened, (B, L*C)."""
        return self.log_probs(params).exp().flatten(-2)  # (B, L, C) -> (B, L*C)

    def prior_sample(self, num_samples: int, like: Tensor) -> Tensor:
        """Uniform one-hot codes, (N, L*C)."""
        uniform = like.new_zeros(num_samples, self.code_size)
        return self.exact_sample(uniform, 1)[0]  # (1, N, L*C) -> (N, L*C)


class VAE(nn.Module):
    """Encoder MLP (D -> P), latent space, decoder MLP (Z -> D pixel logits).

    The likelihood is continuous Bernoulli by default: the digits are grey levels in [0, 1],
    and the Bernoulli "likelihood" of a non-binary pixel is not a normalized density (its
    ELBO is a cross-entropy, not a bound on log p(x)); the continuous Bernoulli adds the
    normalizer log C(lambda) and makes the ELBO a true bound on a density over [0, 1]^D
    (Loaiza-Ganem & Cunningham 2019). Its nats are log-densities, so they can be positive.
    """

    def __init__(self, data_dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.latent: GaussianLatent | FlowLatent | CategoricalLatent
        if config.latent == "categorical":
            self.latent = CategoricalLatent(config.latent_dim, config.categories,
                                            config.straight_through)
        elif config.posterior == "flow":
            self.latent = FlowLatent(config.latent_dim, config.flow, config.flow_steps,
                                     config.flow_context)
        else:
            self.latent = GaussianLatent(config.latent_dim)
        self.encoder = mlp(data_dim, config.hidden_sizes, self.latent.num_params)
        self.decoder = mlp(self.latent.code_size, list(reversed(config.hidden_sizes)), data_dim)

    def posterior_parameters(self) -> list[nn.Parameter]:
        """The parameters of q(z|x): the encoder's, and the flow's when the posterior has one."""
        flow = list(self.latent.parameters()) if isinstance(self.latent, FlowLatent) else []
        return [*self.encoder.parameters(), *flow]

    def likelihood(self, z: Tensor) -> Distribution:
        """p(x|z) over pixels with batch shape (..., D) for codes z (..., Z)."""
        logits = self.decoder(z)
        if self.config.likelihood == "bernoulli":
            return Bernoulli(logits=logits, validate_args=False)
        return ContinuousBernoulli(logits=logits, validate_args=False)

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """log p(x|z) summed over pixels: x (B, D), z (K, B, Z) -> (K, B)."""
        return self.likelihood(z).log_prob(x).sum(-1)  # (K, B, D) -> (K, B)
