"""The multilayer perceptron every network here is built from."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import nn


def mlp(in_dim: int, hidden_sizes: Sequence[int], out_dim: int) -> nn.Sequential:
    """Linear -> ReLU for each hidden size, then a final Linear with no activation.

    Shapes: input (..., in_dim) -> output (..., out_dim). Layers keep nn.Linear's default init.
    `hidden_sizes=[]` gives a single affine map.
    """
    sizes = [in_dim, *hidden_sizes, out_dim]
    layers: list[nn.Module] = []
    for fan_in, fan_out in pairwise(sizes[:-1]):
        # in place: ReLU's backward needs only its output
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)
