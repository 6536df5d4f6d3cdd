"""The BNN's figure: predictive mean and +-2 predictive standard deviations against the data.

1-D inputs: the band over an input range that extends past the data on both sides and spans
the gap. More inputs: each test example's predictive mean +-2 std against its target.
Everything is drawn in the data's own units.
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

from bnn.data import Dataset
from bnn.model import Regression

# How far past the training inputs (in raw input units) the 1-D figure extends on each side.
MARGIN = 2.0


def save_predictive_figure(model: Regression, dataset: Dataset, path: Path) -> Path:
    """Write the PNG at `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = "mean-field BNN" if model.config.bayesian else "plain network"
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()

    def to_raw(v: torch.Tensor) -> torch.Tensor:
        return v * dataset.y_scale + dataset.y_mean  # standardized y -> data units

    if dataset.train_x.shape[1] == 1:
        raw_train = dataset.train_x[:, 0] * dataset.x_scale + dataset.x_mean  # (N, 1) -> (N,)
        raw_test = dataset.test_x[:, 0] * dataset.x_scale + dataset.x_mean
        grid = torch.linspace(float(raw_train.min()) - MARGIN, float(raw_train.max()) + MARGIN, 400,
                              device=dataset.train_x.device)
        # (400, 1)
        _, mean, std = model.predictive(((grid - dataset.x_mean) / dataset.x_scale).unsqueeze(-1))
        lower, upper = to_raw(mean - 2 * std), to_raw(mean + 2 * std)
        ax.fill_between(grid.cpu(), lower.cpu(), upper.cpu(), color="tab:blue", alpha=0.25,
                        label="+-2 std")
        ax.plot(grid.cpu(), to_raw(mean).cpu(), color="tab:blue", label="predictive mean")
        ax.plot(raw_train.cpu(), to_raw(dataset.train_y).cpu(), "k.", markersize=4, label="train")
        ax.plot(raw_test.cpu(), to_raw(dataset.test_y).cpu(), "r.", markersize=4, label="test")
        ax.set(xlabel="x", ylabel="y", title=f"{dataset.name}: {kind}, predictive mean +-2 std")
    else:
        _, mean, std = model.predictive(dataset.test_x)
        target = to_raw(dataset.test_y).cpu()
        ax.errorbar(target, to_raw(mean).cpu(), yerr=(2 * std * dataset.y_scale).cpu(), fmt="o",
                    markersize=3, alpha=0.6, label="test: mean +-2 std")
        low, high = float(target.min()), float(target.max())
        ax.plot([low, high], [low, high], "k--", linewidth=1, label="y = prediction")
        ax.set(xlabel="target", ylabel="predicted",
               title=f"{dataset.name}: {kind}, test predictions +-2 std")
    ax.legend(fontsize=8)
    figure.savefig(path, dpi=120)
    return path
