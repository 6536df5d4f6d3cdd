"""Training episodes: collected from a vector env's episode statistics, reported as means."""

from __future__ import annotations

from typing import Any

import numpy as np


class EpisodeLog:
    """Returns and lengths of the training episodes finished since the last report.

    Fed with the `infos` of a vector env wrapped in RecordEpisodeStatistics (envs.make);
    `pop_metrics` reports `train/episode_return` and `train/episode_length` (means) and starts
    over. It is part of a learner's state, so a resumed run reports the same numbers.
    """

    def __init__(self) -> None:
        self.returns: list[float] = []
        self.lengths: list[int] = []

    def record(self, infos: dict[str, Any]) -> None:
        """Add the episodes that finished in this vector step (`infos["_episode"]` marks them)."""
        if "_episode" in infos:
            finished = infos["_episode"]
            self.returns += infos["episode"]["r"][finished].tolist()
            self.lengths += infos["episode"]["l"][finished].tolist()

    def pop_metrics(self) -> dict[str, float]:
        """Means over the episodes since the last call ({} when none finished), then forget them."""
        if not self.returns:
            return {}
        metrics = {"train/episode_return": float(np.mean(self.returns)),
                   "train/episode_length": float(np.mean(self.lengths))}
        self.returns, self.lengths = [], []
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"returns": list(self.returns), "lengths": list(self.lengths)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns, self.lengths = list(state["returns"]), list(state["lengths"])
