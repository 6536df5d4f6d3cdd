"""Exact env state: after set_state, an env continues bit-identically to the one it came from."""

import io
from typing import Any

import numpy as np
import pytest
import torch

from envs import get_state, make_env, make_vector_env, set_state


def through_checkpoint(state: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint gives back: torch.save, then torch.load(weights_only=True)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# (task, steps before the snapshot, steps after it): the steps after cross an episode end
# (Pendulum: 200-step limit; HalfCheetah: 1000) so the auto-reset's RNG draw is compared too.
# Ant reads its torso position before stepping (mjData kinematics, not only qpos).
CASES = [("Pendulum-v1", 190, 20), ("HalfCheetah-v5", 995, 10), ("Ant-v5", 20, 10)]


@pytest.mark.parametrize(("env_id", "before", "after"), CASES)
def test_vector_env_continues_exactly_after_set_state(env_id: str, before: int, after: int) -> None:
    original = make_vector_env(env_id, num_envs=2, seed=0)
    for _ in range(before):
        original.step(original.action_space.sample())
    # different seed: all must come from the state
    restored = make_vector_env(env_id, num_envs=2, seed=99)
    set_state(restored, through_checkpoint(get_state(original)))

    ended = False
    for _ in range(after):
        action = original.action_space.sample()
        assert np.array_equal(restored.action_space.sample(), action)
        expected, got = original.step(action), restored.step(action)
        for name, a, b in zip(("obs", "reward", "terminated", "truncated"), expected[:4], got[:4],
                              strict=True):
            assert np.array_equal(a, b), name
        assert expected[4].keys() == got[4].keys()
        if "episode" in expected[4]:
            ended = True
            assert np.array_equal(expected[4]["episode"]["r"], got[4]["episode"]["r"])
            assert np.array_equal(expected[4]["episode"]["l"], got[4]["episode"]["l"])
    assert ended or env_id == "Ant-v5"


def test_single_env_continues_exactly_after_set_state() -> None:
    original = make_env("Pendulum-v1", seed=0)
    for _ in range(50):
        original.step(original.action_space.sample())
    restored = make_env("Pendulum-v1", seed=1)
    set_state(restored, through_checkpoint(get_state(original)))
    assert np.array_equal(original.reset()[0], restored.reset()[0])  # the np_random stream
    for _ in range(5):
        action = original.action_space.sample()
        assert np.array_equal(original.step(action)[0], restored.step(action)[0])


def test_state_of_another_task_is_refused() -> None:
    pendulum = make_vector_env("Pendulum-v1", num_envs=1, seed=0)
    cheetah = make_vector_env("HalfCheetah-v5", num_envs=1, seed=0)
    with pytest.raises(ValueError, match="env state does not fit this env"):
        set_state(cheetah, get_state(pendulum))


def test_a_rendering_env_takes_the_state_of_one_that_did_not_render() -> None:
    """How an env renders is not state: a run resumed with eval.video on films from there."""
    plain, filming = (make_env("Pendulum-v1", seed=0),
                      make_env("Pendulum-v1", seed=1, render_mode="rgb_array"))
    for _ in range(5):
        plain.step(np.array([0.3], dtype=np.float32))
    set_state(filming, through_checkpoint(get_state(plain)))
    frame = filming.render()
    assert isinstance(frame, np.ndarray) and frame.shape == (500, 500, 3)
    action = np.array([-0.7], dtype=np.float32)
    np.testing.assert_array_equal(plain.step(action)[0], filming.step(action)[0])
