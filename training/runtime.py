"""Process-wide torch settings of a run (the thread count and denormal flushing), and the
versions of the libraries that decide its numbers."""

from __future__ import annotations

import os
from importlib import metadata

import torch


def resolve_threads(threads: int | str) -> int:
    """`auto` -> OMP_NUM_THREADS when it is set (Ray sets it per trial), else this process's CPUs."""
    if threads != "auto":
        return int(threads)
    from_env = os.environ.get("OMP_NUM_THREADS", "")
    if from_env.isdigit() and int(from_env) >= 1:
        return int(from_env)
    return len(os.sched_getaffinity(0))


def configure_torch(threads: int | str) -> None:
    """Use `threads` intra-op threads (`auto`: see resolve_threads) and flush denormal floats to zero.

    Denormals (|x| < 1.2e-38 in float32) cost x86 CPUs roughly 100x per operation, and SAC
    training produces them: flushing them took our update on Hopper-v5 from 4.09 to 3.53 ms
    (benchmarks/NOTES.md). No value at or above 1.2e-38 changes.
    """
    torch.set_num_threads(resolve_threads(threads))
    torch.set_flush_denormal(True)  # returns False where the CPU lacks the flag; then a no-op


# the distributions whose versions change a run's numbers (MuJoCo's physics, gymnasium's envs)
VERSIONED = ("torch", "numpy", "gymnasium", "mujoco", "stable-baselines3")


def library_versions() -> dict[str, str]:
    """{distribution: version} of those in VERSIONED that are installed (summary.json `versions`)."""
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
