"""Settings of a VAE run: the `data`, `model` and `optim` sections of a `kind: vae` config.

Plain dataclasses (the run loader in training/config.py builds them from YAML and checks
types); each `__post_init__` checks ranges and raises a one-line ValueError naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DataConfig:
    """Which images to model and how to split and batch them."""

    # dataset: `digits` (scikit-learn's bundled 8x8 digits, 1797 images) or `mnist` (local files)
    name: Literal["digits", "mnist"] = "digits"
    # MNIST location: an .npz file, an IDX images file (.gz allowed) or a directory of them;
    # null for digits
    path: str | None = None
    # examples per optimizer step
    batch_size: int = 128
    # share of all examples held out for validation, in (0, 1)
    val_fraction: float = 0.1
    # share of all examples held out for the test set, in (0, 1); val + test < 1
    test_fraction: float = 0.2
    # seed of the one permutation that defines the split (kept apart from the run's seed)
    split_seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ("digits", "mnist"):
            raise ValueError(f"name must be digits or mnist, got {self.name!r}")
        if self.name == "digits" and self.path is not None:
            raise ValueError(f"path must be null for the bundled digits dataset, got {self.path!r}")
        if self.name == "mnist" and self.path is None:
            raise ValueError("path must name an .npz file, an IDX file or a directory for mnist, "
                             "got null")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                "val_fraction + test_fraction must be < 1, got "
                f"{self.val_fraction + self.test_fraction}"
            )




@dataclass
class ModelConfig:
    """Architecture, latent space and likelihood of the VAE."""

    # latent space: `gaussian` (reparameterized normal) or `categorical` (Gumbel-Softmax)
    latent: Literal["gaussian", "categorical"] = "gaussian"
    # number of latent variables L (Gaussian dimensions, or categorical variables)
    latent_dim: int = 8
    # classes per categorical variable C (used when latent is categorical), >= 2
    categories: int = 10
    # hidden layer widths of the encoder; the decoder mirrors them
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 128])
    # pixel model: `continuous_bernoulli` (a density on [0, 1]) or `bernoulli` (cross-entropy)
    likelihood: Literal["continuous_bernoulli", "bernoulli"] = "continuous_bernoulli"
    # Gumbel-Softmax temperature at step 0 (categorical latent), > 0
    temperature_start: float = 1.0
    # exponential annealing rate per optimizer step, >= 0 (0 keeps the start temperature)
    temperature_decay: float = 3.0e-4
    # lowest temperature the schedule reaches, in (0, temperature_start]
    temperature_floor: float = 0.5
    # straight-through Gumbel-Softmax: one-hot codes forward, relaxed gradient backward
    straight_through: bool = False
    # importance samples K of the IWAE bound (and of the Monte-Carlo ELBO) at evaluation, >= 1
    iwae_samples: int = 64
    # Gaussian posterior: `diagonal` N(mu, diag sigma^2),
    # or `flow` (that Gaussian pushed through a flow)
    posterior: Literal["diagonal", "flow"] = "diagonal"
    # flow posterior: `planar` (Rezende & Mohamed 2015)
    # or `coupling` (affine, Dinh et al. 2017) steps
    flow: Literal["planar", "coupling"] = "planar"
    # flow posterior: number of flow steps, >= 1
    flow_steps: int = 4
    # flow posterior: size of the encoder's context vector that sets each example's flow, >= 1
    flow_context: int = 32

    def __post_init__(self) -> None:
        if self.latent not in ("gaussian", "categorical"):
            raise ValueError(f"latent must be gaussian or categorical, got {self.latent!r}")
        if self.likelihood not in ("continuous_bernoulli", "bernoulli"):
            raise ValueError("likelihood must be continuous_bernoulli or bernoulli, got "
                             f"{self.likelihood!r}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {self.latent_dim}")
        if self.categories < 2:
            raise ValueError(f"categories must be an integer >= 2, got {self.categories}")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError("hidden_sizes must be a non-empty list of positive integers, got "
                             f"{self.hidden_sizes}")
        if self.temperature_start <= 0:
            raise ValueError(f"temperature_start must be > 0, got {self.temperature_start}")
        if self.temperature_decay < 0:
            raise ValueError(f"temperature_decay must be >= 0, got {self.temperature_decay}")
        if not 0 < self.temperature_floor <= self.temperature_start:
            raise ValueError(
                f"temperature_floor must be in (0, temperature_start={self.temperature_start}], "
                f"got {self.temperature_floor}"
            )
        if self.iwae_samples < 1:
            raise ValueError(f"iwae_samples must be a positive integer, got {self.iwae_samples}")
        if self.posterior not in ("diagonal", "flow"):
            raise ValueError(f"posterior must be diagonal or flow, got {self.posterior!r}")
        if self.posterior == "flow" and self.latent != "gaussian":
            raise ValueError(f"posterior: flow needs latent: gaussian, got latent {self.latent!r}")
        if self.flow not in ("planar", "coupling"):
            raise ValueError(f"flow must be planar or coupling, got {self.flow!r}")
        if self.posterior == "flow" and self.flow == "coupling" and self.latent_dim < 2:
            raise ValueError("latent_dim must be >= 2 for coupling flow steps, got "
                             f"{self.latent_dim}")
        if self.flow_steps < 1:
            raise ValueError(f"flow_steps must be a positive integer, got {self.flow_steps}")
        if self.flow_context < 1:
            raise ValueError(f"flow_context must be a positive integer, got {self.flow_context}")



@dataclass
class OptimConfig:
    """Adam and the Monte-Carlo settings of the ELBO gradient."""

    # Adam learning rate, > 0
    lr: float = 1.0e-3
    # latent samples K per example in each gradient estimate, >= 1 (>= 2 for leave_one_out)
    samples: int = 4
    # score-function baseline: leave_one_out (mean of the other K-1 samples),
    # ema (of the batch mean) or none
    baseline: Literal["leave_one_out", "ema", "none"] = "leave_one_out"
    # decay of the ema baseline, in [0, 1)
    baseline_decay: float = 0.99

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.samples < 1:
            raise ValueError(f"samples must be a positive integer, got {self.samples}")
        if self.baseline not in ("leave_one_out", "ema", "none"):
            raise ValueError(f"baseline must be leave_one_out, ema or none, got {self.baseline!r}")
        if self.baseline == "leave_one_out" and self.samples < 2:
            raise ValueError("samples must be >= 2 for the leave_one_out baseline, got "
                             f"{self.samples}")
        if not 0.0 <= self.baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {self.baseline_decay}")
