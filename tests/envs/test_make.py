"""Building tasks: clear errors for bad ids, actions in [-1, 1], seeding,
SAME_STEP final observations."""

import gymnasium as gym
import numpy as np
import pytest

import envs.make
from envs import SUPPORTED_IDS, EnvConfig, make_env, make_vector_env


def test_unknown_id_is_one_line_error_suggesting_the_registered_name() -> None:
    with pytest.raises(ValueError,
                       match=r"unknown env id 'Pendulum-v0'; did you mean Pendulum-v1") as info:
        make_env("Pendulum-v0", seed=0)
    assert "\n" not in str(info.value)


def test_unknown_id_without_close_names_points_to_the_registry() -> None:
    with pytest.raises(ValueError,
                       match=r"unknown env id 'zzzz'; see gymnasium.pprint_registry\(\)"):
        make_vector_env("zzzz", num_envs=1, seed=0)


def test_discrete_action_space_is_rejected_with_the_space_named() -> None:
    message = "SAC needs a continuous (Box) action space; CartPole-v1 has Discrete(2)"
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        make_vector_env("CartPole-v1", num_envs=2, seed=0)


def test_missing_mujoco_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # gym.make(id, render_mode=...)
    def make_without_mujoco(env_id: str, **kwargs: object) -> gym.Env:
        raise gym.error.DependencyNotInstalled('MuJoCo is not installed, '
                                               'run `pip install "gymnasium[mujoco]"`')

    monkeypatch.setattr(envs.make.gym, "make", make_without_mujoco)
    with pytest.raises(ValueError, match=r'Hopper-v5 needs MuJoCo.*pip install '
                                         r'"gymnasium\[mujoco\]".*bash scripts/setup.sh'):
        make_env("Hopper-v5", seed=0)


@pytest.mark.parametrize("env_id", SUPPORTED_IDS)
def test_every_supported_task_acts_in_the_unit_box(env_id: str) -> None:
    env = make_vector_env(env_id, num_envs=1, seed=0)
    assert isinstance(env.single_action_space, gym.spaces.Box)
    assert (np.all(env.single_action_space.low == -1.0)
            and np.all(env.single_action_space.high == 1.0))
    env.close()


def test_unit_actions_reach_the_task_rescaled_to_its_own_bounds() -> None:
    # Pendulum's torque bound is 2 and Humanoid's actuators' is 0.4:
    # a = 0.5 and a = 1 map onto them.
    pendulum = make_env("Pendulum-v1", seed=0)
    pendulum.step(np.array([0.5], dtype=np.float32))
    assert pendulum.unwrapped.last_u == pytest.approx(1.0)
    humanoid = make_env("Humanoid-v5", seed=0)
    humanoid.step(np.ones(humanoid.action_space.shape, dtype=np.float32))
    np.testing.assert_allclose(humanoid.unwrapped.data.ctrl, 0.4, rtol=1e-6)


def test_same_seed_same_stream_other_seed_another() -> None:
    def first_steps(seed: int) -> tuple[np.ndarray, np.ndarray]:
        env = make_vector_env("Pendulum-v1", num_envs=2, seed=seed)
        obs, _ = env.reset()
        return obs, env.action_space.sample()

    obs_a, action_a = first_steps(3)
    obs_b, action_b = first_steps(3)
    obs_c, action_c = first_steps(4)
    assert np.array_equal(obs_a, obs_b) and np.array_equal(action_a, action_b)
    assert not np.array_equal(obs_a, obs_c) and not np.array_equal(action_a, action_c)
    assert not np.array_equal(obs_a[0], obs_a[1])  # sub-envs get distinct seeds


def test_same_step_autoreset_hands_over_the_true_final_observation() -> None:
    # Sub-env 0 of a vector env seeded s starts like a single env seeded s: step both alike.
    vector = make_vector_env("Pendulum-v1", num_envs=1, seed=5)
    single = make_env("Pendulum-v1", seed=5)
    vector_obs, _ = vector.reset()
    single_obs, _ = single.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(200, 1)).astype(np.float32)
    total_reward = 0.0
    for t, action in enumerate(actions):
        single_obs, _, _, single_truncated, single_info = single.step(action)
        vector_obs, reward, terminated, truncated, infos = vector.step(action[None])
        total_reward += reward[0]
        assert truncated[0] == single_truncated == (t == 199) and not terminated[0]
    assert infos["_final_obs"][0]
    np.testing.assert_array_equal(infos["final_obs"][0], single_obs)  # the true last state
    assert not np.allclose(vector_obs[0], single_obs)  # the returned one starts the next episode
    assert infos["_episode"][0] and infos["episode"]["l"][0] == 200
    assert (infos["episode"]["r"][0] == pytest.approx(total_reward)
            == pytest.approx(single_info["episode"]["r"]))


def test_env_config_rejects_zero_envs() -> None:
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1, got 0"):
        EnvConfig(num_envs=0)
