"""The tanh-Gaussian actor: bounded actions, smoothly bounded log-std, deterministic mode."""

import torch

from estimators.distributions import TanhSquashed
from policies.actor import TanhSquashedActor


def test_log_std_stays_in_bounds_and_keeps_a_gradient_beyond_them() -> None:
    raw = torch.tensor([-100.0, -6.0, 0.0, 3.0, 100.0], requires_grad=True)
    log_std = TanhSquashedActor.bound_log_std(raw)
    lo, hi = TanhSquashedActor.LOG_STD_MIN, TanhSquashedActor.LOG_STD_MAX
    assert torch.all(log_std >= lo) and torch.all(log_std <= hi)
    assert torch.all(log_std[1:] >= log_std[:-1])  # monotone
    torch.testing.assert_close(log_std[2], torch.tensor((lo + hi) / 2))
    log_std[1:4].sum().backward()
    # raw = 3 maps to log_std ~ 1.98, near the top; a hard clamp would pass no gradient there.
    assert torch.all(raw.grad[1:4] > 0)


def test_actor_returns_a_tanh_normal_on_the_unit_box() -> None:
    torch.manual_seed(0)
    actor = TanhSquashedActor(obs_dim=3, act_dim=2, hidden_sizes=[16, 16])
    obs = torch.randn(10, 3) * 100  # large inputs: saturating actions must stay in [-1, 1]
    dist = actor(obs)
    assert isinstance(dist, TanhSquashed)
    action, log_prob = dist.rsample_and_log_prob()
    assert action.shape == (10, 2) and log_prob.shape == (10,)
    assert torch.all(action.abs() <= 1) and torch.all(torch.isfinite(log_prob))


def test_deterministic_action_is_the_mode_tanh_loc() -> None:
    torch.manual_seed(0)
    actor = TanhSquashedActor(obs_dim=3, act_dim=2, hidden_sizes=[16])
    obs = torch.randn(4, 3)
    loc = actor.net(obs)[:, :2]
    torch.testing.assert_close(actor.act(obs, deterministic=True), torch.tanh(loc))
    sampled = actor.act(obs, deterministic=False)
    assert not sampled.requires_grad and not torch.equal(sampled, torch.tanh(loc))


def test_bound_log_std_grad_is_the_derivative_of_the_bound() -> None:
    raw = torch.linspace(-6.0, 6.0, 25, requires_grad=True)
    (want,) = torch.autograd.grad(TanhSquashedActor.bound_log_std(raw).sum(), [raw])
    torch.testing.assert_close(TanhSquashedActor.bound_log_std_grad(raw.detach()), want)


def test_any_leading_dims_act_row_by_row_with_three_action_dims() -> None:
    """(T, N, obs_dim) gives the policies of the T*N rows; loc is the first A = 3 of the 2A
    outputs, also in `mode` (2 action dims would not tell the first half from the first third)."""
    torch.manual_seed(0)
    actor = TanhSquashedActor(obs_dim=3, act_dim=3, hidden_sizes=[16])
    obs = torch.randn(2, 4, 3)
    dist, flat = actor(obs), actor(obs.reshape(8, 3))
    torch.testing.assert_close(dist.loc, flat.loc.reshape(2, 4, 3))
    torch.testing.assert_close(dist.scale, flat.scale.reshape(2, 4, 3))
    torch.testing.assert_close(dist.loc, actor.net(obs)[..., :3])
    torch.testing.assert_close(actor.mode(obs), torch.tanh(actor.net(obs)[..., :3]))
    assert actor.act(obs, deterministic=True).shape == (2, 4, 3)


def test_the_action_bounds_are_buffers_outside_the_state_dict() -> None:
    """action_scale and action_bias move with the module but are not saved: a checkpoint holds
    the network only, and agents.load_policy sets the bounds of the task it acts in."""
    actor = TanhSquashedActor(obs_dim=3, act_dim=2, hidden_sizes=[16])
    assert {name for name, _ in actor.named_buffers()} == {"action_scale", "action_bias"}
    assert set(actor.state_dict()) == {name for name, _ in actor.named_parameters()}
