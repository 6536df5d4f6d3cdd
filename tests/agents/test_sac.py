"""SAC: the losses on hand-made batches, the agent's updates, and the learner's contract."""

import copy
import io
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor
from torch.distributions import Distribution

import agents.sac as sac
from agents.buffer import Batch
from agents.policy_gradients import sac_gradient_metrics
from agents.sac import SAC, SACConfig, SACLearner, actor_loss, alpha_loss, critic_loss
from envs import EnvConfig, make_vector_env
from estimators.diagnostics import DIAGNOSTIC_SEED_OFFSET
from estimators.distributions import LOCATION_SCALE_FAMILIES
from estimators.variance import seeded_rng
from policies.actor import TanhSquashedActor
from policies.critic import EnsembleQ

CPU = torch.device("cpu")
TINY = {"hidden_sizes": [16, 16], "batch_size": 32, "buffer_size": 5000}


def fixed_policy(action: Tensor, log_prob: Tensor) -> Callable[[Tensor], Any]:
    """An actor stand-in whose every draw is (action, log_prob), chosen by hand."""
    dist = SimpleNamespace(rsample_and_log_prob=lambda: (action, log_prob))
    return lambda obs: dist


# ---------------------------------------------------------------------------------- losses


def test_critic_target_is_clipped_double_q_and_bootstraps_only_without_termination() -> None:
    torch.manual_seed(0)
    obs, next_obs, action = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 2)
    # Row 0 continues; row 1 ends in a terminal state; row 2 was cut by the time limit
    # (stored terminated = 0 with its true final observation), so it still bootstraps.
    batch = Batch(obs, action, torch.tensor([1.0, 2.0, 3.0]), next_obs,
                  torch.tensor([0.0, 1.0, 0.0]))
    next_q = torch.tensor([[5.0, 10.0, -1.0], [4.0, 12.0, 2.0]])  # (E, B): min = [4, 10, -1]
    actor = fixed_policy(torch.zeros(3, 2), torch.tensor([-1.0, 0.5, 2.0]))
    critic = EnsembleQ(4, 2, [8])

    loss, info = critic_loss(critic, lambda o, a: next_q, actor, batch, alpha=torch.tensor(0.5),
                             gamma=0.9)

    # V(s') = min Q - alpha log pi = [4.5, 9.75, -2]; y = r + 0.9 (1 - terminated) V(s')
    torch.testing.assert_close(info["q_target"], torch.tensor([1 + 0.9 * 4.5, 2.0, 3 + 0.9 * -2.0]))
    q = critic(obs, action)  # (E, B)
    expected = 0.5 * sum(((q[e] - info["q_target"]) ** 2).mean() for e in range(2))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is not None for p in critic.parameters())


def test_actor_loss_is_alpha_log_pi_minus_min_q_without_critic_weight_gradients() -> None:
    torch.manual_seed(0)
    actor, critic = TanhSquashedActor(4, 2, [8]), EnsembleQ(4, 2, [8])
    obs, alpha = torch.randn(16, 4), torch.tensor(0.3)

    torch.manual_seed(1)
    loss, info = actor_loss(actor, critic, obs, alpha)
    torch.manual_seed(1)  # the same noise draw, by hand
    action, log_prob = actor(obs).rsample_and_log_prob()
    expected = (alpha * log_prob - critic(obs, action).amin(dim=0)).mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(info["log_prob"], log_prob.detach())

    critic.zero_grad(set_to_none=True)
    loss.backward()
    assert all(p.grad is None for p in critic.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in actor.parameters())


@pytest.mark.parametrize(("log_prob", "alpha_grows"), [(3.0, True), (-3.0, False)])
def test_alpha_grows_when_entropy_is_below_target_and_shrinks_above(log_prob: float,
                                                                    alpha_grows: bool) -> None:
    # entropy estimate H = -E[log pi] = -3 (below the target -1) or 3 (above it)
    log_alpha = torch.zeros((), requires_grad=True)
    loss, _ = alpha_loss(log_alpha, torch.full((8,), log_prob), target_entropy=-1.0)
    loss.backward()
    assert log_alpha.grad == pytest.approx(-log_prob - (-1.0))  # dJ/dlog_alpha = H - target
    with torch.no_grad():
        log_alpha -= 0.1 * log_alpha.grad  # one descent step
    assert (log_alpha.item() > 0) == alpha_grows


# ---------------------------------------------------------------------------------- agent


def random_batch(n: int = 32, obs_dim: int = 3, act_dim: int = 1) -> Batch:
    return Batch(torch.randn(n, obs_dim), torch.rand(n, act_dim) * 2 - 1, torch.randn(n),
                 torch.randn(n, obs_dim), (torch.rand(n) < 0.1).float())


