"""The envs an RL learner acts in: the training vector env and a separate evaluation env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agents.episodes import EpisodeLog
from agents.evaluation import evaluate_deterministic
from agents.rollout import env_dims
from envs import EnvConfig, get_state, make_env, make_vector_env, set_state
from envs.video import VideoWriter, frames_per_second, prepare_rendering
from policies.actor import TanhSquashedActor

# The evaluation env is seeded with seed + EVAL_SEED_OFFSET, apart from the training
# sub-envs' seeds seed .. seed + num_envs - 1.
EVAL_SEED_OFFSET = 10_000


class RLTask:
    """N training sub-envs with their current observation and finished episodes, plus an
    evaluation env; everything in it is part of a learner's state for exact resume.

    With `video_dir`, each evaluation films its first episode to `video_dir/step_<N>.mp4`
    (rendering draws no random numbers: the figures are those of a run without video).

    Shapes: obs (N, obs_dim), float32 on `device`.
    """

    def __init__(self, config: EnvConfig, seed: int, device: torch.device, eval_episodes: int,
                 video_dir: Path | None = None) -> None:
        self.config, self.device, self.eval_episodes = config, device, eval_episodes
        self.video_dir = video_dir
        self.last_video: Path | None = None  # written by the last evaluation, not yet handed out
        if video_dir is not None:
            prepare_rendering(config.id)  # before any env renders; RenderError says what to install
        self.env = make_vector_env(config.id, config.num_envs, seed)
        self.eval_env = make_env(config.id, seed + EVAL_SEED_OFFSET,
                                 render_mode="rgb_array" if video_dir is not None else None)
        self.obs_dim, self.act_dim = env_dims(self.env)
        first_obs, _ = self.env.reset()
        self.obs = torch.as_tensor(first_obs, dtype=torch.float32, device=device)  # (N, obs_dim)
        self.episodes = EpisodeLog()  # training episodes finished since the last logged advance

    def evaluate(self, actor: TanhSquashedActor, step: int) -> dict[str, float]:
        """`eval_episodes` episodes of the deterministic policy tanh(loc(s)) on the eval env; the
        first one filmed to `video_dir/step_<step>.mp4` when filming."""
        if self.video_dir is None:
            return evaluate_deterministic(self.eval_env, actor, self.eval_episodes, self.device)
        video = VideoWriter(self.video_dir / f"step_{step}.mp4", frames_per_second(self.eval_env))
        try:
            return evaluate_deterministic(self.eval_env, actor, self.eval_episodes, self.device,
                                          video)
        finally:
            video.close()
            self.last_video = video.path

    def pop_video(self) -> Path | None:
        """The MP4 of the last evaluation (None when not filming or already handed out)."""
        path, self.last_video = self.last_video, None
        return path

    def state_dict(self) -> dict[str, Any]:
        return {"env": get_state(self.env), "eval_env": get_state(self.eval_env),
                "obs": self.obs.to("cpu", copy=True), "episodes": self.episodes.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_state(self.env, state["env"])
        set_state(self.eval_env, state["eval_env"])
        self.obs.copy_(state["obs"])
        self.episodes.load_state_dict(state["episodes"])

    def close(self) -> None:
        self.env.close()
        self.eval_env.close()
