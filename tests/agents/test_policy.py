"""agents.load_policy: a run directory to a module acting in the env's own bounds; its errors.
agents.evaluation: whole episodes of a fixed policy on an env whose episodes are known."""

import math
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from gymnasium.spaces import Box
from gymnasium.wrappers import RecordEpisodeStatistics, RescaleAction

from agents import load_policy
from agents.checkpoint import load_latest
from agents.evaluation import evaluate_deterministic, run_episodes
from agents.run import RunError
from envs import make_env
from policies.actor import TanhSquashedActor
from tests.agents.conftest import TINY_SAC, _train
from training.config import load_config, save_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CPU = torch.device("cpu")


def training_actor(run: Path, obs_dim: int, act_dim: int,
                   family: str = "normal") -> TanhSquashedActor:
    """The actor exactly as the learner held it: acting in [-1, 1]^A."""
    state, _ = load_latest(run / "checkpoints")
    actor = TanhSquashedActor(obs_dim, act_dim, [16, 16], family)
    actor.load_state_dict(state["learner"]["agent"]["actor"])
    return actor


@pytest.mark.parametrize("run_name", ["pendulum_run", "reinforce_run"])
def test_actions_are_the_training_actions_rescaled_as_gymnasium_rescales_them(
        run_name: str, request: pytest.FixtureRequest) -> None:
    run = request.getfixturevalue(run_name)
    policy = load_policy(run)
    space = policy.action_space
    # Pendulum [-2, 2], InvertedPendulum [-3, 3]
    assert space.low.min() < -1 and space.high.max() > 1
    obs_dim, act_dim = policy.observation_space.shape[0], space.shape[0]
    # Observations far outside what the tasks produce, too: tanh saturates, the bounds still hold.
    obs = (torch.randn(512, obs_dim, generator=torch.Generator().manual_seed(0))
           * torch.logspace(-1, 2, 512)[:, None])
    actions = policy(obs.numpy())  # an array in, a tensor out
    assert actions.shape == (512, act_dim) and actions.dtype == torch.float32
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
    assert bool(((actions >= low) & (actions <= high)).all())
    unit = training_actor(run, obs_dim, act_dim).act(obs, deterministic=True)  # (N, A) in [-1, 1]
    rescale = RescaleAction(make_env(policy.env_id, seed=0, rescale=False),
                            -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32))
    expected = torch.as_tensor(np.stack([rescale.action(a) for a in unit.numpy()]))
    torch.testing.assert_close(actions, expected, rtol=0,
                               atol=4 * float(torch.finfo(torch.float32).eps) * float(high.max()))


def test_the_stochastic_policy_samples_inside_the_bounds(pendulum_run: Path) -> None:
    policy = load_policy(pendulum_run, deterministic=False)
    torch.manual_seed(0)
    obs = torch.randn(2000, 3)
    actions = policy(obs)
    assert bool(((actions >= -2) & (actions <= 2)).all())
    assert not torch.equal(actions, policy(obs))  # a fresh draw each call
    assert not torch.allclose(actions, load_policy(pendulum_run)(obs))


def test_a_single_observation_gives_a_single_action(pendulum_run: Path) -> None:
    policy = load_policy(pendulum_run)
    obs = np.array([1.0, 0.0, 0.5])
    torch.testing.assert_close(policy(obs), policy(obs[None])[0])


def test_the_loaded_policy_scores_what_training_evaluation_scores(pendulum_run: Path) -> None:
    """Same seed: the loaded policy on the plain task gives training's evaluation returns, up to
    the float32 rounding of rescaling inside the policy instead of in the env wrapper."""
    policy = load_policy(pendulum_run)
    unit = training_actor(pendulum_run, 3, 1)
    evaluation = evaluate_deterministic(make_env("Pendulum-v1", seed=7), unit, 3,
                                        torch.device("cpu"))
    returns, lengths = run_episodes(make_env("Pendulum-v1", seed=7, rescale=False), policy, 3,
                                    torch.device("cpu"))
    assert lengths == [200, 200, 200]
    assert np.mean(returns) == pytest.approx(evaluation["eval/return_mean"], rel=1e-5)


