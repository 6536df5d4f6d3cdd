"""Fixtures of the training tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def two_cpus() -> Iterator[set[int]]:
    """The test process on two of its CPUs with two torch threads (as configure_torch(2) leaves
    it), restored afterwards."""
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("needs a process that may run on two CPUs")
    two = set(sorted(before)[:2])
    os.sched_setaffinity(0, two)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield two
    finally:
        os.sched_setaffinity(0, before)
        torch.set_num_threads(threads)


@contextlib.contextmanager
def busy_processes(cpus: set[int], count: int) -> Iterator[None]:
    """`count` processes spinning on `cpus` while the block runs (killed after it)."""
    busy = f"import os\nos.sched_setaffinity(0, {sorted(cpus)!r})\nwhile True: pass\n"
    load = [subprocess.Popen([sys.executable, "-c", busy]) for _ in range(count)]
    try:
        yield
    finally:
        for process in load:
            process.kill()
        for process in load:
            process.wait()
