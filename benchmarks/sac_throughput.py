"""Training throughput: our SAC against stable-baselines3's and sbx's, each run as its users run it.

    python benchmarks/sac_throughput.py --config configs/sac_halfcheetah.yaml \
        --json benchmarks/results/sac_throughput_halfcheetah.json

Each implementation trains in its own process with its own defaults: ours is `python train.py`
(threads: auto, its OpenMP wait policy), SB3 and sbx are `benchmarks/reference.py` calling
`learn` (torch's and XLA's own thread pools). All get the config's hyperparameters (batch,
network sizes, lr, gamma, tau, train_freq, gradient_steps, entropy tuning), the same
`--learning-starts` and seed, and the overrides given after the options. A rate is the
difference of a `--steps` short and long run (benchmarks/process_timing.py), so start-up and
compiling cancel; `--rounds` rounds alternate the implementations, and the table gives the
median rate of each and the median of the per-round ratios of ours to each reference.
sbx needs JAX, so it usually lives in its own venv: `--sbx-python` (or `SBX_PYTHON`) names that
venv's python; without one, sbx is reported as not installed unless this python imports it.

Variants of ours for a GPU (`--device cuda`): `ours-eager` (agent.compile=false) and
`ours-cudagraphs` (compiled, with inductor's CUDA graphs: TORCHINDUCTOR_CUDAGRAPHS=1, what
`torch.compile(mode="reduce-overhead")` turns on).

After the rounds, ours is profiled in this process (`--threads`, default auto, as train.py
resolves it): ms per training step split by phase (a torch.profiler trace of the
`record_function` labels in agents/sac.py; the actor update includes the alpha update, which
shares its backward pass and optimizer), the FLOPs of one update (counted by
torch.utils.flop_counter) and the fraction of a measured matmul ceiling that rate reaches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from process_timing import clean_env, difference_rate, wall_time  # noqa: E402  (beside this script)
from reference import load_sac_config  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from agents.sac import SACLearner  # noqa: E402
from training.config import SACRunConfig  # noqa: E402
from training.runtime import configure_torch, resolve_threads  # noqa: E402

PHASES = ["sac/act", "sac/env_step", "sac/sample", "sac/critic_update", "sac/actor_update",
          "sac/target_update"]
# each variant of ours: the train.py overrides and environment it adds to train.py's defaults
OURS = {"ours": ([], {}), "ours-eager": (["agent.compile=false"], {}),
        "ours-cudagraphs": (["agent.compile=true"], {"TORCHINDUCTOR_CUDAGRAPHS": "1"})}
REFERENCES = ("sb3", "sbx")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "sac_halfcheetah.yaml")
    parser.add_argument("--impl", nargs="+", choices=[*OURS, *REFERENCES],
                        default=["ours", "sb3", "sbx"],
                        help="what to time; the first is the numerator of the ratios")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--steps", type=int, nargs=2, default=[1500, 3000],
                        metavar=("SHORT", "LONG"),
                        help="env steps of the short and the long run (random steps included)")
    parser.add_argument("--learning-starts", type=int, default=1000,
                        help="random steps before training")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one run may take")
    parser.add_argument("--threads", default="auto", help="torch threads of the in-process profile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (every implementation)")
    parser.add_argument("--sbx-python", default=os.environ.get("SBX_PYTHON"),
                        help="python of a venv with sbx-rl "
                             "(default: $SBX_PYTHON, else this python)")
    parser.add_argument("--profile-steps", type=int, default=200, help="steps in the phase profile")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides for every implementation")
    args = parser.parse_args()
    for name in ("rounds", "profile_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    short, long = args.steps
    if not args.learning_starts < short < long:
        parser.error(f"need --learning-starts < SHORT < LONG, got {args.learning_starts}, "
                     f"{short}, {long}")
    if args.threads != "auto" and not (args.threads.isdigit() and int(args.threads) >= 1):
        parser.error(f"--threads must be auto or >= 1, got {args.threads}")
    return args


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Ours:
    """Our SACLearner driven as train.py drives it (metrics every `log.every` steps),
    for the profile."""

    def __init__(self, cfg: SACRunConfig, device: torch.device) -> None:
        self.learner = SACLearner(env=cfg.env, agent=cfg.agent, seed=cfg.seed, device=device,
                                  eval_episodes=1)
        self.log_every = cfg.log.every
        self.device = device

    def train(self, steps: int) -> None:
        for _ in range(steps):
            self.learner.advance(log=(self.learner.step + 1) % self.log_every == 0)
        synchronize(self.device)


def sbx_python(requested: str | None) -> str | None:
    """The python that runs sbx: `requested`, else this one if it imports sbx; None if neither."""
    candidate = requested or sys.executable
    found = subprocess.run([candidate, "-c", "import sbx"], capture_output=True, check=False)
    if found.returncode != 0 and requested:
        print(f"sbx: {requested} does not import sbx (pip install sbx-rl there)", file=sys.stderr)
    return candidate if found.returncode == 0 else None


def command(impl: str, steps: int, args: argparse.Namespace, out: Path, python: str) -> list[str]:
    """The command line that trains `impl` for `steps` env steps, as its users would run it."""
    settings = [f"seed={args.seed}", f"agent.learning_starts={args.learning_starts}",
                *args.overrides]
    if impl in OURS:
        return [python, str(REPO / "train.py"), "--config", str(args.config), "--out", str(out),
                f"total_steps={steps}", f"device={args.device}", "eval.every=0", "eval.episodes=1",
                "checkpoint.every=0", "wandb.mode=disabled", *settings, *OURS[impl][0]]
    return [python, str(REPO / "benchmarks" / "reference.py"), "--impl", impl, "--config",
            str(args.config), "--steps", str(steps), "--device", args.device, *settings]


def process_rates(impls: dict[str, str], args: argparse.Namespace) -> dict[str, list[float]]:
    """Steps/s of each implementation (name -> its python) in each round,
    from short and long runs."""
    rates: dict[str, list[float]] = {impl: [] for impl in impls}
    short, long = args.steps
    with tempfile.TemporaryDirectory() as scratch:
        for impl, python in impls.items():  # untimed: fills the disk caches (inductor's, imports)
            env = clean_env({"PYTHONPATH": str(REPO), **OURS.get(impl, ([], {}))[1]})
            wall_time(command(impl, short, args, Path(scratch) / f"{impl}-warmup", python), env,
                      args.timeout)
        for round_index in range(args.rounds):
            for impl, python in impls.items():
                env = clean_env({"PYTHONPATH": str(REPO), **OURS.get(impl, ([], {}))[1]})
                seconds = []
                for steps in (short, long):
                    out = Path(scratch) / f"{impl}-{round_index}-{steps}"
                    took = wall_time(command(impl, steps, args, out, python), env, args.timeout)
                    if took is None:
                        raise SystemExit(f"error: a {steps}-step run of {impl} took over "
                                         f"{args.timeout:.0f} s")
                    seconds.append(took)
                rates[impl].append(difference_rate(short, long, *seconds))
            print(f"  round {round_index + 1}: "
                  + ", ".join(f"{k} {v[-1]:.1f} steps/s" for k, v in rates.items()),
                  flush=True)
    return rates


def phase_profile(ours: Ours, steps: int) -> dict[str, float]:
    """Mean ms per training step spent in each labelled phase, and in total."""
    activities = ([ProfilerActivity.CPU]
                  + ([ProfilerActivity.CUDA] if ours.device.type == "cuda" else []))
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        ours.train(steps)
        # excludes the profiler's post-processing
        total_ms = (time.perf_counter() - start) * 1000 / steps
    found = {event.key: event.cpu_time_total / 1000 / steps for event in prof.key_averages()
             if event.key in PHASES}
    breakdown = {phase.removeprefix("sac/"): found.get(phase, 0.0) for phase in PHASES}
    breakdown["other"] = max(total_ms - sum(breakdown.values()), 0.0)
    breakdown["total"] = total_ms
    return breakdown


def update_flops(ours: Ours) -> int:
    """Floating-point operations (matmuls, as torch counts them) of one SAC update."""
    agent, buffer = ours.learner.agent, ours.learner.buffer
    with FlopCounterMode(display=False) as counter:
        agent.update(buffer.sample(), log=False)
    return counter.get_total_flops()


def matmul_ceiling(cfg: SACRunConfig, device: torch.device, repeats: int = 200) -> float:
    """Best GFLOP/s of a (batch x hidden) @ (hidden x hidden) fp32 matmul,
    the update's largest shape."""
    batch, hidden = cfg.agent.batch_size, max(cfg.agent.hidden_sizes)
    a = torch.randn(batch, hidden, device=device)
    b = torch.randn(hidden, hidden, device=device)
    out = torch.empty(batch, hidden, device=device)
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b, out=out)
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * batch * hidden * hidden / best / 1e9


