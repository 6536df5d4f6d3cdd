"""State-value network V(s): the learned baseline of the score-function (REINFORCE) estimator."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from networks.mlp import mlp


class ValueNetwork(nn.Module):
    """V(s), an MLP with one output.

    Shapes: obs (B, obs_dim) -> (B,).
    """

    def __init__(self, obs_dim: int, hidden_sizes: Sequence[int]) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden_sizes, 1)

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs).squeeze(-1)  # (B, 1) -> (B,)
