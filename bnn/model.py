"""Regression networks for `kind: bnn`: a mean-field Bayesian MLP or a plain one, each with a
learned Gaussian observation noise; the ELBO, and the predictive distribution.

ELBO per example (Blundell et al. 2015, eq. 1-2, the minibatch form of their eq. 8):
    L = (1/B) sum_b log N(y_b; f_W(x_b), s^2) - KL(q(W) || p(W)) / N
with W drawn by the configured estimator (bnn/layers.py), N the training-set size and s the
noise scale (a point estimate). A plain network has no KL and maximizes the likelihood alone.

The predictive density averages S function draws (each one W ~ q for all inputs):
    log p(y|x) ~ log (1/S) sum_s N(y; f_s(x), s^2)
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from bnn.config import ModelConfig
from bnn.layers import BayesLinear, Estimator


class BayesianMLP(nn.Module):
    """ReLU network of `BayesLinear` layers: (B, F) -> (B,)."""

    def __init__(self, in_features: int, config: ModelConfig) -> None:
        super().__init__()
        sizes = [in_features, *config.hidden_sizes, 1]
        self.bayes_layers = [BayesLinear(a, b, config.prior_std, config.init_std)
                             for a, b in itertools.pairwise(sizes)]
        self.layers = nn.ModuleList(self.bayes_layers)  # registers them as submodules

    def forward(self, x: Tensor, estimator: Estimator) -> Tensor:
        for i, layer in enumerate(self.bayes_layers):
            x = layer(x, estimator)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x.squeeze(-1)  # (B, 1) -> (B,)

    def kl(self) -> Tensor:
        return torch.stack([layer.kl() for layer in self.bayes_layers]).sum()  # (layers,) -> ()


class PointMLP(nn.Module):
    """The same architecture with ordinary weights (the plain baseline): (B, F) -> (B,)."""

    def __init__(self, in_features: int, config: ModelConfig) -> None:
        super().__init__()
        sizes = [in_features, *config.hidden_sizes, 1]
        layers: list[nn.Module] = []
        for width_in, width_out in itertools.pairwise(sizes):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])  # no ReLU after the output

    def forward(self, x: Tensor, estimator: Estimator) -> Tensor:
        return self.net(x).squeeze(-1)  # (B, 1) -> (B,); no weight noise to estimate

    def kl(self) -> Tensor:
        return next(self.parameters()).new_zeros(())


class Regression(nn.Module):
    """A network f (Bayesian or plain) and the noise scale s of y ~ N(f(x), s^2)."""

    def __init__(self, in_features: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.network: BayesianMLP | PointMLP = (BayesianMLP if config.bayesian
                                                else PointMLP)(in_features, config)
        self.log_noise_std = nn.Parameter(torch.tensor(math.log(config.init_noise_std)))

    def variational_parameters(self) -> list[nn.Parameter]:
        """The parameters whose gradient carries weight noise: every layer's mu and rho."""
        return list(self.network.parameters())

    def objective(self, x: Tensor, y: Tensor, estimator: Estimator,
                  num_train: int) -> tuple[Tensor, dict[str, Tensor]]:
        """The minibatch ELBO per example (maximize it), and its parts, all ().

        Shapes: x (B, F), y (B,).
        """
        noise = Normal(self.network(x, estimator), self.log_noise_std.exp())
        log_lik = noise.log_prob(y).mean()  # (B,) -> ()
        kl = self.network.kl() / num_train  # KL / N: the minibatch share of the penalty
        return log_lik - kl, {"log_lik": log_lik.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def predictive(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Function draws, predictive mean and standard deviation at inputs x (N, F).

        Returns f (S, N), mean (N,), std (N,) with Var = Var_s f_s + s^2; S = 1 for a plain net.
        """
        samples = self.config.predictive_samples if self.config.bayesian else 1
        # S x (N,) -> (S, N)
        draws = torch.stack([self.network(x, "global") for _ in range(samples)])
        noise_var = self.log_noise_std.exp().square()
        var = draws.var(0, correction=0) + noise_var  # (S, N) -> (N,)
        return draws, draws.mean(0), var.sqrt()

    @torch.no_grad()
    def test_metrics(self, x: Tensor, y: Tensor) -> dict[str, float]:
        """RMSE of the predictive mean and mean predictive log-density, standardized units."""
        draws, mean, _ = self.predictive(x)
        rmse = (mean - y).square().mean().sqrt()  # (N,) -> ()
        log_density = Normal(draws, self.log_noise_std.exp()).log_prob(y)  # (S, N)
        log_lik = torch.logsumexp(log_density, dim=0) - math.log(len(draws))  # (S, N) -> (N,)
        return {"rmse": float(rmse), "log_likelihood": float(log_lik.mean())}
