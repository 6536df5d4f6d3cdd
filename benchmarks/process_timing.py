"""Steps per second of a program run as its users run it: each run its own process, timed from
outside, and the rate taken from the difference of a short and a long run, so that everything
both runs share (interpreter start, imports, compiling, the random steps) cancels.

    rate = (long_steps - short_steps) / (wall_time(long) - wall_time(short))
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence


def wall_time(command: Sequence[str], env: Mapping[str, str], timeout: float) -> float | None:
    """Seconds `command` took to exit 0, or None if it ran past `timeout` (it is killed)."""
    start = time.perf_counter()
    try:
        result = subprocess.run(list(command), env=dict(env), capture_output=True, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{' '.join(command[:3])} ... exited {result.returncode}: {last}")
    return seconds


def difference_rate(short_steps: int, long_steps: int, short_s: float, long_s: float) -> float:
    """Steps per second of the steps the long run has beyond the short one."""
    if long_s <= short_s:
        raise RuntimeError(f"the {long_steps}-step run ({long_s:.1f} s) was not slower than the "
                           f"{short_steps}-step run ({short_s:.1f} s); use more steps")
    return (long_steps - short_steps) / (long_s - short_s)


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the thread and OpenMP settings, plus `extra`: each
    program then chooses its own threads and wait policy, as it does for its users."""
    dropped = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    return env | dict(extra)
