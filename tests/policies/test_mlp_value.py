"""The MLP builder and the state-value network."""

import torch
from torch import nn

from policies.mlp import mlp
from policies.value import ValueNetwork


def test_mlp_has_relu_between_linears_and_no_output_activation() -> None:
    net = mlp(3, [8, 4], 2)
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [8, 4, 2]
    assert [type(m) for m in mlp(3, [], 2)] == [nn.Linear]


def test_value_network_maps_a_batch_of_states_to_one_value_each() -> None:
    value = ValueNetwork(obs_dim=5, hidden_sizes=[8])
    assert value(torch.randn(7, 5)).shape == (7,)
