"""The hand-written MLP backward passes equal autograd, for nn.Linear MLPs and critic ensembles."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from networks.mlp import mlp
from policies import backprop
from policies.critic import EnsembleQ

B, IN, HIDDEN, OUT, E = 9, 5, [16, 8], 3, 2


def networks() -> list[tuple[str, nn.Module, Tensor]]:
    """(name, network, input) for both layouts: an MLP of nn.Linear and an EnsembleQ stack."""
    torch.manual_seed(0)
    critic = EnsembleQ(IN - 2, 2, HIDDEN, num_critics=E)
    ensemble_x = critic.stack_inputs(torch.randn(B, IN - 2), torch.randn(B, 2))  # (E, B, IN)
    return [("linear", mlp(IN, HIDDEN, OUT), torch.randn(B, IN)), ("ensemble", critic, ensemble_x)]


def module_output(net: nn.Module, x: Tensor) -> Tensor:
    """The network's own forward (nn.Sequential, or EnsembleQ's layers with ReLU between)."""
    if isinstance(net, EnsembleQ):
        for layer in net.layers[:-1]:
            x = torch.relu(layer(x))
        return net.layers[-1](x)
    return net(x)


@pytest.mark.parametrize("index", [0, 1], ids=["linear", "ensemble"])
def test_forward_keeping_inputs_is_the_module_forward_and_keeps_every_layer_input(
    index: int
) -> None:
    _, net, x = networks()[index]
    layers = backprop.affine_layers(net)
    with torch.no_grad():
        y, inputs = backprop.forward_keeping_inputs(layers, x)
        torch.testing.assert_close(y, module_output(net, x))
    assert len(inputs) == len(layers) == len(HIDDEN) + 1
    assert inputs[0] is x
    assert all((h >= 0).all() for h in inputs[1:])  # post-ReLU activations


@pytest.mark.parametrize("index", [0, 1], ids=["linear", "ensemble"])
def test_param_grads_equal_autograd(index: int) -> None:
    _, net, x = networks()[index]
    y = module_output(net, x)
    grad_y = torch.randn_like(y)  # an arbitrary upstream dL/dy
    want = torch.autograd.grad(y, list(net.parameters()), grad_y)
    with torch.no_grad():
        layers = backprop.affine_layers(net)
        _, inputs = backprop.forward_keeping_inputs(layers, x)
        got = backprop.param_grads(layers, inputs, grad_y)
    assert len(got) == len(want)
    for g, w, p in zip(got, want, net.parameters(), strict=True):
        assert g.shape == p.shape
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("index", [0, 1], ids=["linear", "ensemble"])
def test_input_grad_equals_autograd(index: int) -> None:
    _, net, x = networks()[index]
    x = x.detach().clone().requires_grad_(True)
    y = module_output(net, x)
    grad_y = torch.randn_like(y)
    (want,) = torch.autograd.grad(y, [x], grad_y)
    with torch.no_grad():
        layers = backprop.affine_layers(net)
        _, inputs = backprop.forward_keeping_inputs(layers, x.detach())
        got = backprop.input_grad(layers, inputs, grad_y)
    torch.testing.assert_close(got, want)
