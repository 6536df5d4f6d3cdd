"""The reference side of the benchmarks: envs as stable-baselines3 sees them, and its SAC.

Every SAC comparison builds SB3's agent here, so all of them map our config fields onto SB3's
arguments the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from training.config import ConfigError, SACRunConfig, load_config

if TYPE_CHECKING:
    from stable_baselines3 import SAC


def load_sac_config(path: Path, overrides: list[str]) -> SACRunConfig:
    """The SAC config at `path` with `overrides`; bad input exits 2 with one line, as train.py does."""
    try:
        kind = load_config(path, []).kind  # checked first: SAC overrides do not fit other kinds
        if kind != "sac":
            raise ConfigError(f"{path} is a {kind} config; this benchmark needs kind: sac")
        cfg = load_config(path, overrides)
    except (ConfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    assert isinstance(cfg, SACRunConfig)
    return cfg


def rescaled_env(env_id: str) -> gym.Env:
    """`env_id` acting in [-1, 1]^A, as our envs do (SB3 adds its own Monitor wrapper)."""
    env = gym.make(env_id)
    shape = env.action_space.shape
    assert shape is not None, f"{env_id} has no action shape"
    ones = np.ones(shape, dtype=np.float32)
    return gym.wrappers.RescaleAction(env, min_action=-ones, max_action=ones)


def sb3_sac(cfg: SACRunConfig, device: str) -> SAC:
    """SB3's SAC on `cfg.env.id` with our lr, buffer, learning_starts, batch, tau, gamma,
    train_freq, gradient_steps, entropy tuning, hidden sizes and seed."""
    from stable_baselines3 import SAC

    a = cfg.agent
    return SAC("MlpPolicy", rescaled_env(cfg.env.id), learning_rate=a.lr, buffer_size=a.buffer_size,
               learning_starts=a.learning_starts, batch_size=a.batch_size, tau=a.tau, gamma=a.gamma,
               train_freq=a.train_freq, gradient_steps=a.gradient_steps,
               ent_coef=f"auto_{a.init_alpha}" if a.autotune_alpha else a.init_alpha,
               policy_kwargs={"net_arch": list(a.hidden_sizes)}, seed=cfg.seed, device=device)
