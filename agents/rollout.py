"""On-policy rollouts: T steps of N vector sub-envs under one fixed policy, and their returns.

Read top to bottom: the `Rollout` record, `collect_rollout` (steps the envs, stores the
pre-squash sample u of every action so the learner scores exactly the draw that was taken),
then the two per-step quantities REINFORCE needs: the discounted reward-to-go and the mask of
steps whose episode ends inside the batch.

Episode ends and the batch end (Sutton & Barto 2018, sec. 3.3; Pardo et al. 2018, "Time Limits
in Reinforcement Learning"): after a *terminal* state nothing more is earned, so the return
stops; after a time-limit *truncation*, or where the batch stops in the middle of an episode,
the episode would have gone on, so the return continues with an estimate V(s') of what follows
(zero when there is no learned V: then those returns are cut short, and `complete_episode_mask`
lets the learner drop the steps whose episode the batch did not see end).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from gymnasium.spaces import Box
from torch import Tensor

from agents.episodes import EpisodeLog
from envs import true_next_obs
from estimators.distributions import TanhSquashed


@dataclass
class Rollout:
    """T consecutive steps of N sub-envs, all taken with one fixed policy.

    `next_obs` is the true successor of each step, also where the episode ended (the vector
    env's `final_obs`, not the first observation of the next episode), so a truncated step can
    be bootstrapped from the state it actually reached.

    Shapes (T steps, N sub-envs, O observation size, A action size):
        obs, next_obs          (T, N, O)
        pre_squash               (T, N, A)  u; the action sent was squash(u)
        reward                 (T, N)
        terminated, truncated  (T, N)     bool
    """

    obs: Tensor
    pre_squash: Tensor
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    next_obs: Tensor


def env_dims(env: gym.vector.VectorEnv) -> tuple[int, int]:
    """(observation size, action size) of a vector env with flat Box spaces (envs.make checks)."""
    obs_space, action_space = env.single_observation_space, env.single_action_space
    assert isinstance(obs_space, Box) and isinstance(action_space, Box)
    return obs_space.shape[0], action_space.shape[0]


@torch.no_grad()
def collect_rollout(
    env: gym.vector.VectorEnv,
    policy: Callable[[Tensor], TanhSquashed],
    obs: Tensor,
    num_steps: int,
    episodes: EpisodeLog,
) -> tuple[Rollout, Tensor]:
    """Step `env` `num_steps` times with actions squash(u), u ~ policy(obs); returns the rollout
    and the observation to continue from. Finished episodes are recorded in `episodes`.

    `env` must auto-reset in the same step (envs.make_vector_env). Everything is written into
    numpy buffers during the loop and converted to tensors once at the end: per-step torch
    writes of a few numbers cost more than the env step of a small task.

    Shapes: obs (N, O) on the policy's device -> Rollout (see above), next obs (N, O).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    device = obs.device
    obs_dim, act_dim = env_dims(env)
    num_envs = obs.shape[0]
    obs_buffer = np.empty((num_steps, num_envs, obs_dim), dtype=np.float32)
    next_obs_buffer = np.empty_like(obs_buffer)
    pre_squash = np.empty((num_steps, num_envs, act_dim), dtype=np.float32)
    reward = np.empty((num_steps, num_envs), dtype=np.float32)
    terminated = np.empty((num_steps, num_envs), dtype=bool)
    truncated = np.empty((num_steps, num_envs), dtype=bool)
    current = obs.cpu().numpy()
    for t in range(num_steps):
        obs_buffer[t] = current
        dist = policy(torch.from_numpy(obs_buffer[t]).to(device))
        u = dist.sample_pre_squash()  # (N, A)
        pre_squash[t] = u.cpu().numpy()
        current, reward[t], terminated[t], truncated[t], infos = env.step(
            dist.squash(u).cpu().numpy()
        )
        next_obs_buffer[t] = true_next_obs(current, infos)  # `current` may start new episodes
        episodes.record(infos)
    rollout = Rollout(
        obs=torch.from_numpy(obs_buffer).to(device),
        pre_squash=torch.from_numpy(pre_squash).to(device),
        reward=torch.from_numpy(reward).to(device),
        terminated=torch.from_numpy(terminated).to(device),
        truncated=torch.from_numpy(truncated).to(device),
        next_obs=torch.from_numpy(next_obs_buffer).to(device),
    )
    return rollout, torch.as_tensor(current, dtype=torch.float32, device=device)


def reward_to_go(
    reward: Tensor, terminated: Tensor, truncated: Tensor, next_value: Tensor, gamma: float
) -> Tensor:
    """Discounted reward-to-go G_t of every step, bootstrapped where an episode is cut.

        G_t = r_t + gamma * c_t,   c_t = 0          if the episode terminated at step t,
                                   c_t = V(s'_t)    if it was truncated at t, or t = T - 1,
                                   c_t = G_{t+1}    otherwise
    (REINFORCE's return, Williams 1992, with the time-limit bootstrap of Pardo et al. 2018.)
    The last row always bootstraps: the batch ends there, so G_T is not in it. Pass zeros
    as `next_value` when there is no learned V.

    Shapes: reward, terminated, truncated, next_value (T, N) -> (T, N).
    """
    if not reward.shape == terminated.shape == truncated.shape == next_value.shape:
        raise ValueError(
            f"shape mismatch: reward {tuple(reward.shape)} vs terminated {tuple(terminated.shape)} "
            f"vs truncated {tuple(truncated.shape)} vs next_value {tuple(next_value.shape)}"
        )
    returns = torch.empty_like(reward)
    following = next_value[-1]  # (N,): the batch ends after row T - 1
    for t in reversed(range(reward.shape[0])):
        following = torch.where(truncated[t], next_value[t], following)
        following = torch.where(terminated[t], torch.zeros_like(following), following)
        returns[t] = reward[t] + gamma * following
        following = returns[t]
    return returns


def complete_episode_mask(terminated: Tensor, truncated: Tensor) -> Tensor:
    """True for the steps whose episode ends (terminated or truncated) inside the batch.

    The steps after a sub-env's last episode end are cut by the batch; without a learned V
    their reward-to-go misses the rest of the episode. Steps of an episode that began in an
    earlier batch are complete: G_t needs only the rewards from t on.

    Shapes: terminated, truncated (T, N) -> (T, N) bool.
    """
    ended = (terminated | truncated).flip(0)  # (T, N), last step first
    return (ended.int().cumsum(0) > 0).flip(0)  # an end at or after step t