def test_polyak_update_equals_a_plain_loop() -> None:
    torch.manual_seed(0)
    agent = SAC(3, 1, SACConfig(tau=0.1, **TINY), CPU)
    with torch.no_grad():
        for p in agent.critic.parameters():
            p.add_(torch.randn_like(p))
    before = [t.clone() for t in agent.target_critic.parameters()]
    agent.update_targets()
    for old, online, new in zip(before, agent.critic.parameters(), agent.target_critic.parameters(),
                                strict=True):
        torch.testing.assert_close(new, (1 - 0.1) * old + 0.1 * online.detach())


def reference_sac_step(agent: SAC, optimizers: dict[str, torch.optim.Optimizer],
                       batch: Batch) -> None:
    """One SAC step written plainly: each critic's loss summed by hand, three separate plain
    Adam optimizers with a backward pass each, the Polyak update as a loop over tensors."""
    cfg, actor, critic, target = agent.config, agent.actor, agent.critic, agent.target_critic
    alpha = agent.log_alpha.detach().exp()
    with torch.no_grad():
        next_action, next_log_prob = actor(batch.next_obs).rsample_and_log_prob()
        next_q = torch.minimum(*target(batch.next_obs, next_action))
        y = batch.reward + cfg.gamma * (1 - batch.terminated) * (next_q - alpha * next_log_prob)
    q = critic(batch.obs, batch.action)
    loss_q = 0.5 * ((q[0] - y) ** 2).mean() + 0.5 * ((q[1] - y) ** 2).mean()
    optimizers["critic"].zero_grad()
    loss_q.backward()
    optimizers["critic"].step()

    action, log_prob = actor(batch.obs).rsample_and_log_prob()
    loss_pi = (alpha * log_prob - torch.minimum(*critic(batch.obs, action))).mean()
    optimizers["actor"].zero_grad()
    loss_pi.backward()
    optimizers["actor"].step()
    loss_alpha = -(agent.log_alpha * (log_prob.detach() + agent.target_entropy)).mean()
    optimizers["alpha"].zero_grad()
    loss_alpha.backward()
    optimizers["alpha"].step()

    with torch.no_grad():
        for t, o in zip(target.parameters(), critic.parameters(), strict=True):
            t.copy_((1 - cfg.tau) * t + cfg.tau * o)


@pytest.mark.parametrize("family", list(LOCATION_SCALE_FAMILIES))
def test_fast_update_matches_the_plain_reference_step(family: str) -> None:
    """The fused paths (one batched critic pass, fused MSE, one Adam and one backward for actor
    and alpha, the foreach Polyak lerp, the hand-written backward of every policy family)
    compute the same parameters as the plain step."""
    torch.manual_seed(0)
    fast = SAC(3, 2, SACConfig(tau=0.1, lr=1e-2, policy_distribution=family, **TINY), CPU)
    assert fast.actor.family == family
    plain = copy.deepcopy(fast)
    optimizers = {"critic": torch.optim.Adam(plain.critic.parameters(), lr=1e-2, foreach=False),
                  "actor": torch.optim.Adam(plain.actor.parameters(), lr=1e-2, foreach=False),
                  "alpha": torch.optim.Adam([plain.log_alpha], lr=1e-2, foreach=False)}
    for step in range(3):
        batch = random_batch(act_dim=2)
        torch.manual_seed(100 + step)
        fast.update(batch, log=False)
        torch.manual_seed(100 + step)  # the same noise draws in the same order
        reference_sac_step(plain, optimizers, batch)
    for name in ("actor", "critic", "target_critic"):
        for (key, got), want in zip(getattr(fast, name).state_dict().items(),
                                    getattr(plain, name).state_dict().values(), strict=True):
            torch.testing.assert_close(got, want, msg=f"{name}.{key} differs")
    torch.testing.assert_close(fast.log_alpha, plain.log_alpha)
    assert fast.log_alpha.item() != 0.0  # alpha moved, so its update was compared too


def run_updates(config: SACConfig, steps: int = 3, log: bool = True,
                act_dim: int = 2) -> tuple[SAC, list[dict[str, float]]]:
    """A SAC (seeded init) after `steps` updates on seeded random batches, and what each logged."""
    torch.manual_seed(0)
    agent = SAC(3, act_dim, config, CPU)
    logged = []
    for step in range(steps):
        batch = random_batch(act_dim=act_dim)
        torch.manual_seed(100 + step)  # the same noise draws for every configuration
        logged.append(agent.update(batch, log=log))
    return agent, logged


def assert_same_agents(got: SAC, want: SAC) -> None:
    for name in ("actor", "critic", "target_critic"):
        for (key, a), b in zip(getattr(got, name).state_dict().items(),
                               getattr(want, name).state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, msg=f"{name}.{key} differs")
    torch.testing.assert_close(got.log_alpha, want.log_alpha)


