"""A mean-field Gaussian linear layer and the three ways to sample its pre-activations.

q(W) = prod_ij N(W_ij; mu_ij, sigma_ij^2), sigma = softplus(rho) (Blundell et al. 2015, sec. 3.2),
and the same for the bias. For inputs x (B, I), the pre-activations a = x W^T + b are drawn by
one of three estimators of the ELBO gradient; each gives every example the same marginal
distribution of a, and they differ in how the B examples' noise is correlated:
- ``global``: one W ~ q shared by the whole minibatch (Bayes by Backprop). The examples'
  noise is fully correlated, so averaging over the minibatch removes little of it.
- ``local``: the local reparameterization trick (Kingma, Salimans & Welling 2015, eq. 6-7):
  a is Gaussian given x, a_bj ~ N(x_b . mu_j + mu_bj, x_b^2 . sigma_j^2 + sigma_bj^2), drawn
  independently per example: the covariance between examples vanishes.
- ``flipout`` (Wen et al. 2018, eq. 3): one shared perturbation dW = sigma * eps, decorrelated
  per example by random signs, a_b = x_b mu^T + mu_b + ((x_b * s_b) dW^T + db) * r_b with
  s_b, r_b in {-1, +1}^I, {-1, +1}^O; each example's (dW * r_b s_b^T, db * r_b) is again
  N(0, sigma^2), and pairs of examples are uncorrelated.
The core's `DiagNormal.rsample` draws the Gaussian part of each.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from estimators.distributions import DiagNormal

Estimator = Literal["global", "local", "flipout"]
ESTIMATORS: tuple[Estimator, ...] = ("global", "local", "flipout")


def inverse_softplus(value: float) -> float:
    """rho with softplus(rho) = value: log(exp(value) - 1)."""
    return math.log(math.expm1(value))


def rademacher(shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Independent uniform signs in {-1, +1} of the given shape, dtype and device of ``like``."""
    return torch.randint(0, 2, shape, device=like.device).to(like.dtype) * 2.0 - 1.0


class BayesLinear(nn.Module):
    """Mean-field Gaussian linear layer with prior N(0, prior_std^2) on every entry.

    Shapes: x (B, I) -> (B, O); weight parameters (O, I), bias parameters (O,).
    """

    def __init__(self, in_features: int, out_features: int, prior_std: float,
                 init_std: float) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default range for the means
        self.weight_mu = nn.Parameter(
            torch.empty(out_features, in_features).uniform_(-bound, bound)
        )
        self.weight_rho = nn.Parameter(
            torch.full((out_features, in_features), inverse_softplus(init_std))
        )
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_rho = nn.Parameter(torch.full((out_features,), inverse_softplus(init_std)))
        self.prior_std = prior_std

    def weight_std(self) -> Tensor:
        return F.softplus(self.weight_rho)  # sigma = log(1 + exp(rho)) > 0

    def bias_std(self) -> Tensor:
        return F.softplus(self.bias_rho)

    def moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of the pre-activations under q, (B, O) each
        (the local trick's Gaussian).

        E[a_bj] = x_b . mu_j + mu_bj,  Var[a_bj] = x_b^2 . sigma_j^2 + sigma_bj^2
        (KSW 2015, eq. 6)
        """
        mean = F.linear(x, self.weight_mu, self.bias_mu)  # (B, I) -> (B, O)
        # (B, I) -> (B, O)
        var = F.linear(x.square(), self.weight_std().square(), self.bias_std().square())
        return mean, var

    def forward(self, x: Tensor, estimator: Estimator) -> Tensor:
        if estimator == "global":
            # (O, I)
            weight = DiagNormal(self.weight_mu, self.weight_std(), validate_args=False).rsample()
            bias = DiagNormal(self.bias_mu, self.bias_std(), validate_args=False).rsample()  # (O,)
            return F.linear(x, weight, bias)
        if estimator == "local":
            mean, var = self.moments(x)
            return DiagNormal(mean, var.sqrt(), validate_args=False).rsample()  # (B, O)
        if estimator == "flipout":
            zeros = torch.zeros_like(self.weight_mu)
            delta_w = DiagNormal(zeros, self.weight_std(), validate_args=False).rsample()  # (O, I)
            delta_b = DiagNormal(torch.zeros_like(self.bias_mu), self.bias_std(),
                                 validate_args=False).rsample()
            signs_in = rademacher(x.shape, x)  # (B, I)
            signs_out = rademacher((x.shape[0], self.weight_mu.shape[0]), x)  # (B, O)
            # (B, I) -> (B, O)
            perturbation = (F.linear(x * signs_in, delta_w) + delta_b) * signs_out
            return F.linear(x, self.weight_mu, self.bias_mu) + perturbation
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")

    def kl(self) -> Tensor:
        """KL(q || prior) summed over the weights and biases, () (closed form between Gaussians)."""
        prior = Normal(0.0, self.prior_std)
        return (kl_divergence(Normal(self.weight_mu, self.weight_std()), prior).sum()
                + kl_divergence(Normal(self.bias_mu, self.bias_std()), prior).sum())
