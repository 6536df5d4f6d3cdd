"""The complete state of an env built by `envs.make`, as tensors and python values,
for exact resume.

`get_state(env)` walks the wrapper chain from the outside in (for a vector env: its wrappers,
then every sub-env's chain) and records, per layer:
- its plain attributes: python bools/ints/floats/None and numpy arrays/scalars, which is where
  gymnasium keeps what a step reads and writes (TimeLimit's `_elapsed_steps`, the episode-
  statistics counters, SyncVectorEnv's flags, classic control's `state` and Pendulum's `last_u`);
- for the innermost env: its `np_random` bit-generator state and, for MuJoCo tasks, the physics;
and, for the outermost env, the state of its action space's sampler.

`set_state(env, state)` writes all of it into an env built the same way (same id, num_envs),
after which stepping both with the same actions gives bit-identical results.
Exact for classic-control and MuJoCo tasks, whose dynamics live in those attributes and in
mjData; a task that keeps state in foreign objects (Box2D's world) would not be restored.
The result holds only tensors, python scalars, str, None, lists and dicts, so
`torch.load(weights_only=True)` reads it back.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

# mjData fields computed from positions that some tasks read *before* stepping (Ant: the torso's
# xpos; Humanoid: the bodies' xipos for the centre of mass). mj_step leaves them one substep
# behind qpos, so recomputing them with mj_forward would not reproduce the original step.
_MUJOCO_KINEMATICS = ("xpos", "xquat", "xmat", "xipos", "ximat")


# Attributes that say how an env was built, not where it is: a run resumed with eval.video
# switched on renders although its checkpoint came from an env that did not.
_NOT_STATE = ("render_mode",)


def _plain_attributes(obj: object) -> dict[str, dict[str, Any]]:
    """Copy the plain-valued instance attributes of `obj`, grouped by how they are restored."""
    arrays: dict[str, torch.Tensor] = {}
    numpy_scalars: dict[str, torch.Tensor] = {}
    python: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if name in _NOT_STATE:
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            arrays[name] = torch.from_numpy(value.copy())
        elif isinstance(value, np.generic) and value.dtype.kind in "biuf":
            numpy_scalars[name] = torch.from_numpy(np.array(value))  # 0-d, keeps the dtype
        elif value is None or type(value) in (bool, int, float):
            python[name] = value
    return {"arrays": arrays, "numpy_scalars": numpy_scalars, "python": python}


def _set_plain_attributes(obj: object, attributes: dict[str, dict[str, Any]]) -> None:
    for name, tensor in attributes["arrays"].items():
        value = tensor.numpy()
        current = getattr(obj, name, None)
        if (isinstance(current, np.ndarray) and current.shape == value.shape
                and current.dtype == value.dtype):
            current[...] = value  # in place: other objects may hold a reference to this array
        else:
            setattr(obj, name, value.copy())
    for name, tensor in attributes["numpy_scalars"].items():
        setattr(obj, name, tensor.numpy()[()])  # 0-d array -> numpy scalar of the saved dtype
    for name, value in attributes["python"].items():
        if name not in _NOT_STATE:  # checkpoints of earlier versions hold render_mode
            setattr(obj, name, value)


def _mujoco_env_class() -> type | None:
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
    except gym.error.DependencyNotInstalled:
        return None
    return MujocoEnv


def _is_mujoco(env: object) -> bool:
    mujoco_env = _mujoco_env_class()
    return mujoco_env is not None and isinstance(env, mujoco_env)


def _get_physics(env: Any) -> dict[str, torch.Tensor]:
    """mjData's integration state (time, qpos, qvel, act, warm start, ctrl, applied forces, ...)."""
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    integration = np.empty(mujoco.mj_stateSize(env.model, spec), dtype=np.float64)
    mujoco.mj_getState(env.model, env.data, integration, spec)
    physics = {"integration": torch.from_numpy(integration)}
    for name in _MUJOCO_KINEMATICS:
        physics[name] = torch.from_numpy(getattr(env.data, name).copy())
    return physics


def _set_physics(env: Any, physics: dict[str, torch.Tensor]) -> None:
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    integration = physics["integration"].numpy()
    expected = mujoco.mj_stateSize(env.model, spec)
    if integration.shape != (expected,):
        raise ValueError(f"MuJoCo state size mismatch: saved {integration.shape[0]} vs this model "
                         f"{expected}")
    mujoco.mj_setState(env.model, env.data, integration, spec)
    for name in _MUJOCO_KINEMATICS:
        getattr(env.data, name)[...] = physics[name].numpy()


def _get_layer(obj: Any) -> dict[str, Any]:
    """State of one layer of the chain and, recursively, of what it wraps."""
    state: dict[str, Any] = {"type": type(obj).__name__, "attributes": _plain_attributes(obj)}
    if isinstance(obj, gym.vector.SyncVectorEnv):
        state["envs"] = [_get_layer(sub_env) for sub_env in obj.envs]
    elif isinstance(obj, gym.vector.VectorEnv) and not isinstance(obj, gym.vector.VectorWrapper):
        raise TypeError(f"get_state supports SyncVectorEnv only, got {type(obj).__name__}")
    elif hasattr(obj, "env"):  # a gym.Wrapper or a gym.vector.VectorWrapper
        state["inner"] = _get_layer(obj.env)
    else:  # the task itself
        state["np_random"] = obj.np_random.bit_generator.state
        if _is_mujoco(obj):
            state["physics"] = _get_physics(obj)
    return state


def _set_layer(obj: Any, state: dict[str, Any]) -> None:
    if state["type"] != type(obj).__name__:
        raise ValueError(f"env state does not fit this env: saved layer {state['type']}, found "
                         f"{type(obj).__name__}")
    _set_plain_attributes(obj, state["attributes"])
    if "envs" in state:
        if len(state["envs"]) != len(obj.envs):
            raise ValueError(f"env state does not fit this env: saved {len(state['envs'])} "
                             f"sub-envs, found {len(obj.envs)}")
        for sub_env, sub_state in zip(obj.envs, state["envs"], strict=True):
            _set_layer(sub_env, sub_state)
    elif "inner" in state:
        _set_layer(obj.env, state["inner"])
    else:
        obj.np_random.bit_generator.state = state["np_random"]
        if "physics" in state:
            _set_physics(obj, state["physics"])


def get_state(env: gym.Env | gym.vector.VectorEnv) -> dict[str, Any]:
    """Everything that determines how `env` continues:
    a nested dict of tensors and python values."""
    return {
        "chain": _get_layer(env),
        "action_space_rng": env.action_space.np_random.bit_generator.state,
    }


def set_state(env: gym.Env | gym.vector.VectorEnv, state: dict[str, Any]) -> None:
    """Make `env` (built like the one `state` came from) continue exactly as that one would."""
    _set_layer(env, state["chain"])
    env.action_space.np_random.bit_generator.state = state["action_space_rng"]
