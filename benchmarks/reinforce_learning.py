"""Learning quality and speed of our REINFORCE, next to stable-baselines3's closest relative.

    nice -n 10 python benchmarks/reinforce_learning.py --seeds 0 1 2 --impl ours \
        --json benchmarks/results/reinforce_inverted_pendulum.json
    python benchmarks/reinforce_learning.py --config configs/reinforce_inverted_pendulum.yaml \
        --seeds 0 1 2 --impl ours sb3

Ours is `agents.reinforce.ReinforceLearner` driven step by step the way train.py drives it
(seeded the same way, no checkpoints or logging sinks), so the time of the updates alone can be
measured: `steps_per_s` counts env steps per second of `advance()` calls, evaluation excluded.
Before and after training, each worker measures the raw step rate of the same vector env with
uniform random actions and no learning (`raw_steps_per_s`, the mean of the two: the machine's
load may change during a run); `speed_ratio` = steps_per_s / raw_steps_per_s is the share of
the env's own speed that survives the policy and the updates.

The reference is stable-baselines3's A2C set up as REINFORCE with a learned baseline: returns
to the end of each `rollout_steps` x `num_envs` batch bootstrapped from V there
(gae_lambda = 1, i.e. Monte-Carlo returns), normalized advantages, Adam at our lr, no
entropy bonus, one update per batch, our hidden sizes. It differs in what its library fixes:
a state-independent log-std, no tanh squashing (actions clipped), V fitted by one joint
gradient step per batch instead of our `value_steps`, and gradient clipping at 0.5.

Both are evaluated after the last step with the deterministic policy for `--eval-episodes`
episodes on an env seeded `seed + 10_000`. The table gives mean +- std over seeds.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import harness  # noqa: E402  (benchmarks/harness.py, beside this script)

# Env steps of the raw-rate measurement.
RAW_RATE_STEPS = 20_000


def load(config: Path) -> dict[str, Any]:
    """The config's env and agent sections, checked by the run-config loader's `build`."""
    import yaml

    from agents.reinforce import ReinforceConfig
    from envs import EnvConfig
    from training.config import build

    raw = yaml.safe_load(config.read_text())
    if raw.get("kind") != "reinforce":
        raise SystemExit(f"error: {config} is not a reinforce config (kind: {raw.get('kind')})")
    return {"env": build(EnvConfig, raw["env"], "env"),
            "agent": build(ReinforceConfig, raw["agent"], "agent"),
            "total_steps": raw["total_steps"]}


def raw_step_rate(env_id: str, num_envs: int, seed: int) -> float:
    """Env steps per second of the vector env alone, uniform random actions."""
    from envs import make_vector_env

    env = make_vector_env(env_id, num_envs, seed)
    env.reset()
    steps = max(1, RAW_RATE_STEPS // num_envs)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(env.action_space.sample())
    rate = steps * num_envs / (time.perf_counter() - start)
    env.close()
    return rate


def run_ours(config: Path, steps: int, seed: int, eval_episodes: int,
             threads: int) -> dict[str, Any]:
    import numpy as np
    import torch

    from agents.reinforce import ReinforceLearner
    from training.runtime import configure_torch

    configure_torch(threads)  # as train.py does
    cfg = load(config)
    raw_before = raw_step_rate(cfg["env"].id, cfg["env"].num_envs, seed)
    random.seed(seed)  # as train.py's seed_everything
    np.random.seed(seed)
    torch.manual_seed(seed)
    learner = ReinforceLearner(cfg["env"], cfg["agent"], seed, torch.device("cpu"),
                               eval_episodes, 0)
    train_time = 0.0
    while learner.step < steps:
        start = time.perf_counter()
        learner.advance(log=False)
        train_time += time.perf_counter() - start
    result = learner.evaluate()
    learner.close()
    rate = learner.step / train_time
    raw_rate = 0.5 * (raw_before + raw_step_rate(cfg["env"].id, cfg["env"].num_envs, seed))
    return {"eval_return_mean": result["eval/return_mean"],
            "eval_return_std": result["eval/return_std"], "wall_time_s": train_time,
            "steps_per_s": rate, "raw_steps_per_s": raw_rate, "speed_ratio": rate / raw_rate}


def run_sb3(config: Path, steps: int, seed: int, eval_episodes: int,
            threads: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from reference import rescaled_env, without_log_folder
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from training.runtime import configure_torch

    configure_torch(threads)  # as train.py does
    cfg = load(config)
    env_cfg, a = cfg["env"], cfg["agent"]

    env = make_vec_env(lambda: rescaled_env(env_cfg.id), n_envs=env_cfg.num_envs, seed=seed)
    model = A2C("MlpPolicy", env, learning_rate=a.lr, n_steps=a.rollout_steps, gamma=a.gamma,
                gae_lambda=1.0, ent_coef=a.entropy_coef,
                normalize_advantage=a.normalize_advantage, use_rms_prop=False,
                policy_kwargs={"net_arch": list(a.hidden_sizes), "activation_fn": torch.nn.ReLU},
                seed=seed, device="cpu")
    without_log_folder(model)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - start
    eval_env = rescaled_env(env_cfg.id)
    eval_env.reset(seed=seed + 10_000)
    returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True,
                                 return_episode_rewards=True)
    return {"eval_return_mean": float(np.mean(returns)),
            "eval_return_std": float(np.std(returns)), "wall_time_s": wall,
            "steps_per_s": steps / wall}


RUNNERS = {"ours": run_ours, "sb3": run_sb3}


def main() -> None:
    args = harness.parse_args(__doc__.split("\n\n")[0],
                              REPO / "configs" / "reinforce_inverted_pendulum.yaml",
                              [0, 1, 2], list(RUNNERS))
    cfg = load(args.config)
    steps = args.steps or cfg["total_steps"]
    env_id = cfg["env"].id
    print(f"{env_id}: {steps} steps, seeds {args.seeds}, "
          f"{args.workers} workers x {args.threads} threads")
    results = harness.run(RUNNERS, args, steps)
    table = harness.report(results, args)
    if "ours" in table:
        ours = [r for r in results if r["impl"] == "ours"]
        table["ours"]["raw_steps_per_s"] = statistics.fmean(r["raw_steps_per_s"] for r in ours)
        table["ours"]["speed_ratio"] = statistics.fmean(r["speed_ratio"] for r in ours)
        print(f"\nours: {table['ours']['steps_per_s']:.0f} env steps/s while learning = "
              f"{table['ours']['speed_ratio']:.2f} x the raw env rate "
              f"({table['ours']['raw_steps_per_s']:.0f} steps/s)")
    if "ours" in table and "sb3" in table:
        table["return_ratio_ours_to_sb3"] = table["ours"]["mean"] / table["sb3"]["mean"]
        table["speed_ratio_ours_to_sb3"] = (table["ours"]["steps_per_s"]
                                            / table["sb3"]["steps_per_s"])
        print(f"ours / sb3: return {table['return_ratio_ours_to_sb3']:.2f}, "
              f"speed {table['speed_ratio_ours_to_sb3']:.2f}")
    harness.write_json(args, env_id, steps, table, results)

if __name__ == "__main__":
    main()
