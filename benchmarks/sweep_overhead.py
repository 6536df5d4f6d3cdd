"""What Ray costs a trial: one-trial sweeps against the same run under train.py, alternately.

    python benchmarks/sweep_overhead.py --rounds 3 --json benchmarks/results/sweep_overhead.json

Each round runs `python sweep.py` with a one-trial sweep (SAC on Pendulum-v1, the default
config without compile, `--steps` env steps, W&B off), then `python train.py` with that trial's
resolved config.yaml. Reported per round: the sweep's wall time, the trial's own wall_time_s
(summary.json), their difference (starting the private Ray instance and the trial's worker,
stopping them, writing the report), and the steps/s of the trial and of its train.py twin.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command[:3])} exited {result.returncode}: "
                 f"{result.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def one_round(tmp: Path, steps: int) -> dict[str, float]:
    sweep = tmp / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "overhead", "runs": [str(REPO / "configs" / "sac_pendulum.yaml")], "seeds": [0],
        "overrides": {"total_steps": steps, "agent.compile": False, "eval.every": 0,
                      "checkpoint.every": 0, "wandb.mode": "disabled"}}))
    sweep_wall = timed([sys.executable, str(REPO / "sweep.py"), "--config", str(sweep),
                        "--out", str(tmp / "out")])
    trial = tmp / "out" / "trials" / "sac-Pendulum-v1-s0"
    in_sweep = json.loads((trial / "summary.json").read_text())
    train_wall = timed([sys.executable, str(REPO / "train.py"),
                        "--config", str(trial / "config.yaml"), "--out", str(tmp / "twin")])
    twin = json.loads((tmp / "twin" / "summary.json").read_text())
    return {"sweep_wall_s": sweep_wall, "trial_wall_time_s": in_sweep["wall_time_s"],
            "overhead_s": sweep_wall - in_sweep["wall_time_s"], "train_py_wall_s": train_wall,
            "train_py_overhead_s": train_wall - twin["wall_time_s"],
            "trial_steps_per_s": in_sweep["steps_per_s"],
            "train_py_steps_per_s": twin["steps_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 200:
        parser.error("--rounds must be >= 1 and --steps >= 200")
    rounds = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(one_round(Path(tmp), args.steps))
        print(f"round {i}: " + ", ".join(f"{k} {v:.2f}" for k, v in rounds[-1].items()), flush=True)
    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    ratio = statistics.median(r["trial_steps_per_s"] / r["train_py_steps_per_s"] for r in rounds)
    print("\n| median of rounds | sweep.py (Ray) | train.py |\n| --- | --- | --- |")
    print(f"| wall time of the run, s | {medians['sweep_wall_s']:.1f} | "
          f"{medians['train_py_wall_s']:.1f} |")
    print(f"| of it outside training, s | {medians['overhead_s']:.1f} | "
          f"{medians['train_py_overhead_s']:.1f} |")
    print(f"| training steps/s | {medians['trial_steps_per_s']:.1f} | "
          f"{medians['train_py_steps_per_s']:.1f} |")
    print(f"\ntrial / train.py steps/s, median of the per-round ratios: {ratio:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "rounds": rounds, "medians": medians,
                                         "steps_per_s_ratio": ratio}, indent=1) + "\n")


if __name__ == "__main__":
    main()
