"""`VAELearner`: trains the VAE under the Learner protocol that train.py drives (kind: vae).

One `advance()` is one Adam step on one minibatch; `step` counts optimizer steps. The
encoder's gradient comes from the configured estimator (pathwise or score function); the
decoder and the analytic KL always get their ordinary gradients (see vae/objectives.py).

Randomness: the data order comes from the learner's own generator (in `state_dict`); the
latent noise of training comes from torch's global RNG, which train.py seeds, saves and
restores. Initialisation, evaluation, gradient diagnostics and figures each run on a private,
seeded copy of the global RNG (`torch.random.fork_rng`), so they are reproducible and never
shift the training noise: a run with diagnostics on follows the same trajectory as one
without them.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from estimators.diagnostics import GradientDiagnostics
from estimators.distributions import ConstantTemperature, ExponentialTemperature
from estimators.gradients import EMABaseline
from estimators.variance import gradient_samples, gradient_stats, seeded_rng
from vae.config import DataConfig, ModelConfig, OptimConfig
from vae.data import EpochSampler, Split, load_dataset
from vae.figures import principal_components, save_image_grid, save_latent_map
from vae.model import VAE
from vae.objectives import ESTIMATORS, Estimator, elbo_objective, evaluation_bounds

# Examples per forward pass at evaluation: bounds memory at K importance samples (MNIST).
EVAL_CHUNK = 512
# Offset between the run seed and the seeds of the evaluation and figure RNG copies.
RNG_SEED_OFFSET = 10_007


class VAELearner:
    """Learner for ``kind: vae`` (the Learner protocol of training.loop);
    ``step`` counts optimizer steps.

    Logged by ``advance(log=True)``: ``loss/elbo`` (the surrogate loss that was minimized; equal
    to the negative ELBO estimate only for the pathwise estimator), ``train/elbo``,
    ``train/recon_nll``, ``train/kl`` (minibatch Monte-Carlo values, nats per example),
    ``stats/temperature`` (categorical latent), ``stats/baseline`` (ema baseline), and, on the
    first logged step at or after every ``grad_variance_every`` steps, the encoder-gradient
    statistics ``grad/encoder_var_trace``, ``grad/encoder_snr`` (of the estimator in use),
    ``grad/encoder_var_trace_pathwise``, ``grad/encoder_var_trace_score_function`` and
    ``grad/encoder_var_ratio`` (score function / pathwise), all on the same minibatch and
    parameters. A flow posterior trains with the pathwise estimator only, so it logs the
    first two; its gradient statistics cover the encoder and the flow's own parameters.
    """

    steps_per_advance = 1

    def __init__(
        self,
        data: DataConfig,
        model: ModelConfig,
        optim: OptimConfig,
        estimator: str,
        grad_variance_every: int,
        seed: int,
        device: torch.device,
        grad_variance_samples: int = 32,
    ) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be pathwise or score_function, got {estimator!r}")
        if grad_variance_samples < 2:
            raise ValueError(f"grad_variance_samples must be >= 2, got {grad_variance_samples}")
        if model.posterior == "flow" and estimator != "pathwise":
            raise ValueError("posterior: flow is trained with estimator: pathwise, got "
                             f"{estimator!r}")
        self.estimator: Estimator = estimator  # narrowed by the check above
        self.optim_config = optim
        self.diagnostics = GradientDiagnostics(grad_variance_every, seed, device)
        self.grad_variance_samples = grad_variance_samples
        self.seed = seed
        self.device = device
        self.dataset = load_dataset(data, device)
        with seeded_rng(seed, device):
            self.model = VAE(self.dataset.train.images.shape[1], model).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=optim.lr)
        self.baseline: EMABaseline | Literal["leave_one_out"] | None = (
            EMABaseline(optim.baseline_decay) if optim.baseline == "ema"
            else "leave_one_out" if optim.baseline == "leave_one_out"
            else None
        )
        self.temperature: ConstantTemperature | ExponentialTemperature = (
            ExponentialTemperature(model.temperature_start, model.temperature_decay,
                                   model.temperature_floor)
            if model.latent == "categorical"
            else ConstantTemperature(1.0)  # unused by the Gaussian latent
        )
        self.sampler = EpochSampler(len(self.dataset.train.images), data.batch_size, seed)
        self.step = 0

    # ------------------------------------------------------------------ training

    def advance(self, log: bool) -> dict[str, float]:
        """One Adam step on the next minibatch; metrics only when ``log``."""
        x = self.dataset.train.images[self.sampler.next_indices().to(self.device)]  # (B, D)
        temperature = self.temperature(self.step)
        grad_metrics = self.diagnostics(self.step, log,
                                        partial(self._gradient_diagnostics, x, temperature))
        objective, info = elbo_objective(
            self.model, x, self.estimator, self.optim_config.samples, temperature, self.baseline
        )
        loss = -objective
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if isinstance(self.baseline, EMABaseline):
            self.baseline.update(info["log_lik"])  # after use: b never sees the f it centres
        self.step += 1
        if not log:
            return {}
        tensors = {
            "loss/elbo": loss.detach(),
            "train/elbo": info["elbo"],
            "train/recon_nll": info["recon_nll"],
            "train/kl": info["kl"],
        }
        if isinstance(self.baseline, EMABaseline):
            tensors["stats/baseline"] = self.baseline.value
        # one host sync for all of them
        values = torch.stack([t.detach() for t in tensors.values()]).tolist()
        metrics = dict(zip(tensors, values, strict=True))
        if self.model.config.latent == "categorical":
            metrics["stats/temperature"] = temperature
        return metrics | grad_metrics

    def _gradient_diagnostics(self, x: Tensor, temperature: float) -> dict[str, float]:
        """Variance of the encoder-gradient estimate of both estimators (the pathwise one alone
        for a flow posterior) on the minibatch x.

        Each of the ``grad_variance_samples`` draws is one full minibatch estimate (fresh
        latent noise, same x and parameters), so the variance is the estimator's own noise.
        Run by the diagnostics scheduler on its private RNG copy.
        """
        encoder = self.model.posterior_parameters()
        estimators = ESTIMATORS if self.model.config.posterior == "diagonal" else ("pathwise",)

        def surrogate(estimator: Estimator) -> Tensor:
            objective, _ = elbo_objective(
                self.model, x, estimator, self.optim_config.samples, temperature, self.baseline
            )
            return objective

        stats = {
            name: gradient_stats(gradient_samples(partial(surrogate, name), encoder,
                                                  self.grad_variance_samples))
            for name in estimators
        }
        var = {name: float(s.var_trace) for name, s in stats.items()}
        metrics = {
            "grad/encoder_var_trace": var[self.estimator],
            "grad/encoder_snr": float(stats[self.estimator].snr),
        }
        if "score_function" not in var:
            return metrics
        return metrics | {
            "grad/encoder_var_trace_pathwise": var["pathwise"],
            "grad/encoder_var_trace_score_function": var["score_function"],
            "grad/encoder_var_ratio": var["score_function"] / var["pathwise"],
        }

    # ------------------------------------------------------------------ evaluation

    def _bounds(self, split: Split) -> dict[str, float]:
        """Mean ELBO, reconstruction NLL, KL and IWAE bound (nats per example) over a split.

        Seeded from the run seed alone, so repeated calls on the same parameters agree.
        """
        parts: dict[str, list[Tensor]] = {}
        with seeded_rng(self.seed + RNG_SEED_OFFSET, self.device):
            for chunk in split.images.split(EVAL_CHUNK):
                bounds = evaluation_bounds(self.model, chunk, self.model.config.iwae_samples)
                for key, value in bounds.items():
                    parts.setdefault(key, []).append(value)
        return {key: torch.cat(values).mean().item() for key, values in parts.items()}  # (N,) -> ()

    def evaluate(self) -> dict[str, float]:
        """``val/elbo``, ``val/recon_nll``, ``val/kl``, ``val/iwae`` and the same for ``test/``."""
        return {
            f"{name}/{key}": value
            for name, split in (("val", self.dataset.val), ("test", self.dataset.test))
            for key, value in self._bounds(split).items()
        }

    def summary(self) -> dict[str, Any]:
        """summary.json fields: dataset and the test bounds (nats per example, higher is better).

        A model with a non-finite weight (a run the loop stopped as failed) has no bounds.
        """
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            return {"dataset": self.dataset.name}
        test = self._bounds(self.dataset.test)
        return {"dataset": self.dataset.name} | {f"test_{key}": value
                                                 for key, value in test.items()}

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Networks, Adam, ema baseline, data order and counters
        (torch.load(weights_only=True)-safe)."""
        return {
            "step": self.step,
            "grad_diagnostics": self.diagnostics.state_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": (self.baseline.state_dict() if isinstance(self.baseline, EMABaseline)
                         else None),
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if isinstance(self.baseline, EMABaseline):
            self.baseline.load_state_dict(state["baseline"])
        self.sampler.load_state_dict(state["sampler"])
        self.step = int(state["step"])
        self.diagnostics.load_state_dict(state["grad_diagnostics"])

    # ------------------------------------------------------------------ figures

    @torch.no_grad()
    def write_figures(self, out_dir: Path) -> list[Path]:
        """vae_reconstructions.png, vae_prior_samples.png and vae_latent_map.png in out_dir."""
        out_dir.mkdir(parents=True, exist_ok=True)
        height, width = self.dataset.image_shape
        latent = self.model.latent
        test = self.dataset.test
        originals = test.images[:16]  # (16, D)
        mean_codes = latent.mean_code(self.model.encoder(test.images))  # (N, Z)
        with seeded_rng(self.seed + RNG_SEED_OFFSET, self.device):
            prior_codes = latent.prior_sample(64, originals)  # (64, Z)
        reconstructions = self.model.likelihood(mean_codes[:16]).mean  # (16, D)
        samples = self.model.likelihood(prior_codes).mean  # (64, D)
        name = self.dataset.name
        # (32, D) -> (32, H, W)
        pairs = torch.cat([originals, reconstructions]).reshape(-1, height, width)
        paths = [
            save_image_grid(pairs.cpu().numpy(), 2, out_dir / "vae_reconstructions.png",
                            f"{name}: test images (top) and reconstructions "
                            "at the posterior mean (bottom)"),
            # (64, D) -> (64, H, W)
            save_image_grid(samples.reshape(-1, height, width).cpu().numpy(), 8,
                            out_dir / "vae_prior_samples.png",
                            f"{name}: decoder means at 64 draws from the prior"),
        ]
        if mean_codes.shape[1] == 2:
            points, axis_names = mean_codes, ("z1", "z2")
        else:
            points, explained = principal_components(mean_codes)
            axis_names = (f"PC1 ({explained[0]:.0%} of variance)", f"PC2 ({explained[1]:.0%})")
        labels = None if test.labels is None else test.labels.numpy()
        paths.append(save_latent_map(np.asarray(points.cpu()), labels, axis_names,
                                     out_dir / "vae_latent_map.png",
                                     f"{name}: posterior means of the {len(points)} test images"))
        return paths

    def close(self) -> None:
        """Nothing to release: the data lives in memory."""
