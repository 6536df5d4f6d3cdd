"""`BNNLearner`: trains a Bayesian (or plain) regression network under the Learner protocol
that train.py drives (kind: bnn).

One `advance()` is one Adam step on one minibatch; `step` counts optimizer steps. The weight
noise of training comes from torch's global RNG (train.py seeds, saves and restores it); the
minibatches from the learner's own generator (in `state_dict`). Initialisation, evaluation,
gradient diagnostics and figures each run on a private seeded copy of the global RNG, so a run
with diagnostics follows the same trajectory as one without them, and resumes exactly.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bnn.config import DataConfig, ModelConfig, OptimConfig
from bnn.data import load_dataset, log_scale_correction
from bnn.figures import save_predictive_figure
from bnn.layers import ESTIMATORS, Estimator
from bnn.model import Regression
from estimators.diagnostics import GradientDiagnostics
from estimators.variance import gradient_samples, gradient_stats, seeded_rng

# Offset between the run seed and the seeds of the evaluation and figure RNG copies.
RNG_SEED_OFFSET = 10_007


def weight_gradient_variance(model: Regression, x: Tensor, y: Tensor, num_train: int,
                             estimators: tuple[Estimator, ...],
                             num_samples: int) -> dict[str, float]:
    """Trace of the covariance of each estimator's minibatch ELBO gradient
    in the weights' (mu, rho).

    Each of the ``num_samples`` estimates is one full minibatch gradient with fresh weight
    noise, on the same parameters and the same minibatch x (B, F), y (B,). Run it inside
    `seeded_rng` to make it reproducible.
    """
    params = model.variational_parameters()

    def surrogate(estimator: Estimator) -> Tensor:
        return model.objective(x, y, estimator, num_train)[0]

    return {name: gradient_stats(gradient_samples(partial(surrogate, name), params,
                                                  num_samples)).var_trace
            for name in estimators}


class BNNLearner:
    """Learner for ``kind: bnn``; ``step`` counts optimizer steps.

    Logged by ``advance(log=True)``: ``loss/elbo`` (the negative minibatch ELBO per example;
    the negative log-likelihood for a plain network), ``train/log_lik``, ``train/kl`` (KL / N)
    and ``stats/noise_std`` (standardized units). On the first logged step at or after every
    ``grad_variance_every`` steps (Bayesian network only): ``grad/weight_var_trace`` of the
    estimator in use and ``grad/weight_var_trace_<name>`` of all three, with the ratios
    ``grad/var_ratio_global_local`` and ``grad/var_ratio_global_flipout``, on the same
    minibatch and parameters. ``evaluate()`` gives ``test/rmse`` and ``test/log_likelihood``
    in the data's own units.
    """

    steps_per_advance = 1

    def __init__(self, data: DataConfig, model: ModelConfig, optim: OptimConfig, estimator: str,
                 grad_variance_every: int, seed: int, device: torch.device,
                 grad_variance_samples: int = 32) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        if grad_variance_samples < 2:
            raise ValueError(f"grad_variance_samples must be >= 2, got {grad_variance_samples}")
        self.estimator: Estimator = estimator  # narrowed by the check above
        self.diagnostics = GradientDiagnostics(grad_variance_every if model.bayesian else 0, seed,
                                               device)
        self.grad_variance_samples = grad_variance_samples
        self.seed = seed
        self.device = device
        self.dataset = load_dataset(data, device)
        self.num_train = len(self.dataset.train_y)
        if optim.batch_size > self.num_train:
            raise ValueError(f"batch_size must be <= the {self.num_train} training examples, got "
                             f"{optim.batch_size}")
        self.batch_size = optim.batch_size
        with seeded_rng(seed, device):
            self.model = Regression(self.dataset.train_x.shape[1], model).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=optim.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0

    # ------------------------------------------------------------------ training

    def advance(self, log: bool) -> dict[str, float]:
        """One Adam step on a minibatch drawn uniformly with replacement;
        metrics only when ``log``."""
        index = torch.randint(self.num_train, (self.batch_size,),
                              generator=self.generator).to(self.device)
        x, y = self.dataset.train_x[index], self.dataset.train_y[index]  # (B, F), (B,)
        grad_metrics = self.diagnostics(self.step, log, partial(self._gradient_diagnostics, x, y))
        objective, info = self.model.objective(x, y, self.estimator, self.num_train)
        loss = -objective
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        if not log:
            return {}
        tensors = [loss.detach(), info["log_lik"], info["kl"],
                   self.model.log_noise_std.detach().exp()]
        values = torch.stack(tensors).tolist()  # one host sync for all of them
        names = ("loss/elbo", "train/log_lik", "train/kl", "stats/noise_std")
        return dict(zip(names, values, strict=True)) | grad_metrics

    def _gradient_diagnostics(self, x: Tensor, y: Tensor) -> dict[str, float]:
        var = weight_gradient_variance(self.model, x, y, self.num_train, ESTIMATORS,
                                       self.grad_variance_samples)
        return {"grad/weight_var_trace": var[self.estimator]} | {
            f"grad/weight_var_trace_{name}": value for name, value in var.items()} | {
            "grad/var_ratio_global_local": var["global"] / var["local"],
            "grad/var_ratio_global_flipout": var["global"] / var["flipout"],
        }

    # ------------------------------------------------------------------ evaluation

    def _test_metrics(self) -> dict[str, float]:
        """RMSE and mean log-likelihood per example on the test split, in the data's units."""
        with seeded_rng(self.seed + RNG_SEED_OFFSET, self.device):
            metrics = self.model.test_metrics(self.dataset.test_x, self.dataset.test_y)
        return {"rmse": metrics["rmse"] * self.dataset.y_scale,
                "log_likelihood": metrics["log_likelihood"] + log_scale_correction(self.dataset)}

    def evaluate(self) -> dict[str, float]:
        """``test/rmse`` and ``test/log_likelihood`` (nats per example)."""
        return {f"test/{key}": value for key, value in self._test_metrics().items()}

    def final_grad_var_trace(self) -> float:
        """The trace of the weight-gradient variance of this run's estimator on a fixed minibatch
        (the first ``batch_size`` training examples); exactly 0 for a plain network."""
        if not self.model.config.bayesian:
            return 0.0
        x, y = self.dataset.train_x[: self.batch_size], self.dataset.train_y[: self.batch_size]
        with seeded_rng(self.seed + 2 * RNG_SEED_OFFSET, self.device):
            var = weight_gradient_variance(self.model, x, y, self.num_train, (self.estimator,),
                                           self.grad_variance_samples)
        return var[self.estimator]

    def summary(self) -> dict[str, Any]:
        """summary.json fields: dataset, test RMSE and log-likelihood, final gradient variance."""
        test = self._test_metrics()
        return {"dataset": self.dataset.name, "test_rmse": test["rmse"],
                "test_log_likelihood": test["log_likelihood"],
                "grad_var_trace": self.final_grad_var_trace()}

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Network, noise, Adam, minibatch generator and counters (weights_only-safe)."""
        return {"step": self.step, "grad_diagnostics": self.diagnostics.state_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step = int(state["step"])
        self.diagnostics.load_state_dict(state["grad_diagnostics"])

    # ------------------------------------------------------------------ figures

    def write_figures(self, out_dir: Path) -> list[Path]:
        """bnn_predictive.png: predictive mean and +-2 std against the data (see bnn/figures.py)."""
        with seeded_rng(self.seed + RNG_SEED_OFFSET, self.device):
            return [
                save_predictive_figure(self.model, self.dataset, out_dir / "bnn_predictive.png")
            ]

    def close(self) -> None:
        """Nothing to release: the data lives in memory."""
