"""When a learner measures its gradient estimators during training, on a private RNG copy.

One scheduler for every learner (SAC, REINFORCE, the VAE, the BNN): a measurement runs on the
first logged update at or after every `every` updates, inside `seeded_rng`, so a run with
diagnostics on trains exactly like one without.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from estimators.variance import seeded_rng

# Offset between a run seed and the seeds of the diagnostics' private RNG copies.
DIAGNOSTIC_SEED_OFFSET = 20_011


def check_every(every: int) -> None:
    """The range of `diagnostics.grad_variance_every`, declared once: >= 0, 0 = off."""
    if every < 0:
        raise ValueError(f"grad_variance_every must be >= 0 (0 = off), got {every}")


class GradientDiagnostics:
    """On the first logged update at or after every `every` updates (0: never), run a
    measurement on a private RNG copy seeded from (seed, update).

        diagnostics = GradientDiagnostics(every, seed, device)
        grad_metrics = diagnostics(num_updates, log, lambda: sac_gradient_metrics(...))

    `num_updates` counts the updates done before this one. The returned dict is {} when no
    measurement is due. `state_dict` holds the next due update, for exact resume.
    """

    def __init__(self, every: int, seed: int, device: torch.device) -> None:
        check_every(every)
        self.every, self.seed, self.device = every, seed, device
        self.next_update = every

    def due(self, num_updates: int, log: bool) -> bool:
        """Whether the update after `num_updates` done ones measures (when it is logged)."""
        return log and self.every > 0 and num_updates + 1 >= self.next_update

    def __call__(self, num_updates: int, log: bool,
                 measure: Callable[[], dict[str, float]]) -> dict[str, float]:
        if not self.due(num_updates, log):
            return {}
        update = num_updates + 1  # the update about to run, counted from 1
        with seeded_rng(self.seed * DIAGNOSTIC_SEED_OFFSET + update, self.device):
            metrics = measure()
        self.next_update = (update // self.every + 1) * self.every
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"next_update": self.next_update}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.next_update = int(state["next_update"])
