"""Deterministic-policy evaluation on a separate env: the `eval/...` figures every RL learner logs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from policies.actor import TanhGaussianActor


def evaluate_deterministic(
    env: gym.Env, actor: TanhGaussianActor, episodes: int, device: torch.device
) -> dict[str, float]:
    """`episodes` episodes of the mode action tanh(loc(s)) on `env` (envs.make_env: it records
    episode statistics); returns `eval/return_mean`, `eval/return_std`, `eval/length_mean`,
    `eval/episodes`. The env's own RNG continues from call to call (no reseeding)."""
    returns, lengths = [], []
    for _ in range(episodes):
        obs, _ = env.reset()
        while True:
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
            action = actor.act(obs_t.unsqueeze(0), deterministic=True)  # (O,) -> (1, O) -> (1, A)
            obs, _, terminated, truncated, info = env.step(action[0].cpu().numpy())
            if terminated or truncated:
                returns.append(float(info["episode"]["r"]))
                lengths.append(int(info["episode"]["l"]))
                break
    return {
        "eval/return_mean": float(np.mean(returns)),
        "eval/return_std": float(np.std(returns)),
        "eval/length_mean": float(np.mean(lengths)),
        "eval/episodes": float(len(returns)),
    }
