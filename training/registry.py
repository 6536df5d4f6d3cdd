"""The one registry of run kinds: `kind` -> its run config, its learner and its reports.

train.py builds a run's learner from it, the config loader (training.config) picks the run
config by `kind` from it, `python -m agents.variance` its policy-gradient report and the sweep
report (training.report) its score keys. Adding an algorithm is a module in agents/ with its
config, agent and learner, one run config and one entry below, and a YAML in configs/.

Each kind's run config adds its own sections to the shared ones (training.schema.RunConfig).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

import bnn.config
from agents.reinforce import ReinforceConfig
from agents.sac import SACConfig
from agents.variance_report import VarianceReport, reinforce_report, sac_report
from envs import EnvConfig
from training.schema import RunConfig
from vae.config import DataConfig, ModelConfig, OptimConfig

if TYPE_CHECKING:
    from training.loop import Learner

# ---------------------------------------------------------------- each kind's run config


@dataclass
class SACRunConfig(RunConfig):
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: SACConfig = field(default_factory=SACConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.agent.learning_starts >= self.total_steps:
            raise ValueError(
                f"agent.learning_starts ({self.agent.learning_starts}) must be < total_steps "
                f"({self.total_steps}), or no update would ever run"
            )


@dataclass
class ReinforceRunConfig(RunConfig):
    env: EnvConfig = field(default_factory=EnvConfig)
    agent: ReinforceConfig = field(default_factory=ReinforceConfig)


@dataclass
class VAERunConfig(RunConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # gradient estimator for the encoder: pathwise (z = mu + sigma*eps) or score_function
    estimator: Literal["pathwise", "score_function"] = "pathwise"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eval.video:
            raise ValueError(
                "eval.video films RL episodes; a vae run has none (set eval.video=false)"
            )


@dataclass
class BNNRunConfig(RunConfig):
    data: bnn.config.DataConfig = field(default_factory=bnn.config.DataConfig)
    model: bnn.config.ModelConfig = field(default_factory=bnn.config.ModelConfig)
    optim: bnn.config.OptimConfig = field(default_factory=bnn.config.OptimConfig)
    # weight-noise estimator: global (one W per minibatch), local (pre-activations), flipout
    estimator: Literal["global", "local", "flipout"] = "local"


# ---------------------------------------------------------------- each kind's learner
# Imported when built: a run loads only the learner it trains.


def sac_learner(config: SACRunConfig, device: torch.device, video_dir: Path | None) -> Learner:
    from agents.sac import SACLearner

    return SACLearner(env=config.env, agent=config.agent, seed=config.seed, device=device,
                      eval_episodes=config.eval.episodes,
                      grad_variance_every=config.diagnostics.grad_variance_every,
                      video_dir=video_dir)


def reinforce_learner(config: ReinforceRunConfig, device: torch.device,
                      video_dir: Path | None) -> Learner:
    from agents.reinforce import ReinforceLearner

    return ReinforceLearner(env=config.env, agent=config.agent, seed=config.seed, device=device,
                            eval_episodes=config.eval.episodes,
                            grad_variance_every=config.diagnostics.grad_variance_every,
                            video_dir=video_dir)


def vae_learner(config: VAERunConfig, device: torch.device, video_dir: Path | None) -> Learner:
    from vae.trainer import VAELearner

    return VAELearner(data=config.data, model=config.model, optim=config.optim,
                      estimator=config.estimator,
                      grad_variance_every=config.diagnostics.grad_variance_every,
                      seed=config.seed, device=device)


def bnn_learner(config: BNNRunConfig, device: torch.device, video_dir: Path | None) -> Learner:
    from bnn.trainer import BNNLearner

    return BNNLearner(data=config.data, model=config.model, optim=config.optim,
                      estimator=config.estimator,
                      grad_variance_every=config.diagnostics.grad_variance_every,
                      seed=config.seed, device=device)


# ---------------------------------------------------------------- the registry

# (run config, learner state, batch, repeats, reference draws, seed, policy families or None
# for the run's own) -> the report
VarianceReportFn = Callable[[Any, dict[str, Any], int, int, int, int, Sequence[str] | None],
                            VarianceReport]

# summary.json's final score and metrics.jsonl's learning-curve key of each family of kinds
RL_SCORE = ("eval_return_mean", "eval/return_mean")


@dataclass(frozen=True)
class Algorithm:
    """Everything that differs by `kind`."""

    # the run config: the shared sections plus the kind's own
    config: type[RunConfig]
    # builds the learner from a validated config (raises ValueError on bad input);
    # video_dir is where RL evaluations are filmed (eval.video), else None
    learner: Callable[[Any, torch.device, Path | None], Learner]
    # (summary.json key of the final score, metrics.jsonl key of the learning curve)
    score: tuple[str, str]
    # the policy-gradient report of `python -m agents.variance` (None: the kind has no policy)
    variance_report: VarianceReportFn | None = None


ALGORITHMS: dict[str, Algorithm] = {
    "sac": Algorithm(SACRunConfig, sac_learner, RL_SCORE,
                     lambda c, *rest: sac_report(c.env, c.agent, *rest)),
    "reinforce": Algorithm(ReinforceRunConfig, reinforce_learner, RL_SCORE,
                           lambda c, *rest: reinforce_report(c.env, c.agent, *rest)),
    "vae": Algorithm(VAERunConfig, vae_learner, ("test_elbo", "val/elbo")),
    "bnn": Algorithm(BNNRunConfig, bnn_learner, ("test_log_likelihood", "val/log_likelihood")),
}
