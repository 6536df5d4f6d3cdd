"""Real run directories made by train.py (tiny networks, a few hundred steps), shared by the tests
of the tools that read a trained run: load_policy, play, export."""

from pathlib import Path

import pytest

import train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = ["agent.hidden_sizes=[16, 16]", "eval.episodes=1", "log.every=100", "wandb.mode=disabled"]
TINY_SAC = ["agent.batch_size=32", "agent.buffer_size=1000", "agent.learning_starts=100",
            "agent.compile=false"]


def _train(out: Path, config: str, *overrides: str) -> Path:
    assert train.main(["--config", str(CONFIGS / config), "--out", str(out), *TINY,
                       *overrides]) == 0
    return out


@pytest.fixture(scope="session")
def pendulum_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SAC on Pendulum-v1 (actions in [-2, 2]), 300 steps."""
    return _train(tmp_path_factory.mktemp("runs") / "pendulum", "sac_pendulum.yaml",
                  "total_steps=300", *TINY_SAC)


@pytest.fixture(scope="session")
def reinforce_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """REINFORCE on InvertedPendulum-v5 (actions in [-3, 3]), one update of 2 x 32 steps."""
    return _train(tmp_path_factory.mktemp("runs") / "reinforce", "reinforce_inverted_pendulum.yaml",
                  "total_steps=64", "env.num_envs=2", "agent.rollout_steps=32")
