"""Regression data for the BNN: a 1-D toy set with a gap, and scikit-learn's bundled diabetes.

Inputs and targets are standardized with the training split's mean and standard deviation;
`y_scale` keeps the target's, so errors and log-likelihoods can be reported in the data's
own units (RMSE * y_scale; log-likelihood - log y_scale, the change of variables of y).
Nothing is downloaded: `load_diabetes` ships inside scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from bnn.config import DataConfig

# gap1d: inputs drawn uniformly from two intervals; no training input falls in (-1, 1).
GAP_INTERVALS = ((-4.0, -1.0), (1.0, 4.0))


@dataclass(frozen=True)
class Dataset:
    """A standardized regression data set.

    | field          | shape  | meaning                                              |
    |----------------|--------|------------------------------------------------------|
    | train_x/test_x | (N, F) | standardized inputs                                  |
    | train_y/test_y | (N,)   | standardized targets                                 |
    | x_mean, x_scale| (F,)   | what was subtracted / divided from the raw inputs    |
    | y_mean, y_scale| floats | the same for the targets                             |
    """

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    x_mean: Tensor
    x_scale: Tensor
    y_mean: float
    y_scale: float


def gap1d_function(x: np.ndarray) -> np.ndarray:
    """The noise-free target of gap1d: y = sin(x) + 0.3 x  (any smooth function would do)."""
    return np.sin(x) + 0.3 * x


def raw_data(config: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Unstandardized (N, F) inputs and (N,) targets of the configured set."""
    if config.name == "diabetes":
        # Imported here: scikit-learn is needed only for this data set.
        from sklearn.datasets import load_diabetes

        bunch = load_diabetes()
        return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.float64)
    rng = np.random.default_rng(config.split_seed)
    interval = rng.integers(len(GAP_INTERVALS), size=config.num_points)
    low = np.array([GAP_INTERVALS[i][0] for i in interval])
    high = np.array([GAP_INTERVALS[i][1] for i in interval])
    x = rng.uniform(low, high)  # (N,)
    y = gap1d_function(x) + config.noise_std * rng.standard_normal(config.num_points)
    return x[:, None], y  # (N,) -> (N, 1)


def load_dataset(config: DataConfig, device: torch.device) -> Dataset:
    """Load, split by a seeded permutation, and standardize with the training statistics."""
    x, y = raw_data(config)
    num_test = round(len(x) * config.test_fraction)
    if not 1 <= num_test < len(x) - 1:
        raise ValueError(f"test_fraction {config.test_fraction} of {len(x)} examples "
                         "leaves an empty split")
    order = np.random.default_rng(config.split_seed).permutation(len(x))
    train, test = order[num_test:], order[:num_test]
    x_mean, x_scale = x[train].mean(0), x[train].std(0)  # (N, F) -> (F,)
    y_mean, y_scale = float(y[train].mean()), float(y[train].std())

    def tensor(values: np.ndarray) -> Tensor:
        return torch.as_tensor(values, dtype=torch.float32, device=device)

    return Dataset(
        name=config.name,
        train_x=tensor((x[train] - x_mean) / x_scale),
        train_y=tensor((y[train] - y_mean) / y_scale),
        test_x=tensor((x[test] - x_mean) / x_scale), test_y=tensor((y[test] - y_mean) / y_scale),
        x_mean=tensor(x_mean), x_scale=tensor(x_scale), y_mean=y_mean, y_scale=y_scale,
    )


def log_scale_correction(dataset: Dataset) -> float:
    """What to add to a standardized log-density of y to get it in the data's units:
    -log y_scale."""
    return -math.log(dataset.y_scale)
