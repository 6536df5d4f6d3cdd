"""`python train.py` idle and under load: torch threads, the thread governor and the OpenMP
wait policy.

    python benchmarks/train_threads.py --config configs/sac_halfcheetah.yaml \
        --json benchmarks/results/train_threads_halfcheetah.json

Every setting is a `python train.py` process (eval, checkpoints and W&B reduced to the minimum);
its rate is the difference of a `--steps` short and long run (benchmarks/process_timing.py).
A setting is a thread count (`auto`: train.py's default), whether the run adapts its threads to
other work (`--adapt on`: train.py's default `adapt_threads: true`; `off`: fixed threads) and a
wait policy: `default` leaves the environment alone, `spin` is libgomp's own default when
nothing is set (GOMP_SPINCOUNT=300000: a waiting thread spins 300k times before it sleeps),
`passive` sleeps at once (OMP_WAIT_POLICY=PASSIVE), `spin-N` spins N times. "Loaded" runs the same
settings while `--load` single-threaded numpy matmul loops (this script starts and stops
them) compete for the CPUs. `--rounds` rounds alternate every setting; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from process_timing import clean_env, difference_rate, wall_time  # noqa: E402

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
BUSY_LOOP = ("import numpy as np\na = np.random.rand(256, 256)\n"
             "while True:\n    a = a @ a\n    a /= np.abs(a).max()\n")


def wait_env(policy: str) -> dict[str, str]:
    """The environment variables of a wait policy (see the module docstring)."""
    if policy == "default":
        return {}
    if policy == "passive":
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    if policy == "spin":
        return {"GOMP_SPINCOUNT": "300000"}
    count = policy.removeprefix("spin-")
    if not (policy.startswith("spin-") and count.isdigit()):
        raise ValueError(f"wait policy must be default, passive, spin or spin-N, got {policy!r}")
    return {"GOMP_SPINCOUNT": count}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "sac_halfcheetah.yaml")
    parser.add_argument("--threads", nargs="+", default=["1", "2"],
                        help="torch threads; auto = train.py's default")
    parser.add_argument("--waits", nargs="+", default=["spin", "passive"], help="wait policies")
    parser.add_argument("--adapt", nargs="+", choices=["on", "off"], default=["on", "off"],
                        help="adapt_threads true / false")
    parser.add_argument("--load", type=int, default=1,
                        help="competing busy processes in the loaded half (0: idle only)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--steps", type=int, nargs=2, default=[1500, 3000],
                        metavar=("SHORT", "LONG"))
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120, help="seconds one run may take")
    parser.add_argument("--json", type=Path)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="train.py overrides")
    args = parser.parse_args()
    try:
        for policy in args.waits:
            wait_env(policy)
    except ValueError as e:
        parser.error(str(e))
    if any(t != "auto" and not (t.isdigit() and int(t) >= 1) for t in args.threads):
        parser.error(f"--threads take auto or numbers >= 1, got {args.threads}")
    if args.rounds < 1 or args.load < 0 or not args.learning_starts < args.steps[0] < args.steps[1]:
        parser.error("need --rounds >= 1, --load >= 0 and --learning-starts < SHORT < LONG")
    return args


def train_command(threads: str, adapt: str, steps: int, out: Path,
                  args: argparse.Namespace) -> list[str]:
    command = [sys.executable, str(REPO / "train.py"), "--config", str(args.config),
               "--out", str(out), f"total_steps={steps}",
               f"agent.learning_starts={args.learning_starts}", "device=cpu",
               "eval.every=0", "eval.episodes=1", "checkpoint.every=0", "wandb.mode=disabled",
               f"adapt_threads={'true' if adapt == 'on' else 'false'}", *args.overrides]
    return command if threads == "auto" else [*command, f"threads={threads}"]


def start_load(processes: int) -> list[subprocess.Popen[bytes]]:
    env = clean_env(SINGLE_THREAD)
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP], env=env) for _ in range(processes)]


def stop_load(load: list[subprocess.Popen[bytes]]) -> None:
    for process in load:
        process.terminate()
    for process in load:
        process.wait()


def main() -> None:
    args = parse_args()
    settings = [(threads, adapt, policy) for threads in args.threads for adapt in args.adapt
                for policy in args.waits]
    loads = [0] + ([args.load] if args.load else [])
    rates: dict[str, list[float | None]] = {}
    short, long = args.steps
    print(f"{args.config.name}: {len(settings)} settings x {len(loads)} loads x "
          f"{args.rounds} rounds of a {short}- and a {long}-step train.py run", flush=True)
    # an untimed run first fills inductor's disk cache
    with tempfile.TemporaryDirectory() as scratch:
        wall_time(train_command("1", "off", short, Path(scratch) / "warmup", args),
                  clean_env({"PYTHONPATH": str(REPO)}), args.timeout)
        for round_index in range(args.rounds):
            for load in loads:
                competing = start_load(load)
                try:
                    for threads, adapt, policy in settings:
                        key = f"threads={threads} adapt={adapt} wait={policy} load={load}"
                        env = clean_env({"PYTHONPATH": str(REPO), **wait_env(policy)})
                        run_dir = Path(scratch) / f"{key}-{round_index}".replace(" ", "_")
                        took = [wall_time(train_command(threads, adapt, steps,
                                                        run_dir / str(steps), args),
                                          env, args.timeout)
                                for steps in (short, long)]
                        rate = None if None in took else difference_rate(short, long, *took)  # type: ignore[arg-type]
                        rates.setdefault(key, []).append(rate)
                        shown = "timed out" if rate is None else f"{rate:.1f} steps/s"
                        print(f"  round {round_index + 1}: {key}: {shown} ({took})", flush=True)
                finally:
                    stop_load(competing)

    medians: dict[str, float | None] = {}
    print("\n| threads | adapt | wait policy | idle steps/s | loaded steps/s |"
          "\n| --- | --- | --- | --- | --- |")
    for threads, adapt, policy in settings:
        row = []
        for load in loads:
            key = f"threads={threads} adapt={adapt} wait={policy} load={load}"
            finished = [v for v in rates[key] if v is not None]
            medians[key] = statistics.median(finished) if len(finished) == len(rates[key]) else None
            row.append(f"> {args.timeout:.0f} s a run" if medians[key] is None
                       else f"{medians[key]:.1f}")
        print(f"| {threads} | {adapt} | {policy} | " + " | ".join(row) + " |")
    if args.json:
        result: dict[str, Any] = {"config": (str(args.config.relative_to(REPO))
                                             if args.config.is_relative_to(REPO)
                                             else str(args.config)),
                                  "steps": args.steps, "learning_starts": args.learning_starts,
                                  "load": args.load, "rounds": args.rounds,
                                  "timeout_s": args.timeout, "overrides": args.overrides,
                                  "steps_per_s": rates, "median_steps_per_s": medians}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
