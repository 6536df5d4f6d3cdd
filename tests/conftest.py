"""Test-wide settings: one torch thread (the networks here are tiny; more threads only spin),
and each test starts from torch's default float handling."""

import os
from collections.abc import Iterator

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by train.py subprocesses
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _keep_denormals() -> Iterator[None]:
    """train.main flushes denormal floats for its process (training/runtime.py); many runs share
    the test process, and hypothesis refuses to draw floats while denormals are flushed."""
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(1)
