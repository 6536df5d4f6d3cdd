"""What every learning benchmark shares: its arguments, the worker pool, the table and the JSON.

A benchmark script supplies `runners`, one function per implementation with the signature
`runner(config, steps, seed, eval_episodes, threads) -> dict` returning at least
`eval_return_mean`, `eval_return_std`, `wall_time_s` and `steps_per_s`.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

Runner = Callable[[Path, int, int, int, int], dict[str, Any]]


def parse_args(description: str, default_config: Path, default_seeds: list[int],
               impls: list[str], extra: Callable[[argparse.ArgumentParser], None] | None = None
               ) -> argparse.Namespace:
    """The arguments every learning benchmark takes, and a script's own (`extra` adds them)."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--config", type=Path, default=default_config)
    parser.add_argument("--steps", type=int, default=None,
                        help="env steps (default: the config's total_steps)")
    parser.add_argument("--seeds", type=int, nargs="+", default=default_seeds)
    parser.add_argument("--impl", nargs="+", choices=impls, default=impls)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="runs at a time, one process each")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.workers < 1 or args.threads < 1 or args.eval_episodes < 1:
        parser.error("--workers, --threads and --eval-episodes must be >= 1")
    return args


def _job(job: tuple[Runner, str, Path, int, int, int, int]) -> dict[str, Any]:
    runner, impl, config, steps, seed, eval_episodes, threads = job
    result = {"impl": impl, "seed": seed, **runner(config, steps, seed, eval_episodes, threads)}
    print(f"  {impl:5s} seed {seed}: eval return {result['eval_return_mean']:9.1f}, "
          f"{result['steps_per_s']:6.0f} steps/s ({result['wall_time_s']:.0f} s)", flush=True)
    return result


def run(runners: Mapping[str, Runner], args: argparse.Namespace,
        steps: int) -> list[dict[str, Any]]:
    """Every (seed, implementation) run; a seed's implementations are queued next to each other."""
    jobs = [(runners[impl], impl, args.config, steps, seed, args.eval_episodes, args.threads)
            for seed in args.seeds for impl in args.impl]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        return list(pool.map(_job, jobs))


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Print the markdown table (per-seed eval returns, mean +- std, steps/s);
    return its figures."""
    table: dict[str, Any] = {}
    print(f"\n| implementation | {' | '.join(f'seed {s}' for s in args.seeds)} | "
          "mean +- std | steps/s |")
    print(f"| --- |{' --- |' * len(args.seeds)} --- | --- |")
    for impl in args.impl:
        rows = [r for r in results if r["impl"] == impl]
        returns = [r["eval_return_mean"] for r in rows]
        mean, std = statistics.fmean(returns), statistics.pstdev(returns)
        rate = statistics.fmean(r["steps_per_s"] for r in rows)
        table[impl] = {"returns": returns, "mean": mean, "std": std, "min": min(returns),
                       "steps_per_s": rate, "wall_time_s": [r["wall_time_s"] for r in rows]}
        print(f"| {impl} | {' | '.join(f'{x:.1f}' for x in returns)} | {mean:.1f} +- {std:.1f} | "
              f"{rate:.0f} |")
    return table


def write_json(args: argparse.Namespace, env_id: str, steps: int, table: dict[str, Any],
               results: list[dict[str, Any]]) -> None:
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env_id": env_id, "steps": steps, "seeds": args.seeds,
                                         "eval_episodes": args.eval_episodes, "results": table,
                                         "runs": results}, indent=2) + "\n")