@pytest.mark.parametrize(("autotune_alpha", "family", "act_dim"), [
    (True, "normal", 2), (False, "normal", 2), (True, "laplace", 2), (True, "logistic", 2),
    (True, "normal", 3)])
def test_explicit_gradients_equal_autograd_on_the_loss_functions(autotune_alpha: bool,
                                                                 family: str, act_dim: int) -> None:
    """backprop: explicit (hand-written backward passes) takes the same steps and logs the same
    figures as backprop: autograd (torch.autograd on critic_loss, actor_loss, alpha_loss).
    With 3 action dims the policy's (B, 2A) output is one that splitting into 3 chunks instead
    of 2 would cut elsewhere (for A = 1, 2 the second chunk is the same)."""
    config = {"lr": 1e-2, "autotune_alpha": autotune_alpha, "policy_distribution": family, **TINY}
    explicit, explicit_logs = run_updates(SACConfig(backprop="explicit", **config),
                                          act_dim=act_dim)
    autograd, autograd_logs = run_updates(SACConfig(backprop="autograd", **config),
                                          act_dim=act_dim)
    assert_same_agents(explicit, autograd)
    for got, want in zip(explicit_logs, autograd_logs, strict=True):
        assert got.keys() == want.keys()
        assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def q_penalized_critic_loss(critic, target_critic, actor, batch, alpha, gamma):
    """An edit a researcher might try: critic_loss plus a penalty mean(Q^2) on the Q values."""
    loss, info = real_critic_loss(critic, target_critic, actor, batch, alpha, gamma)
    return loss + critic(batch.obs, batch.action).square().mean(), info


real_critic_loss = critic_loss


@pytest.mark.parametrize("compile_", [False, True])
def test_an_edited_critic_loss_stops_the_explicit_path_before_any_step(
    monkeypatch: pytest.MonkeyPatch, compile_: bool
) -> None:
    """The default backprop: explicit does not call critic_loss; its first update compares its
    gradients with autograd on critic_loss, so an edited loss stops it, naming the loss, with the
    critics not yet stepped (compiled too)."""
    monkeypatch.setattr(sac, "critic_loss", q_penalized_critic_loss)
    torch.manual_seed(0)
    agent = SAC(3, 2, SACConfig(compile=compile_, **TINY), CPU)
    before = copy.deepcopy(agent.critic.state_dict())
    with pytest.raises(sac.GradientCheckError,
                       match=r"^the gradient of critic_loss differs from its "
                             r"hand-written backward pass critic_gradients .*"
                             r"set agent.backprop=autograd"):
        agent.update(random_batch(act_dim=2), log=False)
    for key, value in agent.critic.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


@pytest.mark.parametrize("autotune_alpha", [True, False])
def test_an_edited_actor_loss_stops_the_explicit_path(monkeypatch: pytest.MonkeyPatch,
                                                      autotune_alpha: bool) -> None:
    def entropy_doubled(actor, critic, obs, alpha):
        return real_actor_loss(actor, critic, obs, 2 * alpha)

    real_actor_loss = actor_loss
    monkeypatch.setattr(sac, "actor_loss", entropy_doubled)
    agent = SAC(3, 2, SACConfig(autotune_alpha=autotune_alpha, **TINY), CPU)
    loss = "actor_loss + alpha_loss" if autotune_alpha else "actor_loss"
    with pytest.raises(sac.GradientCheckError,
                       match=rf"^the gradient of {re.escape(loss)} differs .*actor_gradients "
                             r"\(in actor\.net\.0\.weight"):
        agent.update(random_batch(act_dim=2), log=False)


