"""The off-policy learner scaffolding that SAC (and any other replay-buffer agent) runs in.

`OffPolicyLearner` owns what does not depend on the algorithm: the envs (agents.task.RLTask),
the replay buffer, and the schedule of one advance: uniform random actions while
step < learning_starts, policy samples after; one step of every sub-env; the transitions
stored with the true final observation of finished episodes and `terminated` as the only
bootstrap mask; then, once step > learning_starts and every `train_freq` advances,
`gradient_steps` updates of the agent on sampled batches. The agent brings its networks and
its update (`OffPolicyAgent`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.profiler import record_function

from agents.buffer import Batch, ReplayBuffer
from agents.task import RLTask
from envs import true_next_obs
from policies.actor import TanhSquashedActor


def phase(name: str) -> AbstractContextManager[Any]:
    """A `record_function` label naming a phase in torch.profiler traces
    (benchmarks/sac_throughput.py).

    Only while a profiler runs: otherwise a label costs about 6 us, 1% of a training step.
    """
    return record_function(name) if torch.autograd._profiler_enabled() else nullcontext()


class ReplaySchedule(Protocol):
    """The fields of an agent's config that the off-policy loop reads (e.g. SACConfig)."""

    batch_size: int
    buffer_size: int
    learning_starts: int
    train_freq: int
    gradient_steps: int


class OffPolicyAgent(Protocol):
    """What the loop needs of an agent: a policy to act with and a one-batch update."""

    actor: TanhSquashedActor

    def update(self, batch: Batch, log: bool) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class OffPolicyLearner:
    """An off-policy agent on a vector env, driven by train.py through the Learner protocol.

    One `advance` steps every sub-env once (`step` grows by num_envs); see the module
    docstring for the schedule. `name` prefixes the profiler labels (`<name>/act`,
    `<name>/env_step`, `<name>/sample`). Build the task before the agent and the agent before
    this (the order the seeded global RNG is drawn in).

    Shapes: task.obs (N, obs_dim); actions (N, act_dim) in [-1, 1].
    """

    def __init__(self, task: RLTask, agent: OffPolicyAgent, schedule: ReplaySchedule, seed: int,
                 device: torch.device, name: str) -> None:
        num_envs = task.config.num_envs
        if schedule.buffer_size < num_envs:
            raise ValueError(
                f"agent.buffer_size ({schedule.buffer_size}) must be >= env.num_envs ({num_envs}) "
                "to hold one step of every sub-env"
            )
        self.task, self.agent, self.schedule = task, agent, schedule
        self.buffer = ReplayBuffer(schedule.buffer_size, task.obs_dim, task.act_dim,
                                   schedule.batch_size, device, seed)
        self.step = 0
        self.steps_per_advance = num_envs
        self.num_advances = 0
        self._phases = {key: f"{name}/{key}" for key in ("act", "env_step", "sample")}

    def advance(self, log: bool) -> dict[str, float]:
        schedule, task = self.schedule, self.task
        with phase(self._phases["act"]):
            action: Tensor
            if self.step < schedule.learning_starts:
                action_np = task.env.action_space.sample()  # (N, A), uniform on [-1, 1]
                action = torch.from_numpy(action_np)
            else:
                action = self.agent.actor.act(task.obs, deterministic=False)  # (N, A)
                action_np = action.cpu().numpy()
        with phase(self._phases["env_step"]):
            next_obs, reward, terminated, _truncated, infos = task.env.step(action_np)
            self.buffer.add(
                task.obs,
                action,
                torch.from_numpy(reward),
                torch.from_numpy(true_next_obs(next_obs, infos)),
                torch.from_numpy(terminated),  # not truncated: a time limit is no terminal state
            )
        task.episodes.record(infos)
        task.obs.copy_(torch.from_numpy(next_obs))
        self.step += self.steps_per_advance
        self.num_advances += 1

        metrics: dict[str, float] = {}
        if (self.step > schedule.learning_starts
                and self.num_advances % schedule.train_freq == 0):
            for i in range(schedule.gradient_steps):
                with phase(self._phases["sample"]):
                    batch = self.buffer.sample()
                last = i == schedule.gradient_steps - 1
                metrics = self.agent.update(batch, log=log and last)
        if not log:
            return {}
        return metrics | task.episodes.pop_metrics()

    def evaluate(self) -> dict[str, float]:
        return self.task.evaluate(self.agent.actor, self.step)

    def pop_video(self) -> Path | None:
        """The MP4 the last evaluation filmed (with video_dir), once; else None."""
        return self.task.pop_video()

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "num_advances": self.num_advances,
            "agent": self.agent.state_dict(),
            "buffer": self.buffer.state_dict(),
            "task": self.task.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.num_advances = state["step"], state["num_advances"]
        self.agent.load_state_dict(state["agent"])
        self.buffer.load_state_dict(state["buffer"])
        self.task.load_state_dict(state["task"])

    def summary(self) -> dict[str, Any]:
        return {"env_id": self.task.config.id}

    def write_figures(self, out_dir: Path) -> list[Path]:
        return []

    def close(self) -> None:
        self.task.close()
