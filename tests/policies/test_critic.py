"""The ensemble critic: one batched pass equals separate nn.Linear networks,
initialized like them."""

import math

import torch
from torch import nn

from networks.mlp import mlp
from policies.critic import EnsembleLinear, EnsembleQ

OBS_DIM, ACT_DIM, HIDDEN, B = 5, 2, [16, 8], 7


def separate_copies(critic: EnsembleQ) -> list[nn.Sequential]:
    """One ordinary MLP per member, holding that member's weights (nn.Linear weight = W_e^T)."""
    nets = []
    for e in range(critic.num_critics):
        net = mlp(OBS_DIM + ACT_DIM, HIDDEN, 1)
        linears = [m for m in net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for linear, layer in zip(linears, critic.layers, strict=True):
                linear.weight.copy_(layer.weight[e].T)
                linear.bias.copy_(layer.bias[e, 0])
        nets.append(net)
    return nets


def test_batched_ensemble_equals_separate_networks_in_value_and_gradient() -> None:
    torch.manual_seed(0)
    critic = EnsembleQ(OBS_DIM, ACT_DIM, HIDDEN, num_critics=3)
    nets = separate_copies(critic)
    obs = torch.randn(B, OBS_DIM)
    action = torch.randn(B, ACT_DIM, requires_grad=True)

    q = critic(obs, action)
    assert q.shape == (3, B)
    # (E, B)
    expected = torch.stack([net(torch.cat([obs, action], -1)).squeeze(-1) for net in nets])
    torch.testing.assert_close(q, expected)

    (grad_action,) = torch.autograd.grad(q.sum(), action)
    (expected_grad,) = torch.autograd.grad(expected.sum(), action)
    torch.testing.assert_close(grad_action, expected_grad)


def test_members_are_initialized_like_nn_linear() -> None:
    # nn.Linear(fan_in, .) draws weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)):
    # check the bound and the variance bound^2 / 3 within 5 standard errors.
    torch.manual_seed(0)
    fan_in, fan_out, members = 64, 128, 2
    layer = EnsembleLinear(members, fan_in, fan_out)
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.detach()
    assert w.abs().max() <= bound and layer.bias.detach().abs().max() <= bound
    n = w[0].numel()
    variance = bound**2 / 3
    # Var of a squared U(-b, b) draw: E[x^4] - (b^2/3)^2 = b^4/5 - b^4/9
    se = math.sqrt((bound**4 / 5 - bound**4 / 9) / n)
    for e in range(members):
        assert abs(w[e].pow(2).mean().item() - variance) < 5 * se
        assert abs(w[e].mean().item()) < 5 * math.sqrt(variance / n)
    assert not torch.equal(w[0], w[1])  # members start apart


def test_detached_weights_pass_gradient_to_the_action_only() -> None:
    critic = EnsembleQ(OBS_DIM, ACT_DIM, HIDDEN)
    action = torch.randn(B, ACT_DIM, requires_grad=True)
    critic(torch.randn(B, OBS_DIM), action, detach_params=True).sum().backward()
    assert action.grad is not None and action.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())