def test_an_edited_alpha_loss_stops_the_explicit_path_naming_log_alpha(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    def halved(log_alpha, log_prob, target_entropy):
        loss, info = real_alpha_loss(log_alpha, log_prob, target_entropy)
        return 0.5 * loss, info

    real_alpha_loss = alpha_loss
    monkeypatch.setattr(sac, "alpha_loss", halved)
    agent = SAC(3, 2, SACConfig(**TINY), CPU)
    with pytest.raises(sac.GradientCheckError,
                       match=r"^the gradient of actor_loss \+ alpha_loss differs .*"
                             r"actor_gradients \(in log_alpha\):"):
        agent.update(random_batch(act_dim=2), log=False)


def test_the_gradient_check_is_relative_per_tensor_with_a_floor_and_leaves_non_finite_to_the_nan_guard() -> None:  # noqa: E501
    """||g - w|| <= 1e-3 ||w|| + 1e-6 per tensor: 5e-4 relative passes and 2e-3 fails at any norm,
    an all-zero gradient (a dead unit) passes, only the failing tensor is named, a NaN in the
    explicit gradient fails, and a non-finite autograd gradient is not compared (the run's NaN
    guard stops it, with its own message)."""
    w = torch.full((4,), 2.5)  # norm 5
    ok, big = torch.ones(3), torch.full((2,), 300.0)
    sac.check_gradients([w * (1 + 5e-4), big * (1 + 5e-4)], [w, big], ["a", "b"], "L", "by_hand")
    with pytest.raises(sac.GradientCheckError,
                       match=r"^the gradient of L differs from its hand-written backward "
                             r"pass by_hand \(in b\):"):
        sac.check_gradients([ok, big * (1 + 2e-3)], [ok, big], ["a", "b"], "L", "by_hand")
    with pytest.raises(sac.GradientCheckError, match=r"\(in a, b\)"):
        sac.check_gradients([w * (1 + 2e-3), -big], [w, big], ["a", "b"], "L", "by_hand")
    sac.check_gradients([torch.zeros(3)], [torch.zeros(3)], ["a"], "L", "by_hand")
    # 8.7e-7 < 1e-6
    sac.check_gradients([torch.full((3,), 5e-7)], [torch.zeros(3)], ["a"], "L", "by_hand")
    with pytest.raises(sac.GradientCheckError):
        sac.check_gradients([torch.tensor([float("nan"), 1.0])], [torch.ones(2)], ["a"], "L",
                            "by_hand")
    sac.check_gradients([torch.zeros(2)], [torch.tensor([float("inf"), 0.0])], ["a"], "L",
                        "by_hand")


def test_the_check_passes_the_unedited_losses_on_every_resume_and_leaves_the_noise_alone() -> None:
    """The check runs once per SAC object (each run, each resume) and draws no noise of its
    own: the steps equal those of backprop: autograd, which has no check."""
    checked, _ = run_updates(SACConfig(lr=1e-2, **TINY), steps=2)
    assert checked._checked
    unchecked, _ = run_updates(SACConfig(lr=1e-2, backprop="autograd", **TINY), steps=2)
    assert_same_agents(checked, unchecked)


def test_with_backprop_autograd_the_edited_critic_loss_is_what_trains(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adam's first step is -lr g / (|g| + eps) per parameter (bias-corrected moments m = g,
    v = g^2): the critics move along the gradient of the edited loss, on the same noise."""
    monkeypatch.setattr(sac, "critic_loss", q_penalized_critic_loss)
    lr = 1e-3
    torch.manual_seed(0)
    agent = SAC(3, 2, SACConfig(lr=lr, backprop="autograd", **TINY), CPU)
    batch = random_batch(act_dim=2)
    before = [p.detach().clone() for p in agent.critic.parameters()]

    def first_adam_step(loss_fn: Callable[..., Any]) -> list[Tensor]:
        torch.manual_seed(7)  # the noise of a' ~ pi(. | s') in the target
        loss, _ = loss_fn(agent.critic, agent.target_critic, agent.actor, batch, agent.alpha,
                          agent.config.gamma)
        grads = torch.autograd.grad(loss, list(agent.critic.parameters()))
        return [-lr * g / (g.abs() + 1e-8) for g in grads]

    edited, unedited = first_adam_step(q_penalized_critic_loss), first_adam_step(real_critic_loss)
    torch.manual_seed(7)
    agent.update(batch, log=False)
    for p, p0, step in zip(agent.critic.parameters(), before, edited, strict=True):
        torch.testing.assert_close(p.detach() - p0, step, rtol=1e-3, atol=1e-7)
    flipped = sum(int((a.sign() != b.sign()).sum()) for a, b in zip(edited, unedited, strict=True))
    assert flipped > 0, "the edit should change the direction of some parameters' steps"


def test_a_network_the_explicit_path_cannot_differentiate_falls_back_to_autograd_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class TanhActor(TanhSquashedActor):  # the MLP with tanh activations instead of ReLU
        def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int],
                     family: str) -> None:
            super().__init__(obs_dim, act_dim, hidden_sizes, family)
            for index, module in enumerate(self.net):
                if isinstance(module, torch.nn.ReLU):
                    self.net[index] = torch.nn.Tanh()

    monkeypatch.setattr(sac, "TanhSquashedActor", TanhActor)
    with pytest.warns(RuntimeWarning,
                      match=r"backprop: explicit cannot differentiate this network \(an MLP of "
                            r"Linear -> Tanh -> Linear -> Tanh -> Linear, not Linear with ReLU"
                            r".*\); using autograd on the loss functions$"):
        agent = SAC(3, 2, SACConfig(**TINY), CPU)
    assert not agent.explicit
    agent.update(random_batch(act_dim=2), log=False)  # trains, through autograd on the losses


# a fallback to eager fails the test
@pytest.mark.filterwarnings("error:torch.compile of:RuntimeWarning")
def test_compiled_gradients_equal_eager() -> None:
    """compile: true runs torch.compile'd gradient functions; they draw the same noise and take
    the same steps as the eager ones (up to float rounding of fused kernels). Compiling must
    succeed here: its fallback warning is an error, or this would compare eager with eager."""
    validate_args = Distribution._validate_args
    compiled, _ = run_updates(SACConfig(lr=1e-2, compile=True, **TINY), log=False)
    # torch.compile switches torch.distributions' argument checks off process-wide;
    # SAC restores them
    assert Distribution._validate_args == validate_args
    eager, _ = run_updates(SACConfig(lr=1e-2, compile=False, **TINY), log=False)
    assert_same_agents(compiled, eager)


def test_a_failing_compile_warns_once_and_runs_eagerly(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_compile(fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
        def fail(*args: Any, **kw: Any) -> Any:
            raise RuntimeError("no C++ compiler found\nsecond line of the report")
        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning,
                      match=r"torch.compile of (critic|actor)_gradients failed \(RuntimeError: "
                            r"no C\+\+ compiler found\); running it eagerly") as warned:
        fallen_back, _ = run_updates(SACConfig(lr=1e-2, compile=True, **TINY), log=False)
    assert len(warned) == 2  # once per compiled function, not once per update
    eager, _ = run_updates(SACConfig(lr=1e-2, compile=False, **TINY), log=False)
    assert_same_agents(fallen_back, eager)


def affine(x: float, *, scale: float) -> float:
    return scale * x


def test_a_compiled_function_gets_every_argument_whether_compiled_or_fallen_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword arguments reach the compiled function (no fallback warning) and the eager one;
    an error without a message still gives a one-line warning, at the caller's line."""
    monkeypatch.setattr(torch, "compile", lambda fn, **options: fn)  # "compiled": fn itself
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sac.compile_or_eager(affine)(2.0, scale=3.0) == 6.0

    def broken_compile(fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError()  # no message at all
        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    call = sac.compile_or_eager(affine)
    with pytest.warns(RuntimeWarning) as warned:
        assert call(2.0, scale=3.0) == 6.0
    (warning,) = warned
    assert str(warning.message) == ("torch.compile of affine failed (RuntimeError: ); running it "
                                    "eagerly")
    assert warning.filename == __file__  # stacklevel: the line that called it, not sac.py
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert call(1.0, scale=5.0) == 5.0  # eager from then on, without another warning


def test_update_logs_namespaced_floats_only_when_asked() -> None:
    torch.manual_seed(0)
    agent = SAC(3, 1, SACConfig(**TINY), CPU)
    assert agent.target_entropy == -1.0  # -|A|
    assert agent.update(random_batch(), log=False) == {}
    metrics = agent.update(random_batch(), log=True)
    assert set(metrics) == {"loss/critic", "loss/actor", "loss/alpha", "stats/alpha",
                            "stats/entropy", "stats/q_mean", "stats/log_std_mean"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert agent.num_updates == 2
    assert agent.alpha.item() != 1.0  # tuned


@pytest.mark.parametrize("backprop", ["explicit", "autograd"])
def test_an_update_labels_its_phases_for_the_profiler(backprop: str) -> None:
    """benchmarks/sac_throughput.py times the phases by these record_function names."""
    agent = SAC(3, 1, SACConfig(backprop=backprop, **TINY), CPU)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        agent.update(random_batch(), log=False)
    labels = {event.key for event in prof.key_averages() if event.key.startswith("sac/")}
    assert labels == {"sac/critic_update", "sac/actor_update", "sac/target_update"}


def test_gradient_diagnostics_measure_the_updates_policy_on_a_private_rng_and_leave_training_alone(
) -> None:
    """With grad_variance_every 2, the second update logs sac_gradient_metrics of the actor and
    critics it starts from, at its batch's states and alpha, drawn on the RNG seeded from
    (seed, update); the first logs none; both leave the parameters as a run without them."""
    batches = [random_batch(), random_batch()]
    torch.manual_seed(0)
    agent = SAC(3, 1, SACConfig(**TINY), CPU, grad_variance_every=2, seed=5)
    torch.manual_seed(0)
    plain = SAC(3, 1, SACConfig(**TINY), CPU)
    torch.manual_seed(1)
    assert not any(key.startswith("grad/") for key in agent.update(batches[0], log=True))
    before = copy.deepcopy(agent)
    torch.manual_seed(2)
    logged = agent.update(batches[1], log=True)
    with seeded_rng(5 * DIAGNOSTIC_SEED_OFFSET + 2, CPU):
        expected = sac_gradient_metrics(before.actor, before.critic, batches[1].obs, before.alpha)
    assert {key: v for key, v in logged.items() if key.startswith("grad/")} == expected
    for seed, batch in zip((1, 2), batches, strict=True):
        torch.manual_seed(seed)
        plain.update(batch, log=True)
    assert_same_agents(agent, plain)


@pytest.mark.parametrize("autotune_alpha", [True, False])
def test_the_logged_figures_are_those_of_the_losses_the_update_minimizes(
        autotune_alpha: bool) -> None:
    """One autograd update, replayed by hand with the same noise: the critic loss at the
    starting parameters, then the actor (and alpha) losses against the stepped critics, all at
    the starting alpha. The logged figures are those losses, -mean log pi of the actor's draw,
    the critics' mean Q on the batch, and the mean log of the policy's scale."""
    config = SACConfig(backprop="autograd", autotune_alpha=autotune_alpha, init_alpha=0.3, **TINY)
    torch.manual_seed(0)
    agent, batch = SAC(3, 1, config, CPU), random_batch()
    twin = copy.deepcopy(agent)
    torch.manual_seed(1)
    logged = agent.update(batch, log=True)

    torch.manual_seed(1)
    alpha = twin.alpha
    loss_q, info_q = critic_loss(twin.critic, twin.target_critic, twin.actor, batch, alpha,
                                 config.gamma)
    twin.critic_optimizer.zero_grad()
    loss_q.backward()
    twin.critic_optimizer.step()
    loss_pi, info_pi = actor_loss(twin.actor, twin.critic, batch.obs, alpha)
    expected = {"loss/critic": loss_q.item(), "loss/actor": loss_pi.item(),
                "stats/alpha": 0.3, "stats/entropy": -info_pi["log_prob"].mean().item(),
                "stats/q_mean": info_q["q"].mean().item(),
                "stats/log_std_mean": info_pi["scale"].log().mean().item()}
    if autotune_alpha:
        expected["loss/alpha"] = alpha_loss(twin.log_alpha, info_pi["log_prob"],
                                            twin.target_entropy)[0].item()
    assert logged == pytest.approx(expected, rel=1e-6)


def test_the_agent_is_built_as_configured() -> None:
    """num_critics critics and target critics (the targets never take gradients), the configured
    target entropy (else -|A|), log_alpha = log init_alpha, the lr of both optimizers, and
    log_alpha stepped with the actor only when alpha is tuned."""
    config = SACConfig(num_critics=3, target_entropy=-0.5, init_alpha=0.25, lr=2e-3, **TINY)
    agent = SAC(3, 2, config, CPU)
    obs, action = torch.randn(5, 3), torch.rand(5, 2) * 2 - 1
    assert agent.critic(obs, action).shape == agent.target_critic(obs, action).shape == (3, 5)
    assert not any(p.requires_grad for p in agent.target_critic.parameters())
    assert agent.target_entropy == -0.5
    assert agent.log_alpha.item() == pytest.approx(math.log(0.25)) and agent.log_alpha.requires_grad
    for optimizer in (agent.critic_optimizer, agent.policy_optimizer):
        assert [group["lr"] for group in optimizer.param_groups] == [2e-3]
    assert any(p is agent.log_alpha for p in agent.policy_optimizer.param_groups[0]["params"])
    fixed = SAC(3, 2, SACConfig(autotune_alpha=False, **TINY), CPU)
    assert fixed.target_entropy == -2.0 and not fixed.log_alpha.requires_grad
    assert not any(p is fixed.log_alpha for p in fixed.policy_optimizer.param_groups[0]["params"])


def test_fixed_alpha_stays_at_init_alpha() -> None:
    torch.manual_seed(0)
    agent = SAC(3, 1, SACConfig(autotune_alpha=False, init_alpha=0.2, **TINY), CPU)
    metrics = agent.update(random_batch(), log=True)
    assert "loss/alpha" not in metrics
    assert metrics["stats/alpha"] == pytest.approx(0.2)
    agent.update(random_batch(), log=False)
    assert agent.alpha.item() == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", -3, "batch_size must be a positive integer, got -3"),
        ("lr", 0.0, "lr must be > 0, got 0.0"),
        ("gamma", 1.5, r"gamma must be in \[0, 1\], got 1.5"),
        ("tau", 0.0, r"tau must be in \(0, 1\], got 0.0"),
        ("learning_starts", -1, "learning_starts must be >= 0, got -1"),
        ("init_alpha", -0.1, "init_alpha must be > 0, got -0.1"),
        ("hidden_sizes", [256, 0], r"hidden_sizes must be positive integers, got \[256, 0\]"),
        ("target_entropy", math.inf, "target_entropy must be a finite number or null, got inf"),
        ("backprop", "numeric", "backprop must be one of explicit, autograd, got 'numeric'"),
        ("buffer_size", 0, "buffer_size must be a positive integer, got 0"),
        ("train_freq", 0, "train_freq must be a positive integer, got 0"),
        ("gradient_steps", 0, "gradient_steps must be a positive integer, got 0"),
        ("num_critics", 0, "num_critics must be a positive integer, got 0"),
        ("gamma", -0.5, r"gamma must be in \[0, 1\], got -0.5"),
        ("tau", 1.5, r"tau must be in \(0, 1\], got 1.5"),
        ("init_alpha", 0.0, "init_alpha must be > 0, got 0.0"),
        ("target_entropy", math.nan, "target_entropy must be a finite number or null, got nan"),
    ],
)
def test_config_range_checks_name_the_field_and_the_allowed_range(field: str, value: Any,
                                                                  message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        SACConfig(**{field: value})


@pytest.mark.parametrize("values", [
    {"learning_starts": 0},  # the policy acts from the first step
    {"gamma": 0.0}, {"gamma": 1.0},
    {"tau": 1.0},  # the targets copied at every update
    {"hidden_sizes": [1]}, {"hidden_sizes": []},
    {"init_alpha": 1e-8}, {"target_entropy": None}, {"target_entropy": -6.0},
    {"batch_size": 1, "buffer_size": 1, "train_freq": 1, "gradient_steps": 1, "num_critics": 1},
    {"compile": True, "backprop": "explicit"},
], ids=str)
def test_config_accepts_the_ends_of_every_range(values: dict[str, Any]) -> None:
    config = SACConfig(**values)
    assert all(getattr(config, k) == v for k, v in values.items())


@pytest.mark.parametrize("compile_", [True, False])
def test_the_gradient_functions_are_compiled_only_when_asked(
        monkeypatch: pytest.MonkeyPatch, compile_: bool) -> None:
    compiled: list[str] = []
    monkeypatch.setattr(sac, "compile_or_eager", lambda fn: compiled.append(fn.__name__) or fn)
    SAC(3, 1, SACConfig(compile=compile_, **TINY), CPU)
    assert compiled == (["critic_gradients", "actor_gradients"] if compile_ else [])


def test_compile_needs_the_explicit_gradients() -> None:
    with pytest.raises(ValueError, match=r"^compile: true needs backprop: explicit \(compiling "
                                         r"the autograd losses was slower\)$"):
        SACConfig(compile=True, backprop="autograd")


# ---------------------------------------------------------------------------------- learner


def learner(env_id: str = "Pendulum-v1", num_envs: int = 1, seed: int = 0,
            **agent: Any) -> SACLearner:
    return SACLearner(EnvConfig(env_id, num_envs), SACConfig(**{**TINY, **agent}), seed, CPU,
                      eval_episodes=1)


def test_before_learning_starts_actions_are_the_seeded_action_space_samples() -> None:
    sac = learner(num_envs=2, seed=3, learning_starts=20)
    reference = make_vector_env("Pendulum-v1", num_envs=2, seed=3)
    for _ in range(10):
        sac.advance(log=False)
    expected = np.concatenate([reference.action_space.sample() for _ in range(10)])  # (20, 1)
    assert np.array_equal(sac.buffer.storage.action[:20].numpy(), expected)
    assert sac.step == 20 and sac.agent.num_updates == 0
    sac.advance(log=False)  # step 22 > learning_starts: the first update
    assert sac.agent.num_updates == 1


def pendulum_successor(obs: np.ndarray, action: float) -> np.ndarray:
    """Pendulum's dynamics from an observation [cos th, sin th, thdot] and a unit action."""
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=0)
    env.state = np.array([math.atan2(obs[1], obs[0]), obs[2]])
    return env.step(np.array([2.0 * action]))[0]  # the unit action rescaled to the torque bound 2


def test_truncated_transitions_store_the_true_final_observation_and_no_termination() -> None:
    sac = learner(num_envs=2, learning_starts=10_000)  # random actions throughout
    for _ in range(199):
        sac.advance(log=False)
    metrics = sac.advance(log=True)  # step 200 of both sub-envs: the time limit, then auto-reset
    s = sac.buffer.storage
    for row in range(400):  # rows 2t + i: every next_obs is the successor of obs, the last ones too
        np.testing.assert_allclose(s.next_obs[row].numpy(),
                                   pendulum_successor(s.obs[row].numpy(), s.action[row, 0].item()),
                                   atol=1e-4)
    assert not torch.allclose(s.next_obs[398:400], sac.task.obs, atol=1e-2)  # the reset obs differ
    assert torch.all(s.terminated[:400] == 0)
    returns = s.reward[:400].view(200, 2).sum(0)  # (200 steps, 2 sub-envs) -> (2,)
    assert metrics["train/episode_return"] == pytest.approx(returns.mean().item(), rel=1e-5)
    assert metrics["train/episode_length"] == 200.0


def test_terminal_transitions_store_the_final_observation_with_the_terminated_flag() -> None:
    # random actions fall within ~10 steps
    sac = learner("InvertedPendulum-v5", learning_starts=10_000)
    for _ in range(100):
        sac.advance(log=False)
    s = sac.buffer.storage
    terminated = s.terminated[:100] == 1
    assert terminated.sum() >= 3
    # InvertedPendulum terminates when the pole angle |obs[1]| exceeds 0.2
    assert torch.all(s.next_obs[:100][terminated, 1].abs() > 0.2)
    assert torch.all(s.next_obs[:100][~terminated, 1].abs() <= 0.2)


def test_advance_logs_losses_and_episode_figures_and_evaluate_the_eval_keys() -> None:
    torch.manual_seed(0)
    sac = learner(learning_starts=10)
    assert sac.advance(log=False) == {}
    while sac.step < 199:
        sac.advance(log=False)
    metrics = sac.advance(log=True)
    assert {"loss/critic", "loss/actor", "stats/alpha", "train/episode_return",
            "train/episode_length"} <= set(metrics)
    evaluation = sac.evaluate()
    assert set(evaluation) == {"eval/return_mean", "eval/return_std", "eval/length_mean",
                               "eval/episodes"}
    assert evaluation["eval/episodes"] == 1.0 and evaluation["eval/length_mean"] == 200.0
    assert sac.summary() == {"env_id": "Pendulum-v1"} and sac.write_figures(None) == []  # type: ignore[arg-type]


def test_the_learner_builds_its_task_and_agent_as_asked(tmp_path: Path) -> None:
    """No gradient diagnostics unless asked; when asked, at the learner's seed and interval;
    evaluations filmed into video_dir named by the step; the env loop's profiler labels under
    sac/ (benchmarks/sac_throughput.py reads them by name)."""
    assert learner().agent.grad_diagnostics.every == 0  # grad_variance_every's default
    sac = SACLearner(EnvConfig("Pendulum-v1", 1), SACConfig(**{**TINY, "learning_starts": 5}),
                     seed=3, device=CPU, eval_episodes=1, grad_variance_every=4,
                     video_dir=tmp_path)
    diagnostics = sac.agent.grad_diagnostics
    assert (diagnostics.every, diagnostics.seed, diagnostics.device) == (4, 3, CPU)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(8):
            sac.advance(log=False)
    labels = {event.key for event in prof.key_averages() if event.key.startswith("sac/")}
    assert {"sac/act", "sac/env_step", "sac/sample"} <= labels
    sac.evaluate()
    video = sac.pop_video()
    assert video == tmp_path / "step_8.mp4" and video.stat().st_size > 0
    sac.close()


def test_learner_rejects_what_it_cannot_run() -> None:
    with pytest.raises(ValueError, match=r"agent.buffer_size \(2\) must be >= env.num_envs \(4\)"):
        SACLearner(EnvConfig(num_envs=4), SACConfig(buffer_size=2, batch_size=2), 0, CPU,
                   eval_episodes=1)


def run_to(sac: SACLearner, steps: int) -> None:
    while sac.step < steps:
        sac.advance(log=sac.step % 40 == 0)


def test_resume_from_state_dict_is_bit_identical() -> None:
    # 2 sub-envs, updates every 2nd advance with 2 gradient steps; the save falls before the
    # episodes' time limit (200 steps), so the auto-reset happens after the resume.
    config = {"learning_starts": 60, "train_freq": 2, "gradient_steps": 2}
    total, saved_at = 440, 380

    torch.manual_seed(0)
    straight = learner(num_envs=2, **config)
    run_to(straight, total)

    torch.manual_seed(0)
    first = learner(num_envs=2, **config)
    run_to(first, saved_at)
    checkpoint = io.BytesIO()
    # train.py saves the global RNG
    torch.save({"learner": first.state_dict(), "torch_rng": torch.get_rng_state()}, checkpoint)
    checkpoint.seek(0)
    state = torch.load(checkpoint, weights_only=True)
    torch.manual_seed(12345)  # the fresh learner's own init is overwritten by the state
    resumed = learner(num_envs=2, **config)
    resumed.load_state_dict(state["learner"])
    torch.set_rng_state(state["torch_rng"])
    run_to(resumed, total)

    a, b = straight.agent, resumed.agent
    assert a.num_updates == b.num_updates > 0
    for module in ("actor", "critic", "target_critic"):
        for (name, p), q in zip(getattr(a, module).state_dict().items(),
                                getattr(b, module).state_dict().values(), strict=True):
            assert torch.equal(p, q), f"{module}.{name}"
    assert torch.equal(a.log_alpha, b.log_alpha)
    for x, y in zip(straight.buffer.storage, resumed.buffer.storage, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(straight.task.obs, resumed.task.obs)
    assert straight.evaluate() == resumed.evaluate()
