"""The return of uniformly random actions: the `random` score that normalizes each task in sweep
reports (training/reference_scores.yaml).

    python benchmarks/random_scores.py HalfCheetah-v5 Hopper-v5 Walker2d-v5 Ant-v5 Humanoid-v5 \
        Pendulum-v1

Per task: the mean and std of the return over `--episodes` episodes of actions drawn uniformly
from the action space, on the env train.py builds (envs.make_env), seeded `--seed`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs import make_env


def random_returns(env_id: str, episodes: int, seed: int) -> list[float]:
    env = make_env(env_id, seed)
    env.action_space.seed(seed)
    returns = []
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_ids", nargs="+")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    table = {}
    print("| task | random return, mean +- std |\n| --- | --- |")
    for env_id in args.env_ids:
        returns = random_returns(env_id, args.episodes, args.seed)
        table[env_id] = {"mean": statistics.fmean(returns), "std": statistics.pstdev(returns),
                         "episodes": args.episodes, "seed": args.seed}
        print(f"| {env_id} | {table[env_id]['mean']:.1f} +- {table[env_id]['std']:.1f} |",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
