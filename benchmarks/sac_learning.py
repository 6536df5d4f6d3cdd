"""Learning quality: our SAC (through train.py) and stable-baselines3's SAC, same settings and seeds.

    python benchmarks/sac_learning.py --config configs/sac_pendulum.yaml --seeds 0 1 2 3 4 --impl ours
    python benchmarks/sac_learning.py --config configs/sac_halfcheetah.yaml --steps 50000 \
        --seeds 0 1 2 --impl ours sb3 --workers 2 --json benchmarks/results/halfcheetah_50k.json

Each (implementation, seed) run happens in its own worker process with `--threads` torch
threads. Both implementations get the hyperparameters of our config (lr, batch, buffer,
learning_starts, gamma, tau, hidden sizes, train_freq, gradient_steps, entropy tuning) and are
evaluated the same way: the deterministic policy for `--eval-episodes` episodes on a fresh env
seeded `seed + 10_000` after the last step. The table gives mean +- std over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run_ours(config: Path, steps: int, seed: int, eval_episodes: int, threads: int) -> dict[str, Any]:
    import torch

    import train

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        code = train.main(["--config", str(config), "--out", str(out), f"seed={seed}",
                           f"total_steps={steps}", f"eval.episodes={eval_episodes}", "eval.every=0",
                           "checkpoint.every=0", "wandb.mode=disabled", "device=cpu", f"threads={threads}"])
        if code != 0:
            raise RuntimeError(f"train.py exited {code}")
        summary = json.loads((out / "summary.json").read_text())
    return {"impl": "ours", "seed": seed, "eval_return_mean": summary["eval_return_mean"],
            "eval_return_std": summary["eval_return_std"], "wall_time_s": summary["wall_time_s"]}


def run_sb3(config: Path, steps: int, seed: int, eval_episodes: int, threads: int) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.evaluation import evaluate_policy

    from training.config import load_config

    torch.set_num_threads(threads)
    cfg = load_config(config, [f"seed={seed}", f"total_steps={steps}"])
    a = cfg.agent  # type: ignore[attr-defined]
    env = gym.wrappers.RescaleAction(gym.make(cfg.env.id), -1.0, 1.0)  # type: ignore[attr-defined]
    model = SAC("MlpPolicy", env, learning_rate=a.lr, buffer_size=a.buffer_size,
                learning_starts=a.learning_starts, batch_size=a.batch_size, tau=a.tau, gamma=a.gamma,
                train_freq=a.train_freq, gradient_steps=a.gradient_steps,
                ent_coef=f"auto_{a.init_alpha}" if a.autotune_alpha else a.init_alpha,
                policy_kwargs={"net_arch": list(a.hidden_sizes)}, seed=seed, device="cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - start
    eval_env = gym.wrappers.RescaleAction(gym.make(cfg.env.id), -1.0, 1.0)  # type: ignore[attr-defined]
    eval_env.reset(seed=seed + 10_000)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True,
                                 return_episode_rewards=True)
    return {"impl": "sb3", "seed": seed, "eval_return_mean": float(np.mean(returns)),
            "eval_return_std": float(np.std(returns)), "wall_time_s": wall}


RUNNERS = {"ours": run_ours, "sb3": run_sb3}


def _run(job: tuple[str, Path, int, int, int, int]) -> dict[str, Any]:
    impl, config, steps, seed, eval_episodes, threads = job
    result = RUNNERS[impl](config, steps, seed, eval_episodes, threads)
    print(f"  {impl:5s} seed {seed}: eval return {result['eval_return_mean']:9.1f} "
          f"({result['wall_time_s']:.0f} s)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "sac_pendulum.yaml")
    parser.add_argument("--steps", type=int, default=None, help="env steps (default: the config's total_steps)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--impl", nargs="+", choices=sorted(RUNNERS), default=["ours", "sb3"])
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.workers < 1 or args.threads < 1:
        parser.error("--workers and --threads must be >= 1")

    from training.config import load_config

    cfg = load_config(args.config, [])
    steps = args.steps or cfg.total_steps
    env_id = cfg.env.id  # type: ignore[attr-defined]
    print(f"{env_id}: {steps} steps, seeds {args.seeds}, {args.workers} workers x {args.threads} threads")
    jobs = [(impl, args.config, steps, seed, args.eval_episodes, args.threads)
            for seed in args.seeds for impl in args.impl]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(_run, jobs))

    table: dict[str, Any] = {}
    print(f"\n| implementation | {' | '.join(f'seed {s}' for s in args.seeds)} | mean +- std |")
    print(f"| --- |{' --- |' * len(args.seeds)} --- |")
    for impl in args.impl:
        rows = [r for r in results if r["impl"] == impl]
        returns = [r["eval_return_mean"] for r in rows]
        mean, std = statistics.fmean(returns), statistics.pstdev(returns)
        table[impl] = {"returns": returns, "mean": mean, "std": std, "min": min(returns),
                       "wall_time_s": [r["wall_time_s"] for r in rows]}
        print(f"| {impl} | {' | '.join(f'{x:.1f}' for x in returns)} | {mean:.1f} +- {std:.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env_id": env_id, "steps": steps, "seeds": args.seeds,
                                         "eval_episodes": args.eval_episodes, "results": table,
                                         "runs": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