def main() -> None:
    args = parse_args()
    cfg = load_sac_config(args.config, [f"seed={args.seed}",
                                        f"agent.learning_starts={args.learning_starts}",
                                        f"device={args.device}", *args.overrides])
    impls: dict[str, str] = {}
    not_installed = []
    for impl in args.impl:
        python = sbx_python(args.sbx_python) if impl == "sbx" else sys.executable
        if python is None:
            not_installed.append(impl)
        else:
            impls[impl] = python
    if not_installed:
        print(f"not installed: {', '.join(not_installed)} (see --sbx-python)", flush=True)
    short, long = args.steps
    print(f"{cfg.env.id}: batch {cfg.agent.batch_size}, hidden {cfg.agent.hidden_sizes}, "
          f"{args.device}; each implementation at its own default threads; {args.rounds} rounds "
          f"of a {short}- and a {long}-step run",
          flush=True)
    rates = process_rates(impls, args)
    medians = {impl: statistics.median(r) for impl, r in rates.items()}
    first = next(iter(rates))
    ratios = {other: statistics.median(o / r
                                       for o, r in zip(rates[first], rates[other], strict=True))
              for other in rates if other != first}

    threads = resolve_threads(args.threads)
    configure_torch(threads)  # as train.py does
    device = torch.device(args.device)
    ours = Ours(cfg, device)
    ours.train(args.learning_starts + args.profile_steps)  # random steps, compile, warm-up
    breakdown = phase_profile(ours, args.profile_steps)
    flops = update_flops(ours)
    ceiling = matmul_ceiling(cfg, device)
    step_s = 1 / medians[first] if first in OURS else breakdown["total"] / 1000
    # training_gflops: update FLOPs over the whole (unprofiled) step time
    result: dict[str, Any] = {
        "env_id": cfg.env.id, "device": str(device), "rounds": args.rounds, "steps": args.steps,
        "learning_starts": args.learning_starts, "batch_size": cfg.agent.batch_size,
        "hidden_sizes": cfg.agent.hidden_sizes, "torch": torch.__version__,
        "cpus": len(os.sched_getaffinity(0)), "steps_per_s": rates, "median_steps_per_s": medians,
        "median_ratio": ratios, "ratio_of": first, "not_installed": not_installed,
        "profile_threads": threads, "ms_per_step_by_phase": breakdown,
        "update_mflop": flops / 1e6, "matmul_ceiling_gflops": ceiling,
        "training_gflops": flops / step_s / 1e9,
    }
    result["ceiling_fraction"] = result["training_gflops"] / ceiling

    print(f"\n| {cfg.env.id} | median steps/s | ms per step | {first} / it (median of rounds) |"
          "\n| --- | --- | --- | --- |")
    for name, rate in medians.items():
        ratio = "1.00" if name == first else f"{ratios[name]:.2f}"
        print(f"| {name} | {rate:.1f} | {1000 / rate:.2f} | {ratio} |")
    for name in not_installed:
        print(f"| {name} | not installed | | |")
    print(f"\n| ours, phase (in process, {threads} threads, profiled {args.profile_steps} steps; "
          f"the profiler adds overhead) | ms per step |\n| --- | --- |")
    for phase, ms in breakdown.items():
        print(f"| {phase} | {ms:.3f} |")
    print(f"one update: {flops / 1e6:.0f} MFLOP; at {1000 * step_s:.2f} ms per training step "
          f"that is {result['training_gflops']:.0f} GFLOP/s, "
          f"{100 * result['ceiling_fraction']:.0f}% of the measured "
          f"{ceiling:.0f} GFLOP/s matmul ceiling")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
