"""Build the tasks: one seeded env for evaluation, a seeded vector env for training.

Every env returned here acts in [-1, 1]^A (gymnasium's `RescaleAction` maps that box onto the
task's own bounds), so a tanh-squashed policy needs no per-task action scale, and records
episode statistics (`info["episode"]` with `r` return and `l` length at an episode's end).

The vector env resets a finished sub-env within the same step (`AutoresetMode.SAME_STEP`):
the observation returned for it is the first one of the next episode and the true last
observation of the finished episode is `infos["final_obs"][i]` (mask `infos["_final_obs"]`).
An off-policy learner must store that one as the transition's next observation, or it would
bootstrap a truncated episode from the start state of a new one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box
from gymnasium.wrappers import RecordEpisodeStatistics, RescaleAction
from gymnasium.wrappers.vector import RecordEpisodeStatistics as RecordVectorEpisodeStatistics

# The tasks the configs and benchmarks use; any other gymnasium id with Box spaces works too.
SUPPORTED_IDS = (
    "Pendulum-v1",
    "MountainCarContinuous-v0",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Humanoid-v5",
)


@dataclass
class EnvConfig:
    """Which task to train on and how many copies of it step side by side."""

    # gymnasium id of a task with a continuous (Box) action space, e.g. HalfCheetah-v5
    id: str = "Pendulum-v1"
    # sub-envs stepped together per advance (each step adds num_envs transitions)
    num_envs: int = 1

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("id must be a gymnasium env id such as Pendulum-v1, "
                             "got an empty string")
        check_num_envs(self.num_envs)


def check_num_envs(num_envs: int) -> None:
    """The range of `env.num_envs`, declared once: at least one sub-env."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be an integer >= 1, got {num_envs}")


def _check_id(env_id: str) -> None:
    """Raise a one-line ValueError for an id gymnasium does not know, suggesting close ones."""
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else "see gymnasium.pprint_registry()"
    raise ValueError(f"unknown env id {env_id!r}; {hint}")


def is_mujoco_task(env_id: str) -> bool:
    """Whether a registered id is one of gymnasium's MuJoCo tasks (rendered through OpenGL)."""
    return "mujoco" in str(gym.registry[env_id].entry_point)


def _make_base(env_id: str, render_mode: str | None = None) -> gym.Env:
    """gymnasium.make with bad input (missing MuJoCo, non-Box spaces) turned into ValueError."""
    _check_id(env_id)
    options: dict[str, Any] = {}
    if render_mode is not None and is_mujoco_task(env_id):
        # Film from the model's `track` camera, which follows the body: gymnasium's default free
        # camera stays where the episode began and HalfCheetah runs out of the picture. A model
        # without one (InvertedPendulum) gets the default camera.
        options["camera_name"] = "track"
    try:
        env = gym.make(env_id, render_mode=render_mode, **options)
    except gym.error.DependencyNotInstalled as e:
        if is_mujoco_task(env_id):
            raise ValueError(
                f'{env_id} needs MuJoCo, which is not installed: pip install "gymnasium[mujoco]" '
                "(or bash scripts/setup.sh)"
            ) from e
        raise ValueError(f"{env_id} needs a missing dependency: {str(e).splitlines()[0]}") from e
    problem = None
    if not isinstance(env.action_space, Box):
        problem = f"SAC needs a continuous (Box) action space; {env_id} has {env.action_space}"
    elif not (np.isfinite(env.action_space.low).all() and np.isfinite(env.action_space.high).all()):
        problem = (f"the action space of {env_id} must be bounded to rescale it to [-1, 1], got "
                   f"{env.action_space}")
    elif not isinstance(env.observation_space, Box) or len(env.observation_space.shape) != 1:
        problem = (f"the networks need a flat Box observation space; {env_id} has "
                   f"{env.observation_space}")
    if problem is not None:
        env.close()
        raise ValueError(problem)
    return env


def _rescaled(env: gym.Env) -> RescaleAction:
    """The policy acts in [-1, 1]^A; map that box affinely onto the task's bounds."""
    space = cast(Box, env.action_space)  # checked by _make_base
    ones = np.ones(space.shape, dtype=space.dtype)  # in the space's dtype: no precision warning
    return RescaleAction(env, min_action=-ones, max_action=ones)


def make_env(env_id: str, seed: int, render_mode: str | None = None,
             rescale: bool = True) -> gym.Env:
    """One env with episode statistics, seeded and already reset once.

    It acts in [-1, 1]^A (`rescale`, what the learners train in) or, with rescale=False, in the
    task's own action bounds (for a policy from agents.load_policy). `render_mode="rgb_array"`
    makes `env.render()` return frames (see envs.video for rendering without a display).
    `env.reset(seed=seed)` seeds its np_random and `action_space.seed(seed)` its sampler, so
    the caller's next `env.reset()` (no seed) continues the seeded stream.
    Raises ValueError for an unknown id, a discrete action space or missing MuJoCo.
    """
    base = _make_base(env_id, render_mode)
    env = RecordEpisodeStatistics(_rescaled(base) if rescale else base)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def make_vector_env(env_id: str, num_envs: int, seed: int) -> gym.vector.VectorEnv:
    """`num_envs` synchronous copies acting in [-1, 1]^A, auto-resetting in the same step.

    Sub-env i is reset once with seed `seed + i` (the caller's `env.reset()`, no seed, then
    continues each seeded stream); the batched action space (shape (num_envs, A)) is seeded
    with `seed`. Episode statistics arrive as `infos["episode"]["r"/"l"]` with the
    mask `infos["_episode"]`; the finished episodes' last observations as
    `infos["final_obs"]` with the mask `infos["_final_obs"]`.
    Raises ValueError for an unknown id, a discrete action space, missing MuJoCo or num_envs < 1.
    """
    check_num_envs(num_envs)
    _make_base(env_id).close()  # validate once, with a clear message, before building copies
    env = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode=gym.VectorizeMode.SYNC,
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        wrappers=[_rescaled],
    )
    env = RecordVectorEpisodeStatistics(env)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def true_next_obs(next_obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
    """The observation each sub-env's step actually reached: `next_obs`, except where an
    episode ended, whose row is the episode's last observation `infos["final_obs"]`.

    make_vector_env auto-resets in the same step, so a finished sub-env's `next_obs` row is
    already the next episode's first observation; a transition needs the true last one.
    Returns `next_obs` itself when no episode ended, else a patched copy. Shapes: (N, O).
    """
    if "_final_obs" not in infos:
        return next_obs
    patched = next_obs.copy()
    for index in np.flatnonzero(infos["_final_obs"]):
        patched[index] = infos["final_obs"][index]
    return patched
