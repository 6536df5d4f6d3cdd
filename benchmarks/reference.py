"""The reference side of the benchmarks: envs as stable-baselines3 sees them, its SAC, and sbx's.

Every SAC comparison builds the reference agent here, so all of them map our config fields onto
the reference's arguments the same way. sbx (stable-baselines3 in JAX, `pip install sbx-rl`)
takes SB3's arguments. Run as a program, this file trains one reference as its users would
(`learn`, the library's own thread settings), for the process-timed throughput benchmark:

    python benchmarks/reference.py --impl sbx --config configs/sac_hopper.yaml --steps 3000 \
        agent.learning_starts=1000
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

if __name__ == "__main__":  # run as a program: the repository's packages from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.config import ConfigError, SACRunConfig, load_config

if TYPE_CHECKING:
    from stable_baselines3 import SAC
    from stable_baselines3.common.base_class import BaseAlgorithm


def load_sac_config(path: Path, overrides: list[str]) -> SACRunConfig:
    """The SAC config at `path` with `overrides`; bad input exits 2 with one line,
    as train.py does."""
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


# the reference implementations: name -> the module whose `SAC` class it is
LIBRARIES = {"sb3": "stable_baselines3", "sbx": "sbx"}


def without_log_folder(model: BaseAlgorithm) -> None:
    """Give `model` a logger that writes nowhere: SB3's default one makes an empty
    /tmp/SB3-<time> folder at every learn()."""
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))


def sb3_sac(cfg: SACRunConfig, device: str, impl: str = "sb3") -> SAC:
    """SB3's (or sbx's) SAC on `cfg.env.id` with our lr, buffer, learning_starts, batch, tau,
    gamma, train_freq, gradient_steps, entropy tuning, hidden sizes and seed."""
    SAC = import_module(LIBRARIES[impl]).SAC
    a = cfg.agent
    model = SAC("MlpPolicy", rescaled_env(cfg.env.id), learning_rate=a.lr,
                buffer_size=a.buffer_size, learning_starts=a.learning_starts,
                batch_size=a.batch_size, tau=a.tau, gamma=a.gamma, train_freq=a.train_freq,
                gradient_steps=a.gradient_steps,
                ent_coef=f"auto_{a.init_alpha}" if a.autotune_alpha else a.init_alpha,
                policy_kwargs={"net_arch": list(a.hidden_sizes)}, seed=cfg.seed, device=device)
    without_log_folder(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description="Train a reference SAC for --steps env steps.")
    parser.add_argument("--impl", choices=sorted(LIBRARIES), required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--steps", type=int, required=True,
                        help="env steps, the random ones included")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, as train.py's")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    cfg = load_sac_config(args.config, args.overrides)
    sb3_sac(cfg, args.device, args.impl).learn(total_timesteps=args.steps)


if __name__ == "__main__":
    main()
