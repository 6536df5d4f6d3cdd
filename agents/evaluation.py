"""Whole episodes of a fixed policy on one env: the `eval/...` figures every RL learner logs, and
what `python -m agents.play` prints and films."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from envs.video import VideoWriter
from policies.actor import TanhSquashedActor


def run_episodes(
    env: gym.Env, act: Callable[[Tensor], Tensor], episodes: int, device: torch.device,
    video: VideoWriter | None = None, filmed: int = 0,
) -> tuple[list[float], list[int]]:
    """Play `episodes` episodes of `act` on `env` (envs.make_env: it records episode statistics);
    return each one's return and length. The first `filmed` episodes go into `video`, one frame
    after the reset and one after every step (so L + 1 frames for an episode of L steps; the
    env needs render_mode="rgb_array"). The env's own RNG continues from call to call.

    Shapes: act maps observations (1, obs_dim) to actions (1, act_dim) in the env's action units.
    """
    returns, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset()
        camera = video if episode < filmed else None
        if camera is not None:
            camera.capture(env)
        while True:
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device)
            action = act(obs_t.unsqueeze(0))  # (O,) -> (1, O) -> (1, A)
            obs, _, terminated, truncated, info = env.step(action[0].cpu().numpy())
            if camera is not None:
                camera.capture(env)
            if terminated or truncated:
                returns.append(float(info["episode"]["r"]))
                lengths.append(int(info["episode"]["l"]))
                break
    return returns, lengths


def evaluate_deterministic(
    env: gym.Env, actor: TanhSquashedActor, episodes: int, device: torch.device,
    video: VideoWriter | None = None,
) -> dict[str, float]:
    """`episodes` episodes of the mode action tanh(loc(s)), the first one filmed into `video`;
    returns `eval/return_mean`, `eval/return_std`, `eval/length_mean`, `eval/episodes`."""
    returns, lengths = run_episodes(env, lambda obs: actor.act(obs, deterministic=True), episodes,
                                    device, video, filmed=1)
    return {
        "eval/return_mean": float(np.mean(returns)),
        "eval/return_std": float(np.std(returns)),
        "eval/length_mean": float(np.mean(lengths)),
        "eval/episodes": float(len(returns)),
    }
