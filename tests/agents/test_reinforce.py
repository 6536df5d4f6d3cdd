"""REINFORCE: reward-to-go and episode ends by hand, the learner's contract, exact resume."""

import io
import math
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch
import yaml
from torch import Tensor, nn
from torch.distributions import AffineTransform, SigmoidTransform, TransformedDistribution, Uniform

from agents.reinforce import Reinforce, ReinforceConfig, ReinforceLearner, ScoredBatch
from agents.rollout import Rollout, complete_episode_mask, reward_to_go
from envs import EnvConfig
from policies.actor import TanhSquashedActor
from training.config import RunConfig, build

REPO = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")

# Four steps of three sub-envs, gamma = 1/2. Sub-env 0 runs on past the batch end; sub-env 1
# terminates at step 1; sub-env 2 is truncated by its time limit at step 2.
REWARD = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0], [4.0, 4.0, 4.0]])
TERMINATED = torch.tensor([[0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=torch.bool)
TRUNCATED = torch.tensor([[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.bool)
# V(s') of every step: read only at a truncation (6 at sub-env 2, step 2) and at the batch end
# (10); the 100 after sub-env 1's terminal state must never be used.
NEXT_VALUE = torch.tensor([[0.0, 0.0, 0.0], [0.0, 100.0, 0.0], [0.0, 0.0, 6.0], [10.0, 10.0, 10.0]])


def test_reward_to_go_bootstraps_at_truncation_and_batch_end_but_not_after_termination() -> None:
    returns = reward_to_go(REWARD, TERMINATED, TRUNCATED, NEXT_VALUE, gamma=0.5)
    expected = torch.tensor([
        # G3 = 4 + 10/2 = 9 (cut) ; sub-env 1: G1 = 2 (terminal), G0 = 1 + 2/2 ;
        # sub-env 2: G2 = 3 + 6/2
        [3.875, 2.0, 3.5],
        [5.75, 2.0, 5.0],
        [7.5, 7.5, 6.0],
        [9.0, 9.0, 9.0],
    ])
    torch.testing.assert_close(returns, expected)


def test_reward_to_go_without_a_value_stops_at_every_episode_or_batch_end() -> None:
    returns = reward_to_go(REWARD, TERMINATED, TRUNCATED, torch.zeros_like(REWARD), gamma=0.5)
    expected = torch.tensor([[3.25, 2.0, 2.75], [4.5, 2.0, 3.5], [5.0, 5.0, 3.0], [4.0, 4.0, 4.0]])
    torch.testing.assert_close(returns, expected)


def test_complete_episode_mask_keeps_the_steps_whose_episode_ends_in_the_batch() -> None:
    expected = torch.tensor([[0, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=torch.bool)
    assert torch.equal(complete_episode_mask(TERMINATED, TRUNCATED), expected)


def test_reward_to_go_rejects_mismatched_shapes_naming_all_four() -> None:
    with pytest.raises(ValueError) as error:
        reward_to_go(REWARD, TERMINATED, TRUNCATED[:3], NEXT_VALUE[:, :2], gamma=0.5)
    assert str(error.value) == ("shape mismatch: reward (4, 3) vs terminated (4, 3) "
                                "vs truncated (3, 3) vs next_value (4, 2)")


class FirstCoordinate(nn.Module):
    """A stand-in V(s) = s[0], so the bootstrapped values can be read off the observations."""

    def forward(self, obs: Tensor) -> Tensor:
        return obs[..., 0]  # (..., O) -> (...)


def one_env_rollout(terminated_at_1: bool) -> Rollout:
    """Three steps of one sub-env from observations [t, 0]; step 1 ends the episode (truncated,
    or terminated) with the final observation [5, 0]; the batch ends at step 2 before [7, 0]."""
    obs = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[0.0, 0.0]]])
    next_obs = torch.tensor([[[1.0, 0.0]], [[5.0, 0.0]], [[7.0, 0.0]]])
    ended = torch.tensor([[False], [True], [False]])
    return Rollout(obs=obs, pre_squash=torch.zeros(3, 1, 1), reward=torch.ones(3, 1),
                   terminated=ended if terminated_at_1 else torch.zeros_like(ended),
                   truncated=torch.zeros_like(ended) if terminated_at_1 else ended,
                   next_obs=next_obs)


@pytest.mark.parametrize(("terminated_at_1", "expected"), [
    (False, [1 + 0.5 * 3.5, 1 + 0.5 * 5, 1 + 0.5 * 7]),  # truncated: bootstrap V([5, 0]) = 5
    (True, [1 + 0.5 * 1, 1.0, 1 + 0.5 * 7]),  # terminated: nothing after step 1
])
def test_the_agent_bootstraps_truncated_episodes_from_v_of_the_true_final_observation(
    terminated_at_1: bool, expected: list[float]
) -> None:
    agent = Reinforce(2, 1, ReinforceConfig(gamma=0.5), CPU)
    agent.value = FirstCoordinate()
    batch = agent.score(one_env_rollout(terminated_at_1))
    torch.testing.assert_close(batch.returns, torch.tensor(expected))
    torch.testing.assert_close(batch.baseline, torch.tensor([0.0, 1.0, 0.0]))  # V(s_t), not V(s')


def test_whole_episodes_scores_only_finished_episodes_with_a_leave_one_out_mean() -> None:
    agent = Reinforce(2, 1, ReinforceConfig(gamma=0.5, baseline="mean", whole_episodes=True), CPU)
    batch = agent.score(one_env_rollout(terminated_at_1=True))
    torch.testing.assert_close(batch.returns, torch.tensor([1.5, 1.0]))  # step 2 is cut: dropped
    torch.testing.assert_close(batch.baseline, torch.tensor([1.0, 1.5]))  # the other step's G


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lr", 0.0, "lr must be > 0, got 0.0"),
    ("value_lr", -1e-3, "value_lr must be > 0, got -0.001"),
    ("rollout_steps", 0, "rollout_steps must be a positive integer, got 0"),
    ("value_steps", 0, "value_steps must be a positive integer, got 0"),
    ("gamma", 1.5, "gamma must be in [0, 1], got 1.5"),
    ("gamma", -0.1, "gamma must be in [0, 1], got -0.1"),
    ("hidden_sizes", [64, 0], "hidden_sizes must be positive integers, got [64, 0]"),
    ("entropy_coef", -0.01, "entropy_coef must be >= 0, got -0.01"),
    ("max_grad_norm", 0.0, "max_grad_norm must be > 0 or null, got 0.0"),
    ("baseline", "mean", "whole_episodes must be true with baseline mean: only a learned V can "
                         "bootstrap the episodes the batch cuts (use baseline: value)"),
])
def test_config_rejects_bad_values_with_one_line_naming_the_field(field: str, value: Any,
                                                                  message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ReinforceConfig(**{field: value})


@pytest.mark.parametrize("values", [
    {"gamma": 0.0}, {"gamma": 1.0},  # myopic, and undiscounted episodic returns
    {"hidden_sizes": [1]}, {"hidden_sizes": []},  # one unit; a linear policy
    {"entropy_coef": 0.0}, {"max_grad_norm": None}, {"max_grad_norm": 1e-6},
    {"rollout_steps": 1, "value_steps": 1},
    {"baseline": "none", "whole_episodes": True},
], ids=str)
def test_config_accepts_the_ends_of_every_range(values: dict[str, Any]) -> None:
    config = ReinforceConfig(**values)
    assert all(getattr(config, k) == v for k, v in values.items())


@pytest.mark.parametrize("path", sorted(REPO.glob("configs/reinforce_*.yaml")),
                         ids=lambda p: p.name)
def test_every_reinforce_config_builds(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert raw["kind"] == "reinforce"
    build(EnvConfig, raw.pop("env"), "env")
    build(ReinforceConfig, raw.pop("agent"), "agent")
    build(RunConfig, raw)  # the shared sections


def test_there_are_configs_for_the_three_tasks() -> None:
    ids = {yaml.safe_load(p.read_text())["env"]["id"]
           for p in REPO.glob("configs/reinforce_*.yaml")}
    assert {"InvertedPendulum-v5", "Pendulum-v1", "HalfCheetah-v5"} <= ids


# ---------------------------------------------------------------------------------- the learner


def tiny_learner(grad_variance_every: int = 0, env_id: str = "Pendulum-v1",
                 **agent: Any) -> ReinforceLearner:
    config = ReinforceConfig(
        **{"hidden_sizes": [16], "rollout_steps": 16, "value_steps": 3, **agent}
    )
    return ReinforceLearner(EnvConfig(env_id, 2), config, seed=3, device=CPU, eval_episodes=1,
                            grad_variance_every=grad_variance_every)


# Env-state fields that hold wall-clock times (episode statistics), equal only by chance.
WALL_CLOCK = ("episode_start_time", "episode_start_times")


def assert_identical(a: object, b: object, where: str = "state") -> None:
    if where.endswith(WALL_CLOCK):
        return
    if isinstance(a, Tensor):
        assert isinstance(b, Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_one_advance_is_one_update_on_rollout_steps_times_num_envs_env_steps() -> None:
    torch.manual_seed(0)
    learner = tiny_learner()
    assert learner.steps_per_advance == 32
    before = [p.detach().clone() for p in learner.agent.actor.parameters()]
    assert learner.advance(log=False) == {}
    assert learner.step == 32 and learner.agent.num_updates == 1
    assert any(not torch.equal(p, q)
               for p, q in zip(before, learner.agent.actor.parameters(), strict=True))
    metrics = learner.advance(log=True)
    assert learner.step == 64 and learner.agent.num_updates == 2
    assert {"loss/actor", "loss/value", "stats/entropy", "stats/log_std_mean", "stats/return_mean",
            "stats/value_explained_variance", "stats/scored_fraction"} <= metrics.keys()
    assert set(learner.evaluate()) == {"eval/return_mean", "eval/return_std", "eval/length_mean",
                                       "eval/episodes"}
    assert learner.summary() == {"env_id": "Pendulum-v1"}  # summary.json's env_id, for reports


def test_an_evaluation_films_its_first_episode_named_by_the_step(tmp_path: Path) -> None:
    config = ReinforceConfig(hidden_sizes=[16], rollout_steps=16)
    learner = ReinforceLearner(EnvConfig("Pendulum-v1", 2), config, seed=3, device=CPU,
                               eval_episodes=1, grad_variance_every=0, video_dir=tmp_path)
    learner.advance(log=False)
    learner.evaluate()
    video = learner.pop_video()
    assert video == tmp_path / "step_32.mp4" and video.stat().st_size > 0
    assert learner.pop_video() is None  # handed out once
    learner.close()


@pytest.mark.parametrize("baseline", ["value", "mean", "none"])
def test_the_agent_is_built_as_configured_and_its_state_round_trips(baseline: str) -> None:
    """The actor at lr, V (only with the value baseline) at value_lr; state_dict / load_state_dict
    carry both networks, both optimizers and the update count, and work without a V."""
    config = ReinforceConfig(hidden_sizes=[8], lr=0.02, value_lr=0.005, baseline=baseline,
                             whole_episodes=baseline != "value")
    torch.manual_seed(0)
    agent = Reinforce(3, 1, config, CPU)
    assert [g["lr"] for g in agent.actor_optimizer.param_groups] == [0.02]
    if baseline == "value":
        assert agent.value is not None and agent.value_optimizer is not None
        assert [g["lr"] for g in agent.value_optimizer.param_groups] == [0.005]
    else:
        assert agent.value is None and agent.value_optimizer is None
    agent.num_updates = 7
    state = agent.state_dict()
    torch.manual_seed(1)
    other = Reinforce(3, 1, config, CPU)
    other.load_state_dict(state)
    assert other.num_updates == 7
    assert_identical(other.state_dict(), state)


def test_a_batch_in_which_no_episode_ends_makes_no_whole_episode_update() -> None:
    torch.manual_seed(0)
    learner = tiny_learner(baseline="none", whole_episodes=True)  # Pendulum episodes last 200 steps
    metrics = learner.advance(log=True)
    assert metrics["stats/scored_fraction"] == 0.0 and learner.agent.num_updates == 0


@pytest.fixture
def short_pendulum() -> Any:
    """Registers `ShortPendulum-v<L>`: Pendulum truncated by its time limit after L steps."""
    made = []

    def register(length: int) -> str:
        env_id = f"ShortPendulum-v{length}"
        gym.register(env_id, entry_point="gymnasium.envs.classic_control.pendulum:PendulumEnv",
                     max_episode_steps=length)
        made.append(env_id)
        return env_id

    yield register
    for env_id in made:
        del gym.registry[env_id]


@pytest.mark.parametrize(("episode_length", "rollout_steps", "scored", "updates"),
                         [(2, 3, 2, 1), (1, 1, 1, 0), (1, 3, 3, 1)])
def test_a_whole_episode_update_needs_at_least_two_scored_steps(
        short_pendulum: Any, episode_length: int, rollout_steps: int, scored: int,
        updates: int) -> None:
    """One sub-env: an episode of L steps ends at steps L, 2L, ...; the steps after the last end
    are not scored. Two scored steps are the fewest a leave-one-out mean (and an advantage's
    spread) needs, and enough; one is skipped."""
    config = ReinforceConfig(hidden_sizes=[8], rollout_steps=rollout_steps, baseline="mean",
                             whole_episodes=True)
    learner = ReinforceLearner(EnvConfig(short_pendulum(episode_length), 1), config, seed=0,
                               device=CPU, eval_episodes=1, grad_variance_every=0)
    metrics = learner.advance(log=True)
    assert metrics["stats/scored_fraction"] == scored / rollout_steps
    assert learner.agent.num_updates == updates
    assert ("loss/actor" in metrics) == (updates == 1)
    learner.close()


def test_a_rollout_of_a_float64_env_holds_float32_tensors_and_refuses_zero_steps() -> None:
    """MuJoCo observations and rewards are float64; the rollout and the observation to continue
    from are float32 (the networks' dtype), the episode-end flags bool."""
    from agents.rollout import collect_rollout

    torch.manual_seed(0)
    learner = tiny_learner(env_id="InvertedPendulum-v5")
    task = learner.task
    rollout, obs = collect_rollout(task.env, learner.agent.actor, task.obs, 5, task.episodes)
    assert {name: (value.dtype, tuple(value.shape)) for name, value in vars(rollout).items()} == {
        "obs": (torch.float32, (5, 2, 4)), "next_obs": (torch.float32, (5, 2, 4)),
        "pre_squash": (torch.float32, (5, 2, 1)), "reward": (torch.float32, (5, 2)),
        "terminated": (torch.bool, (5, 2)), "truncated": (torch.bool, (5, 2))}
    assert obs.dtype == torch.float32 and obs.shape == (2, 4)
    with pytest.raises(ValueError, match=r"^num_steps must be >= 1, got 0$"):
        collect_rollout(task.env, learner.agent.actor, obs, 0, task.episodes)
    learner.close()


@pytest.mark.parametrize("baseline", ["mean", "none"])
def test_whole_episode_batches_score_the_finished_episodes(baseline: str) -> None:
    torch.manual_seed(0)
    learner = tiny_learner(env_id="InvertedPendulum-v5", baseline=baseline, whole_episodes=True,
                           entropy_coef=0.01)
    metrics = learner.advance(log=True)  # a random policy falls within a few dozen steps
    assert 0.0 < metrics["stats/scored_fraction"] < 1.0 and learner.agent.num_updates == 1
    assert "train/episode_return" in metrics and math.isfinite(metrics["loss/actor"])


def test_gradient_diagnostics_are_logged_and_do_not_change_training() -> None:
    torch.manual_seed(0)
    plain = tiny_learner()
    for _ in range(3):
        plain.advance(log=True)
    torch.manual_seed(0)
    measured = tiny_learner(grad_variance_every=2)
    logged = [measured.advance(log=True) for _ in range(3)]
    assert [any(k.startswith("grad/") for k in m) for m in logged] == [False, True, False]
    assert {"grad/score_function_var_trace", "grad/score_function_baseline_var_trace",
            "grad/score_function_baseline_cosine"} <= logged[1].keys()
    assert_identical(plain.agent.state_dict(), measured.agent.state_dict())


def test_exact_resume_from_a_state_dict_read_back_with_weights_only() -> None:
    torch.manual_seed(0)
    straight = tiny_learner(grad_variance_every=2, entropy_coef=0.01, max_grad_norm=1.0)
    for i in range(2):
        straight.advance(log=i == 1)
    straight.evaluate()
    buffer = io.BytesIO()
    torch.save(straight.state_dict(), buffer)
    rng = torch.get_rng_state()  # train.py saves and restores the global RNGs
    for i in range(3):
        straight.advance(log=i == 1)
    final_eval = straight.evaluate()

    torch.manual_seed(1234)  # a different initialisation, overwritten by the state
    resumed = tiny_learner(grad_variance_every=2, entropy_coef=0.01, max_grad_norm=1.0)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    torch.set_rng_state(rng)
    for i in range(3):
        resumed.advance(log=i == 1)
    assert resumed.evaluate() == final_eval
    assert_identical(straight.state_dict(), resumed.state_dict())


@pytest.mark.slow
def test_reinforce_balances_the_inverted_pendulum_within_300k_steps() -> None:
    """The issue's bar: mean deterministic eval return >= 900 over 3 seeds within 300k env steps,
    with configs/reinforce_inverted_pendulum.yaml (a few minutes per seed on one core)."""
    raw = yaml.safe_load((REPO / "configs" / "reinforce_inverted_pendulum.yaml").read_text())
    env, agent = build(EnvConfig, raw["env"], "env"), build(ReinforceConfig, raw["agent"], "agent")
    assert raw["total_steps"] <= 300_000
    returns = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        learner = ReinforceLearner(env, agent, seed=seed, device=CPU, eval_episodes=10,
                                   grad_variance_every=0)
        while learner.step < raw["total_steps"]:
            learner.advance(log=False)
        returns.append(learner.evaluate()["eval/return_mean"])
        learner.close()
    assert sum(returns) / len(returns) >= 900, returns


# ------------------------------------------------------------------------------ one update, by hand


def reference_base(family: str, loc: Tensor, scale: Tensor) -> torch.distributions.Distribution:
    """Each policy family built from torch.distributions independently of estimators/: the logistic
    as torch documents it, a uniform pushed through logit and an affine map."""
    if family == "normal":
        return torch.distributions.Normal(loc, scale)
    if family == "laplace":
        return torch.distributions.Laplace(loc, scale)
    uniform = Uniform(torch.zeros_like(loc), torch.ones_like(loc))
    return TransformedDistribution(uniform, [SigmoidTransform().inv, AffineTransform(loc, scale)])


def log_base_by_hand(agent: Reinforce, obs: Tensor, pre_squash: Tensor) -> Tensor:
    """log p(u; loc(s), scale(s)) of the agent's policy family, summed over action dims.

    The tanh correction of log pi is a function of the stored u alone: it has no gradient.
    Shapes: obs (M, O), pre_squash (M, A) -> (M,).
    """
    loc, raw = agent.actor.net(obs).chunk(2, dim=-1)  # (M, 2A) -> 2 x (M, A)
    low, high = TanhSquashedActor.LOG_STD_MIN, TanhSquashedActor.LOG_STD_MAX
    log_scale = low + 0.5 * (high - low) * (torch.tanh(raw) + 1.0)
    return reference_base(agent.config.policy_distribution, loc,
                          log_scale.exp()).log_prob(pre_squash).sum(-1)


def fixed_batch(baseline: bool) -> ScoredBatch:
    g = torch.Generator().manual_seed(5)
    obs, pre_squash = torch.randn(6, 3, generator=g), torch.randn(6, 2, generator=g)
    # std 0.2 < 1: a clamp at 1 would show
    returns = torch.tensor([0.3, -0.1, 0.05, 0.2, -0.25, 0.1])
    # a baseline that is no affine function of the returns, so normalizing does not cancel it
    b = torch.tensor([0.1, 0.3, -0.2, 0.0, 0.05, -0.1])
    return ScoredBatch(obs, pre_squash, returns, b if baseline else None)


@pytest.mark.parametrize(("baseline", "normalize", "family"), [
    (False, False, "normal"), (True, False, "normal"), (False, True, "normal"),
    (True, True, "normal"), (True, True, "laplace"), (True, False, "logistic")])
def test_one_update_is_an_ascent_step_on_mean_advantage_times_grad_log_pi(
    baseline: bool, normalize: bool, family: str,
) -> None:
    """With plain SGD in place of Adam, the step is exactly lr * mean_t A_t grad log pi(u_t | s_t),
    A_t = G_t - b_t, rescaled to mean 0 / std 1 when normalizing: direction and size, for each
    policy family."""
    torch.manual_seed(0)
    config = ReinforceConfig(hidden_sizes=[8], baseline="none", whole_episodes=True,
                             normalize_advantage=normalize, policy_distribution=family)
    agent = Reinforce(3, 2, config, CPU)
    lr = 0.1
    agent.actor_optimizer = torch.optim.SGD(agent.actor.parameters(), lr=lr)
    batch = fixed_batch(baseline)
    advantage = batch.returns - (batch.baseline if baseline else 0.0)
    if normalize:
        advantage = (advantage - advantage.mean()) / advantage.std()
    params = list(agent.actor.parameters())
    log_prob = log_base_by_hand(agent, batch.obs, batch.pre_squash)
    expected = torch.autograd.grad((advantage * log_prob).mean(), params)  # d J / d theta
    before = [p.detach().clone() for p in params]

    metrics = agent.update(batch, log=True)
    for p, p0, g in zip(params, before, expected, strict=True):
        # ascent: + lr * grad J
        torch.testing.assert_close(p.detach() - p0, lr * g, rtol=1e-4, atol=1e-7)
    assert any(g.abs().max() > 1e-3 for g in expected)  # a step that tells directions apart
    # loss/actor is the negated surrogate mean(log pi * A + f), log pi with its tanh correction and
    # f the scored values: G, or the normalized A (score_function_surrogate's value convention)
    # (M, A) -> (M,)
    log_pi = log_prob.detach() - torch.log1p(-torch.tanh(batch.pre_squash) ** 2).sum(-1)
    f = advantage if normalize else batch.returns
    assert metrics["loss/actor"] == pytest.approx(-float((log_pi * advantage + f).mean()), rel=1e-5)
    # -mean log pi
    assert metrics["stats/entropy"] == pytest.approx(-float(log_pi.mean()), rel=1e-5)
    assert metrics["stats/return_mean"] == pytest.approx(float(batch.returns.mean()), rel=1e-6)
    assert agent.num_updates == 1
    agent.update(batch, log=False)
    assert agent.num_updates == 2


def test_max_grad_norm_clips_the_step_to_that_norm_in_the_gradient_direction() -> None:
    torch.manual_seed(0)
    config = ReinforceConfig(hidden_sizes=[8], baseline="none", whole_episodes=True,
                             normalize_advantage=False, max_grad_norm=0.01)
    agent = Reinforce(3, 2, config, CPU)
    agent.actor_optimizer = torch.optim.SGD(agent.actor.parameters(), lr=1.0)
    batch = fixed_batch(baseline=False)
    params = list(agent.actor.parameters())
    grad = torch.autograd.grad(
        (batch.returns * log_base_by_hand(agent, batch.obs, batch.pre_squash)).mean(), params
    )
    flat = torch.cat([g.flatten() for g in grad])
    assert flat.norm() > 0.01  # the clip is active
    before = torch.cat([p.detach().flatten() for p in params])
    agent.update(batch, log=False)
    step = torch.cat([p.detach().flatten() for p in params]) - before
    torch.testing.assert_close(step, 0.01 * flat / flat.norm(), rtol=1e-4, atol=1e-7)


def test_the_value_baseline_takes_value_steps_of_regression_towards_the_returns() -> None:
    """Each of value_steps SGD steps is w <- w - value_lr * grad mean (V(s_t) - G_t)^2."""
    torch.manual_seed(0)
    config = ReinforceConfig(hidden_sizes=[8], value_steps=3, normalize_advantage=False)
    agent = Reinforce(3, 2, config, CPU)
    assert agent.value is not None
    agent.value_optimizer = torch.optim.SGD(agent.value.parameters(), lr=0.05)
    batch = fixed_batch(baseline=True)
    names = [name for name, _ in agent.value.named_parameters()]
    by_hand = [p.detach().clone().requires_grad_() for p in agent.value.parameters()]
    losses = []
    for _ in range(3):
        v = torch.func.functional_call(agent.value, dict(zip(names, by_hand, strict=True)),
                                       (batch.obs,))
        losses.append((v - batch.returns).pow(2).mean())  # (M,) -> ()
        grads = torch.autograd.grad(losses[-1], by_hand)
        by_hand = [(w - 0.05 * g).detach().requires_grad_()
                   for w, g in zip(by_hand, grads, strict=True)]
    residual_var = (batch.returns - batch.baseline).var()
    metrics = agent.update(batch, log=True)
    for p, w in zip(agent.value.parameters(), by_hand, strict=True):
        torch.testing.assert_close(p.detach(), w.detach(), rtol=1e-5, atol=1e-7)
    # explained variance of the V that made the baseline, before the fit: 1 - Var(G - b) / Var(G)
    assert metrics["stats/value_explained_variance"] == pytest.approx(
        float(1 - residual_var / batch.returns.var()), rel=1e-6)
    # the last step's loss
    assert metrics["loss/value"] == pytest.approx(losses[-1].item(), rel=1e-5)
    assert losses[-1].item() < losses[0].item()


def test_the_entropy_bonus_adds_its_pathwise_gradient_to_the_step() -> None:
    """entropy_coef c adds c * grad of -mean log pi(tanh(u)) at a fresh reparameterized draw
    u = loc + scale * eps: with SGD,
    step = lr * grad[mean A log N(u_stored) - c mean log pi(u_fresh)]."""
    torch.manual_seed(0)
    config = ReinforceConfig(hidden_sizes=[8], baseline="none", whole_episodes=True,
                             normalize_advantage=False, entropy_coef=0.5)
    agent = Reinforce(3, 2, config, CPU)
    agent.actor_optimizer = torch.optim.SGD(agent.actor.parameters(), lr=0.1)
    batch = fixed_batch(baseline=False)
    params = list(agent.actor.parameters())
    loc, raw = agent.actor.net(batch.obs).chunk(2, dim=-1)
    low, high = TanhSquashedActor.LOG_STD_MIN, TanhSquashedActor.LOG_STD_MAX
    normal = torch.distributions.Normal(loc,
                                        (low + 0.5 * (high - low) * (torch.tanh(raw) + 1.0)).exp())
    torch.manual_seed(7)
    fresh = normal.rsample()  # (M, A): the update's own draw below, under the same seed
    # (M,)
    log_pi_fresh = normal.log_prob(fresh).sum(-1) - torch.log1p(-torch.tanh(fresh) ** 2).sum(-1)
    objective = ((batch.returns * normal.log_prob(batch.pre_squash).sum(-1)).mean()
                 - 0.5 * log_pi_fresh.mean())
    expected = torch.autograd.grad(objective, params)
    before = [p.detach().clone() for p in params]
    torch.manual_seed(7)
    agent.update(batch, log=False)
    for p, p0, g in zip(params, before, expected, strict=True):
        torch.testing.assert_close(p.detach() - p0, 0.1 * g, rtol=1e-4, atol=1e-6)


def test_the_diagnostic_figures_replayed_by_hand() -> None:
    """Estimate k is the gradient of mean_i (G_i - b_i) log pi(a_i | s_i) over minibatch k, not
    normalized (these are estimates of grad J), b = 0 for score_function; the minibatches are
    torch.randint draws, score_function's repeats first; the reference is the whole batch's
    estimate with b. Returns far from mean 0 / std 1, so a normalized advantage would show."""
    from agents.policy_gradients import summarize
    from agents.reinforce import reinforce_gradient_figures

    torch.manual_seed(0)
    actor = TanhSquashedActor(3, 2, [8])
    params = list(actor.parameters())
    g = torch.Generator().manual_seed(5)
    obs, pre_squash = torch.randn(64, 3, generator=g), torch.randn(64, 2, generator=g)
    returns = 5.0 + 3.0 * torch.randn(64, generator=g)
    baseline = 4.0 + torch.randn(64, generator=g)

    def by_hand(index: Tensor, with_baseline: bool) -> Tensor:  # (m,) -> (P,)
        advantage = returns - baseline if with_baseline else returns
        log_prob = actor(obs[index]).log_prob_pre_squash(pre_squash[index])
        objective = (advantage[index] * log_prob).mean()
        return torch.cat([d.reshape(-1) for d in torch.autograd.grad(objective, params)])

    torch.manual_seed(7)
    figures = reinforce_gradient_figures(actor, ScoredBatch(obs, pre_squash, returns, baseline),
                                         8, 5)
    torch.manual_seed(7)
    draws = [torch.randint(64, (8,)) for _ in range(10)]
    reference = by_hand(torch.arange(64), True)
    for name, with_baseline, minibatches in (("score_function", False, draws[:5]),
                                             ("score_function_baseline", True, draws[5:])):
        expected = summarize(torch.stack([by_hand(i, with_baseline) for i in minibatches]),
                             reference)
        assert figures[name] == pytest.approx(expected, rel=1e-5), name


def test_the_diagnostic_figures_use_the_batch_baseline_and_resample_minibatches() -> None:
    """score_function_baseline uses the batch's own baseline (b = G gives every estimate 0), or
    the leave-one-out mean when the batch has none; minibatches of 8 of 64 steps spread."""
    from agents.reinforce import reinforce_gradient_figures
    from estimators.gradients import leave_one_out_baseline

    torch.manual_seed(0)
    actor = TanhSquashedActor(3, 2, [8])
    g = torch.Generator().manual_seed(5)
    obs, pre_squash, returns = (torch.randn(64, 3, generator=g), torch.randn(64, 2, generator=g),
                                torch.randn(64, generator=g))

    exact = reinforce_gradient_figures(
        actor, ScoredBatch(obs, pre_squash, returns, returns.clone()), 8, 4)
    assert exact["score_function_baseline"]["grad_norm_mean"] == 0.0  # A = G - b = 0 at every step
    assert exact["score_function"]["grad_var_trace"] > 0  # the resampled minibatches differ

    torch.manual_seed(1)
    implicit = reinforce_gradient_figures(actor, ScoredBatch(obs, pre_squash, returns, None), 8, 4)
    torch.manual_seed(1)
    explicit = reinforce_gradient_figures(
        actor, ScoredBatch(obs, pre_squash, returns, leave_one_out_baseline(returns)), 8, 4)
    assert implicit == explicit
    assert implicit["score_function_baseline"] != implicit["score_function"]
