"""Milliseconds per SAC update for its three gradient paths, side by side in one process.

    python benchmarks/sac_update_paths.py [--rounds 7] [--updates 200] [--threads 2] [--json OUT]

Three SAC agents with HalfCheetah-v5's sizes (obs 17, action 6; the SAC paper's batch 256 and
256-256 networks): `backprop: autograd` (torch.autograd on the loss functions), `backprop:
explicit` (the backward passes written out) and `explicit` with `compile: true`. After 50
untimed updates each (the compile happens there), `--rounds` rounds alternate `--updates`
updates of each on 20 rotating random batches. Reported: the median ms per update of each and
its ratio to autograd. The update alone; benchmarks/sac_throughput.py times whole training steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.buffer import Batch  # noqa: E402
from agents.sac import SAC, SACConfig  # noqa: E402
from training.runtime import configure_torch  # noqa: E402

OBS_DIM, ACT_DIM, BATCH = 17, 6, 256
PATHS: dict[str, dict[str, Any]] = {"autograd": {"backprop": "autograd"}, "explicit": {}, "explicit + compile": {"compile": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--updates", type=int, default=200, help="updates per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if min(args.rounds, args.updates, args.threads) < 1:
        parser.error("--rounds, --updates and --threads must be >= 1")
    configure_torch(args.threads)  # as train.py does
    torch.manual_seed(0)
    batches = [Batch(torch.randn(BATCH, OBS_DIM), torch.rand(BATCH, ACT_DIM) * 2 - 1, torch.randn(BATCH),
                     torch.randn(BATCH, OBS_DIM), torch.zeros(BATCH)) for _ in range(20)]
    agents = {name: SAC(OBS_DIM, ACT_DIM, SACConfig(batch_size=BATCH, **overrides), torch.device("cpu"))
              for name, overrides in PATHS.items()}
    for agent in agents.values():
        for i in range(50):
            agent.update(batches[i % len(batches)], log=False)
    ms: dict[str, list[float]] = {name: [] for name in agents}
    for _ in range(args.rounds):
        for name, agent in agents.items():
            start = time.perf_counter()
            for i in range(args.updates):
                agent.update(batches[i % len(batches)], log=False)
            ms[name].append((time.perf_counter() - start) / args.updates * 1e3)
    median = {name: statistics.median(values) for name, values in ms.items()}
    print(f"SAC update, obs {OBS_DIM}, action {ACT_DIM}, batch {BATCH}, 256-256, {args.threads} threads; "
          f"{args.rounds} rounds x {args.updates} updates\n")
    print("| gradients | median ms per update | relative to autograd |\n| --- | --- | --- |")
    for name, value in median.items():
        print(f"| {name} | {value:.2f} | {value / median['autograd']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "rounds": args.rounds, "updates": args.updates,
                                         "ms_per_update": ms, "median_ms_per_update": median}, indent=2) + "\n")


if __name__ == "__main__":
    main()
