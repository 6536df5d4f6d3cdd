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

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import harness  # noqa: E402  (benchmarks/harness.py, beside this script)


def run_ours(config: Path, steps: int, seed: int, eval_episodes: int, threads: int) -> dict[str, Any]:
    import train
    from training.runtime import configure_torch

    configure_torch(threads)  # as train.py does
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        code = train.main(["--config", str(config), "--out", str(out), f"seed={seed}",
                           f"total_steps={steps}", f"eval.episodes={eval_episodes}", "eval.every=0",
                           "checkpoint.every=0", "wandb.mode=disabled", "device=cpu", f"threads={threads}"])
        if code != 0:
            raise RuntimeError(f"train.py exited {code}")
        summary = json.loads((out / "summary.json").read_text())
    return {"eval_return_mean": summary["eval_return_mean"], "eval_return_std": summary["eval_return_std"],
            "wall_time_s": summary["wall_time_s"], "steps_per_s": summary["steps_per_s"]}


def run_sb3(config: Path, steps: int, seed: int, eval_episodes: int, threads: int) -> dict[str, Any]:
    import numpy as np
    from reference import load_sac_config, rescaled_env, sb3_sac
    from stable_baselines3.common.evaluation import evaluate_policy

    from training.runtime import configure_torch

    configure_torch(threads)  # as train.py does
    cfg = load_sac_config(config, [f"seed={seed}", f"total_steps={steps}"])
    model = sb3_sac(cfg, "cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - start
    eval_env = rescaled_env(cfg.env.id)
    eval_env.reset(seed=seed + 10_000)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True,
                                 return_episode_rewards=True)
    return {"eval_return_mean": float(np.mean(returns)), "eval_return_std": float(np.std(returns)),
            "wall_time_s": wall, "steps_per_s": steps / wall}


RUNNERS = {"ours": run_ours, "sb3": run_sb3}


def main() -> None:
    args = harness.parse_args(__doc__.split("\n\n")[0], REPO / "configs" / "sac_pendulum.yaml",
                              [0, 1, 2, 3, 4], list(RUNNERS))
    from reference import load_sac_config

    cfg = load_sac_config(args.config, [])
    steps = args.steps or cfg.total_steps
    env_id = cfg.env.id
    print(f"{env_id}: {steps} steps, seeds {args.seeds}, {args.workers} workers x {args.threads} threads")
    results = harness.run(RUNNERS, args, steps)
    table = harness.report(results, args)
    harness.write_json(args, env_id, steps, table, results)

if __name__ == "__main__":
    main()