def test_errors_are_one_line_run_errors(pendulum_run: Path, tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        load_policy(tmp_path / "missing")
    vae = tmp_path / "vae"
    vae.mkdir()
    save_config(load_config(CONFIGS / "vae_digits.yaml", []), vae / "config.yaml")
    with pytest.raises(RunError, match="is a vae run; a policy comes from an RL run"):
        load_policy(vae)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.yaml").write_text((pendulum_run / "config.yaml").read_text())
    with pytest.raises(RunError,
                       match=r"no checkpoint in .*: the run has not written a checkpoint yet"):
        load_policy(fresh)


def test_a_run_of_another_policy_family_samples_that_family(tmp_path: Path) -> None:
    """A laplace run: the loaded policy draws exactly what the training actor read as a Laplace
    draws from the same seed (rescaled onto [-2, 2]), not what a normal would."""
    run = _train(tmp_path / "laplace", "sac_pendulum.yaml", "total_steps=150",
                 "agent.policy_distribution=laplace", *TINY_SAC)
    policy = load_policy(run, deterministic=False)
    assert policy.actor.family == "laplace"
    obs = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    draws = {}
    for family in ("laplace", "normal"):
        actor = training_actor(run, 3, 1, family)
        torch.manual_seed(2)
        draws[family] = 2.0 * actor.act(obs, deterministic=False)  # [-1, 1] -> [-2, 2]
    torch.manual_seed(2)
    actions = policy(obs)
    torch.testing.assert_close(actions, draws["laplace"])
    assert not torch.allclose(actions, draws["normal"])


def test_an_unknown_policy_family_in_config_yaml_is_a_one_line_run_error(pendulum_run: Path,
                                                                         tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(pendulum_run, bad)
    config = yaml.safe_load((bad / "config.yaml").read_text())
    config["agent"]["policy_distribution"] = "cauchy"
    (bad / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(RunError, match=r"config.yaml: agent.policy_distribution: family must be "
                                       r"one of normal, laplace, logistic, got 'cauchy'$"):
        load_policy(bad)


# ------------------------------------------------- agents.evaluation on an env with known episodes


class Countdown(gym.Env):
    """Episode i lasts LENGTHS[i] steps (ending by termination or, for i = 1, by truncation) and
    pays the action's first coordinate at every step; the observation is [i, t] in float64."""

    LENGTHS = (3, 2, 4)
    observation_space = Box(-np.inf, np.inf, (2,), np.float64)
    action_space = Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self) -> None:
        self.episode, self.t = -1, 0
        self.actions: list[np.ndarray] = []

    def reset(self, *, seed: int | None = None,
              options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.array([self.episode, 0.0]), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self.t < self.LENGTHS[self.episode], "stepped past the episode's end"
        self.actions.append(action)
        self.t += 1
        end = self.t == self.LENGTHS[self.episode]
        obs = np.array([self.episode, self.t], dtype=np.float64)
        return obs, float(action[0]), end and self.episode != 1, end and self.episode == 1, {}

    def render(self) -> np.ndarray:
        return np.zeros((2, 2, 3), np.uint8)


class FixedActor:
    """act(obs, deterministic) -> 0.5 (mode) or -0.5 per state, recording what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, bool]] = []

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        self.calls.append((obs, deterministic))
        return torch.full((obs.shape[0], 1), 0.5 if deterministic else -0.5)


class FrameCounter:
    def __init__(self) -> None:
        self.frames = 0

    def capture(self, env: gym.Env) -> None:
        assert env.render().shape == (2, 2, 3)
        self.frames += 1


def test_evaluation_plays_the_mode_action_and_reports_the_episodes_statistics() -> None:
    """Returns 0.5 L for episodes of L = 3, 2, 4 steps: mean 1.5, population std sqrt(1/6); only
    the first episode is filmed, one frame after the reset and one per step (3 + 1)."""
    env, actor, video = RecordEpisodeStatistics(Countdown()), FixedActor(), FrameCounter()
    metrics = evaluate_deterministic(env, actor, 3, CPU, video)  # type: ignore[arg-type]
    assert metrics == pytest.approx({"eval/return_mean": 1.5, "eval/return_std": math.sqrt(1 / 6),
                                     "eval/length_mean": 3.0, "eval/episodes": 3.0})
    assert video.frames == 3 + 1
    assert len(actor.calls) == 3 + 2 + 4 and all(deterministic for _, deterministic in actor.calls)
    obs, _ = actor.calls[4]  # episode 1, step 1: observation [1, 1] as a float32 batch of one
    assert obs.dtype == torch.float32 and torch.equal(obs, torch.tensor([[1.0, 1.0]]))
    assert all(a.shape == (1,) and a[0] == np.float32(0.5) for a in env.unwrapped.actions)


def test_run_episodes_films_the_first_filmed_episodes_and_returns_each_return_and_length() -> None:
    env, video = RecordEpisodeStatistics(Countdown()), FrameCounter()
    act = lambda obs: torch.full((1, 1), -0.25)  # noqa: E731
    returns, lengths = run_episodes(env, act, 3, CPU, video, filmed=2)
    assert returns == pytest.approx([-0.75, -0.5, -1.0]) and lengths == [3, 2, 4]
    assert video.frames == (3 + 1) + (2 + 1)
    env = RecordEpisodeStatistics(Countdown())
    returns, lengths = run_episodes(env, lambda obs: torch.zeros(1, 1), 1, CPU, video)  # filmed=0
    assert video.frames == 7 and lengths == [3]
