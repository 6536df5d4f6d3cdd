"""A trained run's policy as a plain module: `load_policy(run_dir)` -> observations to actions.

The learners train in [-1, 1]^A, with envs that rescale that box onto each task's bounds
(envs.make). The loaded policy acts in the task's own bounds instead, so it steps a plain
`gymnasium.make(env_id)` env: the actor's squash writes the rescale in
(action = bias + scale * tanh(u) with scale = (high - low) / 2, bias = (high + low) / 2, the
same affine map as gymnasium's RescaleAction from [-1, 1]), so there is no second copy of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from gymnasium.spaces import Box
from torch import Tensor, nn

from agents.run import Run, RunError, read_run
from envs import make_env
from policies.actor import TanhSquashedActor


class Policy(nn.Module):
    """A run's actor, acting in the env's own action bounds; no gradients.

    `deterministic`: the mode bias + scale * tanh(loc(s)) (what training evaluates), else a
    sample from the policy (torch's global RNG). Attributes: `kind` (sac or reinforce), `env_id`,
    `observation_space`, `action_space` (the task's own), `checkpoint` (the file it came from)
    and `step` (its env step).

    Shapes:
        obs      (N, obs_dim) tensor or array (a single (obs_dim,) observation works too)
        returns  (N, act_dim) float32 tensor on the policy's device, within action_space
    """

    def __init__(self, actor: TanhSquashedActor, run: Run, observation_space: Box,
                 action_space: Box, deterministic: bool) -> None:
        super().__init__()
        self.actor, self.deterministic = actor, deterministic
        # What it came from, without the checkpoint's contents (a replay buffer can be GiBs).
        self.kind, self.env_id, self.checkpoint, self.step = (run.kind, run.env_id, run.checkpoint,
                                                              run.step)
        self.observation_space, self.action_space = observation_space, action_space

    @property
    def device(self) -> torch.device:
        return self.actor.action_scale.device

    @torch.no_grad()
    def forward(self, obs: Tensor | np.ndarray) -> Tensor:
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return self.actor.act(obs_t, self.deterministic)


def load_policy(run_dir: str | Path, device: str | torch.device = "cpu",
                deterministic: bool = True) -> Policy:
    """The policy of a SAC or REINFORCE run from its newest good checkpoint (read with
    weights_only=True, as `train.py --resume` reads it), in eval mode on `device`.

    Raises RunError (a ValueError with a one-line message) for a missing directory, a run
    without a policy (a VAE) or without a checkpoint; ValueError for an env it cannot build.
    """
    run = read_run(run_dir)
    env = make_env(run.env_id, seed=0, rescale=False)  # only for the task's own spaces
    observation_space, action_space = env.observation_space, env.action_space
    env.close()
    assert isinstance(observation_space, Box) and isinstance(action_space, Box)  # envs.make checks
    agent = run.config["agent"]
    try:  # runs from before agent.policy_distribution existed used the normal
        actor = TanhSquashedActor(observation_space.shape[0], action_space.shape[0],
                                  agent["hidden_sizes"], agent.get("policy_distribution", "normal"))
    except ValueError as e:
        raise RunError(f"{run.path / 'config.yaml'}: agent.policy_distribution: {e}") from None
    try:
        actor.load_state_dict(run.state["learner"]["agent"]["actor"])
    except (KeyError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RunError(f"{run.checkpoint} does not hold an actor for {run.env_id} "
                       f"with hidden sizes {run.config['agent']['hidden_sizes']} "
                       f"({first})") from None
    low = torch.as_tensor(action_space.low, dtype=torch.float32)
    high = torch.as_tensor(action_space.high, dtype=torch.float32)
    actor.action_scale = (high - low) / 2  # (A,): maps tanh's (-1, 1) onto (low, high)
    actor.action_bias = (high + low) / 2  # (A,)
    return Policy(actor, run, observation_space, action_space, deterministic).to(device).eval()
