"""The MLP builder and the log-scale bound."""

import torch
from torch import nn

from networks import bounded_log_scale, bounded_log_scale_grad, mlp


def test_mlp_has_relu_between_linears_and_no_output_activation() -> None:
    net = mlp(3, [8, 4], 2)
    kinds = [type(m) for m in net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [8, 4, 2]
    assert [type(m) for m in mlp(3, [], 2)] == [nn.Linear]


def test_log_scale_bound_maps_the_reals_onto_the_interval_with_tanh() -> None:
    raw = torch.tensor([-50.0, -1.0, 0.0, 0.5, 50.0], dtype=torch.float64)
    bounded = bounded_log_scale(raw, -5.0, 2.0)
    # low + (high - low) * (tanh(raw) + 1) / 2: the ends at +-inf, the midpoint -1.5 at 0
    expected = -5.0 + 3.5 * (torch.tanh(raw) + 1.0)
    torch.testing.assert_close(bounded, expected)
    assert bounded[0].item() == -5.0 and bounded[-1].item() == 2.0 and bounded[2].item() == -1.5


def test_log_scale_bound_gradient_is_its_derivative() -> None:
    raw = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(bounded_log_scale(raw, -6.0, 2.0).sum(), raw)
    torch.testing.assert_close(bounded_log_scale_grad(raw.detach(), -6.0, 2.0), grad)
