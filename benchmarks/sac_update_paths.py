"""Milliseconds per SAC update for its four gradient paths, side by side in one process.

    python benchmarks/sac_update_paths.py [--rounds 7] [--updates 200] [--threads 2] [--json OUT]

Four SAC agents with HalfCheetah-v5's sizes (obs 17, action 6; the SAC paper's batch 256 and
256-256 networks): `backprop: autograd` (torch.autograd on the loss functions), `backprop:
explicit` (the backward passes written out), `explicit` with `compile: true` (today's
default), and `func + compile` (issue #13's candidate: torch.compile over
torch.func.grad_and_value of the loss functions themselves). After 50 untimed updates each
(the compiles happen there), `--rounds` rounds alternate `--updates` updates of each on 20
rotating random batches. Reported: the median ms per update of each, its ratio to autograd,
and the median of the per-round ratios to explicit + compile. The update alone;
benchmarks/sac_throughput.py times whole training steps.
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
from agents.sac import (  # noqa: E402
    SAC,
    SACConfig,
    StepOutput,
    actor_loss,
    alpha_loss,
    apply_gradients,
    critic_loss,
    phase,
)
from training.runtime import configure_torch  # noqa: E402

OBS_DIM, ACT_DIM, BATCH = 17, 6, 256
PATHS: dict[str, dict[str, Any]] = {"autograd": {"backprop": "autograd"}, "explicit": {},
                                    "explicit + compile": {"compile": True},
                                    "func + compile": {"backprop": "autograd"}}


def with_params(module: torch.nn.Module, params: dict[str, torch.Tensor]) -> Any:
    """module's forward with `params` in place of its own parameters
    (torch.func.functional_call)."""
    return lambda *args, **kwargs: torch.func.functional_call(module, params, args, kwargs)


class FuncCompiledSAC(SAC):
    """Candidate (issue #13): gradients of the loss functions themselves, by
    torch.compile(torch.func.grad_and_value(loss)): forward and backward traced into one graph,
    no autograd at run time, no hand-written backward pass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = {"dynamic": False, "options": {"fallback_random": True}}
        self._critic_grad = torch.compile(
            torch.func.grad_and_value(self._critic_objective, has_aux=True), **options
        )
        self._policy_grad = torch.compile(
            torch.func.grad_and_value(self._policy_objective, argnums=(0, 1), has_aux=True),
            **options)
        self._autograd_step = self._func_step  # type: ignore[method-assign]

    def _critic_objective(self, params: dict[str, torch.Tensor], batch: Batch,
                          alpha: torch.Tensor) -> Any:
        return critic_loss(with_params(self.critic, params), self.target_critic, self.actor, batch,
                           alpha, self.config.gamma)

    def _policy_objective(self, params: dict[str, torch.Tensor], log_alpha: torch.Tensor,
                          obs: torch.Tensor, alpha: torch.Tensor) -> Any:
        loss_pi, info = actor_loss(with_params(self.actor, params), self.critic, obs, alpha)
        loss_a, _ = alpha_loss(log_alpha, info["log_prob"], self.target_entropy)
        return loss_pi + loss_a, (loss_pi, loss_a, info)

    def _func_step(self, batch: Batch, alpha: torch.Tensor) -> StepOutput:
        with phase("sac/critic_update"):
            grads, (loss_q, info_q) = self._critic_grad(dict(self.critic.named_parameters()), batch,
                                                        alpha)
            apply_gradients(self.critic_optimizer, list(grads.values()))
        with phase("sac/actor_update"):
            (grads, grad_log_alpha), (_, (loss_pi, loss_a, info)) = self._policy_grad(
                dict(self.actor.named_parameters()), self.log_alpha.detach(), batch.obs, alpha)
            apply_gradients(self.policy_optimizer, [*grads.values(), grad_log_alpha])
        return StepOutput(loss_q.detach(), loss_pi.detach(), loss_a.detach(), info_q["q"],
                          info["log_prob"], info["scale"])


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
    batches = [Batch(torch.randn(BATCH, OBS_DIM), torch.rand(BATCH, ACT_DIM) * 2 - 1,
                     torch.randn(BATCH), torch.randn(BATCH, OBS_DIM), torch.zeros(BATCH))
               for _ in range(20)]
    agents = {name: (FuncCompiledSAC if name == "func + compile" else SAC)(
        OBS_DIM, ACT_DIM, SACConfig(batch_size=BATCH, **overrides), torch.device("cpu"))
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
    # median over rounds of each path's time relative to today's default (explicit + compile)
    ratio = {name: statistics.median(v / d
                                     for v, d in zip(values, ms["explicit + compile"], strict=True))
             for name, values in ms.items()}
    print(f"SAC update, obs {OBS_DIM}, action {ACT_DIM}, batch {BATCH}, 256-256, {args.threads} "
          f"threads; {args.rounds} rounds x {args.updates} updates\n")
    print("| gradients | median ms per update | relative to autograd | "
          "median per-round ratio to explicit + compile |")
    print("| --- | --- | --- | --- |")
    for name, value in median.items():
        print(f"| {name} | {value:.2f} | {value / median['autograd']:.2f} | {ratio[name]:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "rounds": args.rounds,
                                         "updates": args.updates, "ms_per_update": ms,
                                         "median_ms_per_update": median,
                                         "median_ratio_to_explicit_compile": ratio},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
