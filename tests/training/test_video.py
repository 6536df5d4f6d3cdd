"""eval.video: true in a real run: RUN/videos/step_<N>.mp4 per evaluation, the same files in the
offline W&B run as `wandb.Video`s on the global_step axis (read back from the run's own files),
identical metrics to a run without video, and no W&B Weave banner on the console."""

import hashlib
from pathlib import Path

import imageio.v2 as imageio
import pytest
import wandb

import train
from tests.training.test_guards import history, wandb_records
from training.config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# SAC on Pendulum-v1 (the default config) for 400 steps: evaluations at 200 and 400.
RUN = ["total_steps=400", "agent.hidden_sizes=[16, 16]",
       "agent.batch_size=32", "agent.learning_starts=100", "agent.compile=false", "eval.episodes=2",
       "eval.every=200", "log.every=100", "checkpoint.every=0"]


def history_rows(wandb_file: Path) -> list[dict[str, object]]:
    """The history rows of one offline run's `.wandb` file."""
    return history(list(wandb_records(wandb_file.parent, wandb_file.name)))


def test_each_evaluation_films_its_first_episode_into_the_run_and_the_offline_wandb_run(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    filmed, plain = tmp_path / "filmed", tmp_path / "plain"
    assert train.main(["--out", str(filmed), *RUN, "eval.video=true", "wandb.mode=offline"]) == 0
    console = capfd.readouterr().err
    wandb.termwarn("a W&B warning")  # W&B's own warnings still reach the console
    assert "a W&B warning" in capfd.readouterr().err
    assert "Weave" not in console and "wandb sync" in console

    videos = sorted((filmed / "videos").iterdir())
    assert [v.name for v in videos] == ["step_200.mp4", "step_400.mp4"]
    for video in videos:
        reader = imageio.get_reader(video)
        assert (sum(1 for _ in reader), reader.get_meta_data()["size"]) == (200 + 1, (500, 500))
        reader.close()

    (offline,) = (filmed / "wandb").glob("offline-run-*")
    logged = [row for row in history_rows(next(offline.glob("run-*.wandb")))
              if "eval/video/path" in row]
    assert [row["global_step"] for row in logged] == [200, 400]
    for row, video in zip(logged, videos, strict=True):
        assert row["eval/video/_type"] == "video-file"
        media = offline / "files" / str(row["eval/video/path"])
        assert media.read_bytes() == video.read_bytes()
        assert row["eval/video/sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()

    # Rendering draws no random numbers: the run learns and evaluates exactly as without video.
    assert train.main(["--out", str(plain), *RUN, "wandb.mode=disabled"]) == 0
    assert (filmed / "metrics.jsonl").read_text() == (plain / "metrics.jsonl").read_text()
    assert not (plain / "videos").exists()


def test_video_in_a_vae_run_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"eval\.video films RL episodes"):
        load_config(CONFIGS / "vae_digits.yaml", ["eval.video=true"])
