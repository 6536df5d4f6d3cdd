"""Tasks: seeded single and vector envs acting in [-1, 1]^A, and their exact state for resume."""

from envs.make import (
    SUPPORTED_IDS,
    EnvConfig,
    is_mujoco_task,
    make_env,
    make_vector_env,
    true_next_obs,
)
from envs.state import get_state, set_state

__all__ = ["SUPPORTED_IDS", "EnvConfig", "get_state", "is_mujoco_task", "make_env",
           "make_vector_env", "set_state", "true_next_obs"]
