"""Watch a trained policy: `python -m agents.play --run RUN [--episodes N] [--seed S]
[--video OUT.mp4] [--stochastic]`.

Loads the run's policy with agents.load_policy (newest good checkpoint, the env's own action
bounds), plays N episodes of its task from `--seed` (the first reset is seeded, the next ones
continue its stream, as training's evaluation does) and prints each episode's return and length.
With `--video` it renders every episode offscreen (no display or GPU needed: envs.video picks
EGL or OSMesa for MuJoCo tasks) into one MP4 at the task's real-time frame rate.
Exit codes: 0 done; 2 bad input or a machine that cannot render (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from agents.evaluation import run_episodes
from agents.policy import load_policy
from envs import make_env
from envs.video import VideoWriter, frames_per_second, prepare_rendering


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agents.play",
                                     description="Play (and film) the policy of a SAC or "
                                                 "REINFORCE run.")
    parser.add_argument("--run", required=True, type=Path,
                        help="run directory (config.yaml, checkpoints/)")
    parser.add_argument("--episodes", type=int, default=1, help="episodes to play (default 1)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the env (and of --stochastic's noise)")
    parser.add_argument("--video", type=Path, metavar="OUT.mp4",
                        help="write the episodes as an MP4 here")
    parser.add_argument("--stochastic", action="store_true",
                        help="sample actions from the policy (default: its deterministic mode, "
                             "as evaluated)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; bad input exits 2 via argparse with one line."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.video is not None and args.video.suffix.lower() != ".mp4":
        parser.error(f"--video writes an MP4; give a path ending in .mp4, got {args.video}")
    try:
        policy = load_policy(args.run, deterministic=not args.stochastic)
        renderer = prepare_rendering(policy.env_id) if args.video is not None else None
        env = make_env(policy.env_id, args.seed, rescale=False,
                       render_mode="rgb_array" if args.video is not None else None)
    except ValueError as e:  # RunError, RenderError, an env that cannot be built
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    mode = "stochastic" if args.stochastic else "deterministic"
    print(f"{policy.kind} run {args.run} ({policy.env_id}), checkpoint {policy.checkpoint.name} "
          f"(step {policy.step}), {mode} policy, seed {args.seed}")
    video = VideoWriter(args.video, frames_per_second(env)) if args.video is not None else None
    try:
        returns, lengths = run_episodes(env, policy, args.episodes, policy.device, video,
                                        filmed=args.episodes)
    finally:
        if video is not None:
            video.close()
        env.close()
    for i, (episode_return, length) in enumerate(zip(returns, lengths, strict=True)):
        print(f"episode {i}: return {episode_return:.2f}, length {length}")
    if args.episodes > 1:
        print(f"mean return {np.mean(returns):.2f} +- {np.std(returns):.2f} "
              f"over {args.episodes} episodes")
    if video is not None:
        print(f"wrote {video.path} ({video.frames} frames at {frames_per_second(env):g} fps, "
              f"drawn with {renderer})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
