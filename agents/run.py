"""A train.py run directory, read the way every tool that uses a trained policy needs it.

`read_run(run_dir)` returns the run's resolved config (config.yaml, as plain data) and its
newest checkpoint that passes its checksum, loaded with `torch.load(weights_only=True)` exactly
as `train.py --resume` loads it (agents.checkpoint). Anything that makes the directory unusable
is a `RunError` with a one-line message: a missing directory, no config.yaml, a run of a kind
without a policy (a VAE), no readable checkpoint, a checkpoint that would unpickle code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.checkpoint import UnsafeCheckpointError, load_latest


class RunError(ValueError):
    """The directory is not a run with a usable policy; the message is one line for the user."""


@dataclass
class Run:
    """What a run directory holds for the tools: its config and newest good checkpoint."""

    # the run directory
    path: Path
    # config.yaml as plain data (the resolved config train.py wrote)
    config: dict[str, Any]
    # the checkpoint file that was read, and its contents ({"step", "learner", ...})
    checkpoint: Path
    state: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.config["kind"])

    @property
    def env_id(self) -> str:
        return str(self.config["env"]["id"])

    @property
    def step(self) -> int:
        return int(self.state["step"])


def read_run(run_dir: str | Path) -> Run:
    """Config and newest good checkpoint of an RL run (SAC, REINFORCE: its config has `env` and
    `agent` sections); RunError when unusable."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"run directory {path} does not exist")
    config_path = path / "config.yaml"
    if not config_path.is_file():
        raise RunError(f"{path} is not a run directory (no config.yaml)")
    config = yaml.safe_load(config_path.read_text())
    kind = config.get("kind") if isinstance(config, dict) else None
    if not (isinstance(config, dict) and isinstance(config.get("env"), dict)
            and isinstance(config.get("agent"), dict)):
        raise RunError(f"{path} is a {kind} run; a policy comes from an RL run "
                       "(one whose config has env and agent sections, e.g. sac or reinforce)")
    try:
        state, checkpoint = load_latest(path / "checkpoints")
    except FileNotFoundError as e:
        raise RunError(f"{e}: the run has not written a checkpoint yet") from None
    except UnsafeCheckpointError as e:
        raise RunError(str(e)) from None
    return Run(path, config, checkpoint, state)
