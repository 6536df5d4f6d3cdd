"""The state-value network."""

import torch

from policies.value import ValueNetwork


def test_value_network_maps_a_batch_of_states_to_one_value_each() -> None:
    value = ValueNetwork(obs_dim=5, hidden_sizes=[8])
    assert value(torch.randn(7, 5)).shape == (7,)
