"""Settings of a Bayesian neural network run: the `data`, `model` and `optim` sections of a
`kind: bnn` config.

Plain dataclasses (the run loader in training/config.py builds them from YAML and checks
types); each `__post_init__` checks ranges and raises a one-line ValueError naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DataConfig:
    """Which regression data set, and how it is split."""

    # `gap1d` (1-D toy regression with a gap in the inputs) or
    # `diabetes` (scikit-learn's bundled set)
    name: Literal["gap1d", "diabetes"] = "gap1d"
    # share of the examples held out for the test set, in (0, 1)
    test_fraction: float = 0.2
    # seed of the split (and of the gap1d draws), kept apart from the run's seed
    split_seed: int = 0
    # gap1d: number of examples drawn, >= 10
    num_points: int = 200
    # gap1d: standard deviation of the observation noise, > 0
    noise_std: float = 0.1

    def __post_init__(self) -> None:
        if self.name not in ("gap1d", "diabetes"):
            raise ValueError(f"name must be gap1d or diabetes, got {self.name!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.num_points < 10:
            raise ValueError(f"num_points must be >= 10, got {self.num_points}")
        if not self.noise_std > 0:
            raise ValueError(f"noise_std must be > 0, got {self.noise_std}")


@dataclass
class ModelConfig:
    """Network, prior and predictive settings."""

    # hidden layer widths of the ReLU network
    hidden_sizes: list[int] = field(default_factory=lambda: [50, 50])
    # true: mean-field Gaussian weights trained by the ELBO;
    # false: a plain network (maximum likelihood)
    bayesian: bool = True
    # standard deviation of the N(0, prior_std^2) prior on every weight and bias, > 0
    prior_std: float = 1.0
    # initial posterior standard deviation of every weight and bias, > 0
    init_std: float = 0.01
    # initial standard deviation of the Gaussian observation noise
    # (learned; standardized units), > 0
    init_noise_std: float = 0.5
    # weight samples averaged in the predictive distribution at evaluation, >= 1
    predictive_samples: int = 100

    def __post_init__(self) -> None:
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError("hidden_sizes must be a non-empty list of positive integers, got "
                             f"{self.hidden_sizes}")
        for name in ("prior_std", "init_std", "init_noise_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.predictive_samples < 1:
            raise ValueError(f"predictive_samples must be >= 1, got {self.predictive_samples}")


@dataclass
class OptimConfig:
    """Adam on minibatches."""

    # Adam learning rate, > 0
    lr: float = 1.0e-3
    # examples per optimizer step, >= 1 (at most the training set)
    batch_size: int = 32

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size}")
