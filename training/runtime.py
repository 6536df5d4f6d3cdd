"""Process-wide torch settings of a run (the thread count, kept to the CPUs that other work
leaves free, and denormal flushing), and the versions of the libraries that decide its numbers."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import torch


def resolve_threads(threads: int | str) -> int:
    """`auto` -> OMP_NUM_THREADS when it is set (Ray sets it per trial),
    else this process's CPUs."""
    if threads != "auto":
        return int(threads)
    from_env = os.environ.get("OMP_NUM_THREADS", "")
    if from_env.isdigit() and int(from_env) >= 1:
        return int(from_env)
    return len(os.sched_getaffinity(0))


def configure_torch(threads: int | str) -> None:
    """Use `threads` intra-op threads (`auto`: see resolve_threads) and flush denormal floats
    to zero.

    Denormals (|x| < 1.2e-38 in float32) cost x86 CPUs roughly 100x per operation, and SAC
    training produces them: flushing them took our update on Hopper-v5 from 4.09 to 3.53 ms
    (benchmarks/NOTES.md). No value at or above 1.2e-38 changes.
    """
    torch.set_num_threads(resolve_threads(threads))
    torch.set_flush_denormal(True)  # returns False where the CPU lacks the flag; then a no-op


# /proc/stat's per-CPU columns (man 5 proc): user nice system idle iowait irq softirq steal ...;
# `user` already includes guest time. Busy = all but idle and iowait; steal is CPU time the
# hypervisor gave to someone else, so it counts as other work too.
BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_cpu_seconds(stat_path: Path, cpus: set[int]) -> float | None:
    """CPU seconds that `cpus` have spent busy since boot (/proc/stat), or None where unreadable."""
    try:
        lines = stat_path.read_text().splitlines()
    except OSError:
        return None
    ticks = 0
    for line in lines:
        name, *columns = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks += sum(int(columns[i]) for i in BUSY_COLUMNS if i < len(columns))
    return ticks / CLOCK_TICKS


class ThreadGovernor:
    """Keeps torch's intra-op threads at the CPUs that other processes leave free,
    at most `max_threads`.

    Spinning OpenMP threads (libgomp's default) make two threads much faster than one on an idle
    machine and collapse when another process takes one of the CPUs: every parallel region then
    waits for a thread the scheduler has put aside (README, Performance). So, at most every
    `interval_s` seconds, `poll` reads the CPU time the process's CPUs (os.sched_getaffinity)
    spent busy (/proc/stat) and the part of it that was this process's own (time.process_time);
    the rest is other work, `others` CPUs on average, and

        threads = clamp(floor(cpus - others + 1/2), 1, max_threads)

    A competing single-threaded job shows as ~2/3 of a CPU beside two spinning threads on two
    CPUs (the scheduler shares 3 threads over 2 CPUs), so one job is enough to step down; back at
    one thread it gets its whole CPU and we stay there until it ends. Our thread count does not
    change our numbers: SAC's parameters at HalfCheetah's sizes are bitwise equal whether the
    count stays at 2 or changes between updates, eager and compiled
    (tests/training/test_runtime.py). With `adapt` False, without /proc/stat (not Linux) or with
    `max_threads` 1 it keeps `max_threads`, as configure_torch set it.
    """

    def __init__(self, max_threads: int, adapt: bool = True, interval_s: float = 1.0,
                 stat_path: Path = Path("/proc/stat"), clock: Callable[[], float] = time.monotonic,
                 own_cpu_seconds: Callable[[], float] = time.process_time) -> None:
        if max_threads < 1 or interval_s <= 0:
            raise ValueError(f"ThreadGovernor needs max_threads >= 1 and interval_s > 0, "
                             f"got {max_threads} and {interval_s}")
        self.max_threads, self.interval_s, self.stat_path = max_threads, interval_s, stat_path
        self.clock, self.own_cpu_seconds = clock, own_cpu_seconds
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self.threads = max_threads
        # (wall, busy, own) seconds at the last reading
        self.last: tuple[float, float, float] | None = None
        self.enabled = (adapt and max_threads > 1 and len(self.cpus) > 1
                        and self._reading() is not None)

    def _reading(self) -> tuple[float, float, float] | None:
        busy = busy_cpu_seconds(self.stat_path, self.cpus)
        return None if busy is None else (self.clock(), busy, self.own_cpu_seconds())

    def poll(self) -> int:
        """Set torch's threads from the last interval's other work (when one has passed);
        return them."""
        if not self.enabled or (self.last is not None
                                and self.clock() - self.last[0] < self.interval_s):
            return self.threads
        now = self._reading()
        if now is None:  # /proc/stat went away: keep what we have
            return self.threads
        if self.last is not None:
            wall, busy, own = (a - b for a, b in zip(now, self.last, strict=True))
            others = max(busy - own, 0.0) / wall  # CPUs' worth of other work over the interval
            threads = min(self.max_threads, max(1, math.floor(len(self.cpus) - others + 0.5)))
            if threads != self.threads:
                torch.set_num_threads(threads)
                self.threads = threads
        self.last = now
        return self.threads


# the distributions whose versions change a run's numbers (MuJoCo's physics, gymnasium's envs)
VERSIONED = ("torch", "numpy", "gymnasium", "mujoco", "stable-baselines3")


def library_versions() -> dict[str, str]:
    """{distribution: version} of those in VERSIONED that are installed
    (summary.json `versions`)."""
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
