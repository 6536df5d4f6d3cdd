"""The process-wide torch settings every run starts with."""

from __future__ import annotations

import torch

from training.runtime import configure_torch


def test_configure_torch_sets_the_threads_and_flushes_denormals_to_zero() -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_flush_denormal(False)
        assert (torch.tensor([1e-20]) * 1e-19).item() > 0.0  # 1e-39: a float32 denormal
        configure_torch(1)
        assert torch.get_num_threads() == 1
        assert (torch.tensor([1e-20]) * 1e-19).item() == 0.0  # flushed
        assert (torch.tensor([1e-20]) * 1e-17).item() > 0.0  # 1e-37, a normal float32, is kept
    finally:
        torch.set_num_threads(threads)
