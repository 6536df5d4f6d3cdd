"""The smooth bound on a log standard deviation that every network head here uses."""

from __future__ import annotations

import torch
from torch import Tensor


def bounded_log_scale(raw: Tensor, low: float, high: float) -> Tensor:
    """Map a raw head output (any real) smoothly into [low, high]:
    low + (high - low)(tanh(raw) + 1)/2.

    A tanh rescale rather than a hard clamp: a clamp has zero gradient outside the bounds, so
    a log-scale pushed past them can never come back (DLR-RM/stable-baselines3 issue 620);
    tanh keeps a gradient everywhere. Shapes: element-wise, raw (...) -> (...).
    """
    unit = torch.tanh(raw)  # in (-1, 1)
    return low + 0.5 * (high - low) * (unit + 1.0)


def bounded_log_scale_grad(raw: Tensor, low: float, high: float) -> Tensor:
    """d bounded_log_scale / d raw = (high - low) / 2 * (1 - tanh(raw)^2), element-wise."""
    unit = torch.tanh(raw)
    return 0.5 * (high - low) * (1.0 - unit * unit)
