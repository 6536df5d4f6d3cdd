"""Learning quality: our SAC (through train.py) and stable-baselines3's SAC,
same settings and seeds.

    python benchmarks/sac_learning.py --config configs/sac_pendulum.yaml --seeds 0 1 2 3 4 \
        --impl ours
    python benchmarks/sac_learning.py --config configs/sac_halfcheetah.yaml --steps 50000 \
        --seeds 0 1 2 --impl ours sb3 --workers 2 --json benchmarks/results/halfcheetah_50k.json

Each (implementation, seed) run happens in its own worker process with `--threads` torch
threads. Both implementations get the hyperparameters of our config (lr, batch, buffer,
learning_starts, gamma, tau, hidden sizes, train_freq, gradient_steps, entropy tuning) and are
evaluated the same way: the deterministic policy for `--eval-episodes` episodes on a fresh env
seeded `seed + 10_000` after the last step. The table gives mean +- std over seeds.

With `--trials-dir DIR/trials --eval-every N`, each stable-baselines3 run is also written as a
run directory `sb3-<env>-s<seed>/` (metrics.jsonl with train.py's evaluation schedule,
summary.json with `"impl": "sb3"`), so `python sweep.py --report DIR` puts it beside a sweep's
trials:

    python benchmarks/sac_learning.py --config configs/sac_halfcheetah.yaml --steps 100000 \
        --seeds 0 1 2 --impl sb3 --workers 2 --eval-every 5000 \
        --trials-dir benchmarks/results/mujoco_100k/trials
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import harness  # noqa: E402  (benchmarks/harness.py, beside this script)


def run_ours(config: Path, steps: int, seed: int, eval_episodes: int,
             threads: int) -> dict[str, Any]:
    import train
    from training.runtime import configure_torch

    configure_torch(threads)  # as train.py does
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        code = train.main(["--config", str(config), "--out", str(out), f"seed={seed}",
                           f"total_steps={steps}", f"eval.episodes={eval_episodes}", "eval.every=0",
                           "checkpoint.every=0", "wandb.mode=disabled", "device=cpu",
                           f"threads={threads}"])
        if code != 0:
            raise RuntimeError(f"train.py exited {code}")
        summary = json.loads((out / "summary.json").read_text())
    return {"eval_return_mean": summary["eval_return_mean"],
            "eval_return_std": summary["eval_return_std"], "wall_time_s": summary["wall_time_s"],
            "steps_per_s": summary["steps_per_s"]}


def run_sb3(config: Path, steps: int, seed: int, eval_episodes: int, threads: int,
            eval_every: int = 0, trials_dir: Path | None = None) -> dict[str, Any]:
    """SB3's SAC with our settings; with `trials_dir`, also a reportable run directory
    `trials_dir/sb3-<env>-s<seed>/` (metrics.jsonl with an evaluation every `eval_every` steps
    and at the end, summary.json with `impl` and `variant` sb3), which `sweep.py --report` reads."""
    import numpy as np
    from reference import load_sac_config, rescaled_env, sb3_sac
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    from training.runtime import configure_torch, library_versions

    configure_torch(threads)  # as train.py does
    cfg = load_sac_config(config, [f"seed={seed}", f"total_steps={steps}"])
    model = sb3_sac(cfg, "cpu")
    eval_env = rescaled_env(cfg.env.id)
    eval_env.reset(seed=seed + 10_000)  # one env for every evaluation, as train.py's
    rows: list[dict[str, float]] = []

    def evaluate(step: int) -> None:
        returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes,
                                     deterministic=True, return_episode_rewards=True)
        rows.append({"global_step": step, "eval/return_mean": float(np.mean(returns)),
                     "eval/return_std": float(np.std(returns)),
                     "eval/episodes": float(eval_episodes)})

    class Evaluations(BaseCallback):
        """train.py's schedule: every `eval_every` steps before the last, then once at the end."""

        def _on_step(self) -> bool:
            if eval_every and self.num_timesteps % eval_every == 0 and self.num_timesteps < steps:
                evaluate(self.num_timesteps)
            return True

    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=Evaluations())
    evaluate(steps)
    wall = time.perf_counter() - start
    final = rows[-1]
    if trials_dir is not None:
        run_dir = trials_dir / f"sb3-{cfg.env.id}-s{seed}"
        run_dir.mkdir(parents=True, exist_ok=True)
        run_dir.joinpath("metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        run_dir.joinpath("summary.json").write_text(json.dumps({
            "kind": "sac", "seed": seed, "status": "completed", "total_steps": steps,
            "wall_time_s": round(wall, 3), "steps_per_s": round(steps / wall, 3),
            "resumed_from": [], "impl": "sb3", "variant": "sb3", "versions": library_versions(),
            "env_id": cfg.env.id, "eval_return_mean": final["eval/return_mean"],
            "eval_return_std": final["eval/return_std"],
            "eval_episodes": eval_episodes}, indent=2) + "\n")
    return {"eval_return_mean": final["eval/return_mean"],
            "eval_return_std": final["eval/return_std"], "wall_time_s": wall,
            "steps_per_s": steps / wall}


RUNNERS = {"ours": run_ours, "sb3": run_sb3}


def main() -> None:
    def reportable(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--trials-dir", type=Path,
                            help="write each sb3 run as a reportable run directory here "
                                 "(a sweep's trials/)")
        parser.add_argument("--eval-every", type=int, default=0,
                            help="with --trials-dir: evaluate sb3 every this many steps "
                                 "(0: at the end only)")

    args = harness.parse_args(__doc__.split("\n\n")[0], REPO / "configs" / "sac_pendulum.yaml",
                              [0, 1, 2, 3, 4], list(RUNNERS), extra=reportable)
    if args.eval_every < 0:
        sys.exit("error: --eval-every must be >= 0")
    if args.trials_dir is not None:
        RUNNERS["sb3"] = functools.partial(run_sb3, eval_every=args.eval_every,
                                           trials_dir=args.trials_dir.resolve())
    from reference import load_sac_config

    cfg = load_sac_config(args.config, [])
    steps = args.steps or cfg.total_steps
    env_id = cfg.env.id
    print(f"{env_id}: {steps} steps, seeds {args.seeds}, "
          f"{args.workers} workers x {args.threads} threads")
    results = harness.run(RUNNERS, args, steps)
    table = harness.report(results, args)
    harness.write_json(args, env_id, steps, table, results)

if __name__ == "__main__":
    main()
