"""Use a trained policy outside Python: `python -m agents.export --run RUN --onnx OUT.onnx
[--opset K] [--check N]`.

Exports the deterministic policy of a SAC or REINFORCE run (agents.load_policy: observations to
actions in the env's own bounds, bias + scale * tanh(loc(s))) to ONNX with torch.export, input
`obs` (batch, obs_dim) float32 with a dynamic batch dimension, output `action` (batch, act_dim).
Only the deterministic path goes into the graph (TanhSquashedActor.mode): building the
torch.distributions object would pin the batch size, and sampling has no place in a deployed
controller. The command then checks the file with onnxruntime against load_policy on N random
observations, at batch sizes 1 and N, prints the largest absolute difference and fails (exit 1)
above TOLERANCE. Exit codes: 0 exported and checked; 1 the check failed; 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from agents.policy import Policy, load_policy

# ONNX opset of the exported graph (Gemm, Relu, Tanh, Split, Mul, Add: every runtime of the
# last years has them); 18 is torch.onnx's default.
OPSET = 18
# Largest |onnx - torch| accepted, in action units: float32 rounding through the MLP is ~1e-7 of
# the action range; a wrong graph is off by far more.
TOLERANCE = 1e-5


class DeterministicPolicy(nn.Module):
    """The graph that is exported: obs (B, obs_dim) float32 -> action (B, act_dim) in env units."""

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.actor = policy.actor

    def forward(self, obs: Tensor) -> Tensor:
        return self.actor.mode(obs)


def export_onnx(policy: Policy, out: Path, opset: int = OPSET) -> None:
    """Write `policy`'s deterministic path to `out` with a dynamic batch dimension."""
    module = DeterministicPolicy(policy).eval()
    example = torch.zeros(2, policy.observation_space.shape[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    # The exporter logs a warning for each torchvision op it cannot register (none is used here)
    # and torch.export raises a FutureWarning from its own pytree code: neither is about this model.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        torch.onnx.export(module, (example,), str(out), input_names=["obs"],
                          output_names=["action"], opset_version=opset, dynamo=True,
                          verbose=False, external_data=False,
                          dynamic_shapes={"obs": {0: torch.export.Dim("batch")}})


def max_difference(policy: Policy, onnx_path: Path, samples: int, seed: int) -> float:
    """max |onnxruntime(obs) - policy(obs)| over `samples` standard-normal observations, run
    once as one batch of `samples` and once one at a time (batch 1)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    obs = torch.randn(samples, policy.observation_space.shape[0], generator=generator)  # (N, O)
    expected = policy(obs).numpy()  # (N, A)
    batched = session.run(["action"], {"obs": obs.numpy()})[0]  # (N, A)
    single = [session.run(["action"], {"obs": row[None]})[0][0] for row in obs.numpy()]  # N x (A,)
    return float(max(abs(batched - expected).max(),
                     max(abs(s - e).max() for s, e in zip(single, expected, strict=True))))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agents.export",
                                     description="Export the deterministic policy of a SAC or "
                                                 "REINFORCE run to ONNX.")
    parser.add_argument("--run", required=True, type=Path,
                        help="run directory (config.yaml, checkpoints/)")
    parser.add_argument("--onnx", required=True, type=Path, metavar="OUT.onnx",
                        help="where to write the model")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument("--check", type=int, default=256, metavar="N",
                        help="random observations of the onnxruntime check (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the check's observations")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; bad input exits 2 via argparse with one line."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.onnx.suffix.lower() != ".onnx":
        parser.error(f"--onnx writes an ONNX model; give a path ending in .onnx, got {args.onnx}")
    if args.check < 1:
        parser.error(f"--check must be >= 1, got {args.check}")
    try:
        policy = load_policy(args.run)
    except ValueError as e:  # RunError: no run, a VAE run, no checkpoint
        print(f"error: {e}", file=sys.stderr)
        return 2
    obs_dim, act_dim = policy.observation_space.shape[0], policy.action_space.shape[0]
    export_onnx(policy, args.onnx, args.opset)
    print(f"wrote {args.onnx}: {policy.kind} {policy.env_id} checkpoint {policy.checkpoint.name} "
          f"(step {policy.step}), opset {args.opset}, input obs (batch, {obs_dim}) float32 -> "
          f"action (batch, {act_dim}) in [{policy.action_space.low.min():g}, "
          f"{policy.action_space.high.max():g}]")
    difference = max_difference(policy, args.onnx, args.check, args.seed)
    verdict = "ok" if difference <= TOLERANCE else f"FAILED (> {TOLERANCE:g})"
    print(f"onnxruntime vs load_policy on {args.check} random observations (batch {args.check} and "
          f"batch 1): max abs difference {difference:.3g}: {verdict}")
    return 0 if difference <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
