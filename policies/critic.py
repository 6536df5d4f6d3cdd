"""Q critics as an ensemble computed in one batched pass, and the weights it is built from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class EnsembleLinear(nn.Module):
    """E independent affine maps y_e = x_e W_e + b_e applied in ONE batched matmul.

    Stacking the members' weights turns E small matmuls (E kernel launches, E autograd nodes)
    into one batched matmul (`bmm`). Each member is initialized exactly like its own nn.Linear.

    Shapes:
        weight   (E, in_features, out_features)   (member e's nn.Linear weight is weight[e].T)
        bias     (E, 1, out_features)
        x        (E, B, in_features) -> (E, B, out_features)
    """

    def __init__(self, ensemble_size: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default for each member: kaiming_uniform_(a=sqrt(5)) on the weight and
        # the bias rule both draw U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor, detach_params: bool = False) -> Tensor:
        weight: Tensor = self.weight
        bias: Tensor = self.bias
        if detach_params:  # gradients flow to x only, none are computed for the weights
            weight, bias = weight.detach(), bias.detach()
        # bmm, then the bias: under torch.compile the add fuses into the next op (a ReLU), where
        # baddbmm would first copy the bias into the whole output (benchmarks/NOTES.md)
        return torch.bmm(x, weight) + bias  # (E, B, in) @ (E, in, out) + (E, 1, out) -> (E, B, out)


class EnsembleQ(nn.Module):
    """E Q-functions Q_e(s, a), each an MLP on [s, a], evaluated together in one pass.

    With E = 2 these are SAC's twin critics (clipped double-Q: the target uses their minimum).
    `detach_params=True` evaluates them as fixed functions: the actor loss differentiates
    Q(s, a(theta)) with respect to the action only, without computing critic weight gradients.

    Shapes:
        obs      (B, obs_dim)
        action   (B, act_dim)
        output   (E, B)
    """

    def __init__(
        self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int], num_critics: int = 2
    ) -> None:
        super().__init__()
        if num_critics < 1:
            raise ValueError(f"num_critics must be >= 1, got {num_critics}")
        self.num_critics = num_critics
        sizes = [obs_dim + act_dim, *hidden_sizes, 1]
        self.layers = nn.ModuleList(
            EnsembleLinear(num_critics, fan_in, fan_out) for fan_in, fan_out in pairwise(sizes)
        )

    def forward(self, obs: Tensor, action: Tensor, detach_params: bool = False) -> Tensor:
        x = self.stack_inputs(obs, action)
        for layer in self.layers[:-1]:
            x = F.relu(layer(x, detach_params), inplace=True)  # in place: no extra (E, B, H) tensor
        return self.layers[-1](x, detach_params).squeeze(-1)  # (E, B, 1) -> (E, B)

    def stack_inputs(self, obs: Tensor, action: Tensor) -> Tensor:
        """Every member's input [s, a]: (B, O), (B, A) -> (E, B, O + A), one copy shared by all."""
        x = torch.cat([obs, action], dim=-1)  # (B, O) + (B, A) -> (B, O + A)
        return x.expand(self.num_critics, *x.shape)  # (B, O + A) -> (E, B, O + A), no copy
