"""Training throughput: our SAC and stable-baselines3's SAC side by side in one process.

    python benchmarks/sac_throughput.py --config configs/sac_halfcheetah.yaml --threads 2 \
        --json benchmarks/results/sac_throughput_halfcheetah.json

Both agents get the hyperparameters of the config (batch, network sizes, lr, gamma, tau,
train_freq, gradient_steps, entropy tuning) plus the same `--learning-starts`, seed and torch
thread count. Each first fills its buffer with `--learning-starts` random steps and trains
`--warmup` steps untimed; then `--rounds` rounds alternate: `--steps` training steps of ours,
then `--steps` of SB3, each timed with a wall clock (the training phase only: env step, action,
buffer, one update per step at the defaults). Reported: median steps/s of each, the median of
the per-round ratios ours / SB3, our ms per training step split by phase (a torch.profiler trace of
the `record_function` labels in agents/sac.py; the actor update includes the alpha update, which
shares its backward pass and optimizer), the FLOPs of one update (counted by
torch.utils.flop_counter) and the fraction of a measured matmul ceiling that rate reaches.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from reference import load_sac_config, sb3_sac  # noqa: E402  (benchmarks/reference.py, beside this script)
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from agents.sac import SACLearner  # noqa: E402
from training.config import SACRunConfig  # noqa: E402
from training.runtime import configure_torch  # noqa: E402

PHASES = ["sac/act", "sac/env_step", "sac/sample", "sac/critic_update", "sac/actor_update",
          "sac/target_update"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "sac_halfcheetah.yaml")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per implementation")
    parser.add_argument("--steps", type=int, default=500, help="training steps per timed round")
    parser.add_argument("--warmup", type=int, default=200, help="untimed training steps before round 1")
    parser.add_argument("--learning-starts", type=int, default=1000, help="random steps before training")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (both implementations)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both implementations)")
    parser.add_argument("--profile-steps", type=int, default=200, help="steps in the phase profile")
    parser.add_argument("--no-sb3", action="store_true", help="time ours only (no ratio)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    for name in ("rounds", "steps", "threads", "profile_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0 or args.learning_starts < 1:
        parser.error("--warmup must be >= 0 and --learning-starts >= 1")
    return args


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Ours:
    """Our SACLearner driven as train.py drives it (metrics every `log.every` steps)."""

    name = "ours"

    def __init__(self, cfg: SACRunConfig, device: torch.device) -> None:
        self.learner = SACLearner(env=cfg.env, agent=cfg.agent, seed=cfg.seed, device=device, eval_episodes=1)
        self.log_every = cfg.log.every
        self.device = device

    def train(self, steps: int) -> None:
        for _ in range(steps):
            self.learner.advance(log=(self.learner.step + 1) % self.log_every == 0)
        synchronize(self.device)


class StableBaselines:
    """stable-baselines3's SAC with the same hyperparameters, trained by repeated `learn` calls."""

    name = "sb3"

    def __init__(self, cfg: SACRunConfig, device: torch.device) -> None:
        self.model = sb3_sac(cfg, str(device))
        self.device = device

    def train(self, steps: int) -> None:
        self.model.learn(total_timesteps=steps, reset_num_timesteps=False)
        synchronize(self.device)


def timed(impl: Ours | StableBaselines, steps: int) -> float:
    """Steps per second of `steps` training steps."""
    start = time.perf_counter()
    impl.train(steps)
    return steps / (time.perf_counter() - start)


def phase_profile(ours: Ours, steps: int) -> dict[str, float]:
    """Mean ms per training step spent in each labelled phase, and in total."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if ours.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        ours.train(steps)
        total_ms = (time.perf_counter() - start) * 1000 / steps  # excludes the profiler's post-processing
    found = {event.key: event.cpu_time_total / 1000 / steps for event in prof.key_averages() if event.key in PHASES}
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
    """Best GFLOP/s of a (batch x hidden) @ (hidden x hidden) fp32 matmul, the update's largest shape."""
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
    configure_torch(args.threads)  # as train.py does, for both implementations (one process)
    device = torch.device(args.device)
    cfg = load_sac_config(args.config, [f"seed={args.seed}", f"agent.learning_starts={args.learning_starts}",
                                        f"device={args.device}", f"threads={args.threads}"])
    impls: list[Ours | StableBaselines] = [Ours(cfg, device)]
    if not args.no_sb3:
        impls.append(StableBaselines(cfg, device))
    print(f"{cfg.env.id}: batch {cfg.agent.batch_size}, hidden {cfg.agent.hidden_sizes}, "
          f"{args.threads} threads, {device}; {args.rounds} rounds x {args.steps} steps", flush=True)
    for impl in impls:  # random steps, then untimed training
        impl.train(args.learning_starts + args.warmup)

    rates: dict[str, list[float]] = {impl.name: [] for impl in impls}
    for round_index in range(args.rounds):
        for impl in impls:
            rates[impl.name].append(timed(impl, args.steps))
        print(f"  round {round_index + 1}: " + ", ".join(f"{k} {v[-1]:.1f} steps/s" for k, v in rates.items()), flush=True)

    ours = impls[0]
    assert isinstance(ours, Ours)
    breakdown = phase_profile(ours, args.profile_steps)
    flops = update_flops(ours)
    ceiling = matmul_ceiling(cfg, device)
    median_ours = statistics.median(rates["ours"])
    result: dict[str, Any] = {
        "env_id": cfg.env.id, "device": str(device), "threads": args.threads, "rounds": args.rounds,
        "steps_per_round": args.steps, "batch_size": cfg.agent.batch_size, "hidden_sizes": cfg.agent.hidden_sizes,
        "torch": torch.__version__, "steps_per_s": rates, "median_steps_per_s": {k: statistics.median(v) for k, v in rates.items()},
        "ms_per_step_by_phase": breakdown, "update_mflop": flops / 1e6, "matmul_ceiling_gflops": ceiling,
        "training_gflops": flops * median_ours / 1e9,  # update FLOPs over the whole (unprofiled) step time
    }
    result["ceiling_fraction"] = result["training_gflops"] / ceiling
    if "sb3" in rates:
        result["median_ratio"] = statistics.median(o / s for o, s in zip(rates["ours"], rates["sb3"], strict=True))

    print(f"\n| {cfg.env.id} | median steps/s | ms per step | median ratio to sb3 |\n| --- | --- | --- | --- |")
    ratio_column = {"ours": f"{result['median_ratio']:.2f}", "sb3": "1.00"} if "median_ratio" in result else {}
    for name, rate in result["median_steps_per_s"].items():
        print(f"| {name} | {rate:.1f} | {1000 / rate:.2f} | {ratio_column.get(name, '')} |")
    print(f"\n| ours, phase (profiled, {args.profile_steps} steps; the profiler adds overhead) | ms per step |\n| --- | --- |")
    for phase, ms in breakdown.items():
        print(f"| {phase} | {ms:.3f} |")
    print(f"one update: {flops / 1e6:.0f} MFLOP; at {1000 / median_ours:.2f} ms per unprofiled training step that is "
          f"{result['training_gflops']:.0f} GFLOP/s, {100 * result['ceiling_fraction']:.0f}% of the measured "
          f"{ceiling:.0f} GFLOP/s matmul ceiling")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
