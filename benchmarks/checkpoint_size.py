"""Size and write/read time of a checkpoint holding a full 1M-transition replay buffer.

    python benchmarks/checkpoint_size.py [--capacity 1000000] [--repeats 3] [--json OUT]

Fills our ReplayBuffer with random transitions of the observation/action sizes of
HalfCheetah-v5 and Humanoid-v5, then times agents.checkpoint.save_checkpoint (temporary file,
fsync, rename, SHA-256) and load_latest (checksum + weights_only load). Medians of --repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.buffer import ReplayBuffer  # noqa: E402
from agents.checkpoint import load_latest, save_checkpoint  # noqa: E402

TASKS = {"HalfCheetah-v5": (17, 6), "Humanoid-v5": (348, 17)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.capacity < 1 or args.repeats < 1:
        parser.error("--capacity and --repeats must be >= 1")
    torch.set_num_threads(1)
    results = {}
    for task, (obs_dim, act_dim) in TASKS.items():
        buffer = ReplayBuffer(args.capacity, obs_dim, act_dim, 256, torch.device("cpu"), seed=0)
        chunk = min(100_000, args.capacity)
        for start in range(0, args.capacity, chunk):
            n = min(chunk, args.capacity - start)
            buffer.add(torch.randn(n, obs_dim), torch.rand(n, act_dim), torch.randn(n),
                       torch.randn(n, obs_dim), torch.zeros(n))
        with tempfile.TemporaryDirectory(dir=REPO) as tmp:
            writes = []
            for i in range(args.repeats):
                start_t = time.perf_counter()
                path = save_checkpoint({"learner": {"buffer": buffer.state_dict()}}, Path(tmp), i)
                writes.append(time.perf_counter() - start_t)
            start_t = time.perf_counter()
            load_latest(Path(tmp))
            read = time.perf_counter() - start_t
            size = path.stat().st_size
        results[task] = {"size_mib": size / 2**20, "write_s_median": statistics.median(writes),
                         "write_s": writes, "read_s": read}
        print(f"{task}: {args.capacity} transitions -> {size / 2**20:.0f} MiB; write median "
              f"{statistics.median(writes):.2f} s ({', '.join(f'{w:.2f}' for w in writes)}); "
              f"verified read {read:.2f} s", flush=True)
        del buffer
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
