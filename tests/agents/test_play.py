"""python -m agents.play: episodes printed, MP4s read back (frames, size), and one-line errors."""

import os
from pathlib import Path

import imageio.v2 as imageio
import pytest

from agents import play
from envs.video import RenderError, choose_gl_backend
from training.config import load_config, save_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def read_video(path: Path) -> tuple[int, tuple[int, int], float]:
    """Frames decoded from the file, their (width, height) and the stored frame rate."""
    reader = imageio.get_reader(path)
    meta = reader.get_meta_data()
    frames = sum(1 for _ in reader)
    reader.close()
    return frames, meta["size"], meta["fps"]


def episode_lengths(out: str) -> list[int]:
    return [int(line.rsplit("length ", 1)[1])
            for line in out.splitlines() if line.startswith("episode ")]


def test_pendulum_episodes_are_printed_and_filmed(pendulum_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    video = tmp_path / "pendulum.mp4"
    assert play.main(["--run", str(pendulum_run), "--seed", "3", "--video", str(video)]) == 0
    out = capsys.readouterr().out
    assert episode_lengths(out) == [200]
    # One frame after the reset and one after every step; pygame draws 500 x 500 at 30 fps.
    assert read_video(video) == (200 + 1, (500, 500), 30.0)
    assert "(201 frames at 30 fps, drawn with pygame)" in out


def test_a_mujoco_task_renders_headless(reinforce_run: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """InvertedPendulum-v5 (MuJoCo): the barely trained policy drops the pole within a few dozen
    steps, so the episodes are short."""
    video = tmp_path / "inverted_pendulum.mp4"
    assert play.main(["--run", str(reinforce_run), "--episodes", "2", "--video", str(video)]) == 0
    out = capsys.readouterr().out
    lengths = episode_lengths(out)
    # gymnasium's MuJoCo frames are 480 x 480, at 1 / dt = 25 frames per second here.
    assert read_video(video) == (sum(lengths) + 2, (480, 480), 25.0)
    assert os.environ["MUJOCO_GL"] in ("egl", "osmesa")
    assert f"drawn with {os.environ['MUJOCO_GL']})" in out


def test_the_same_seed_plays_the_same_episodes(pendulum_run: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for _ in range(2):
        assert play.main(["--run", str(pendulum_run), "--seed", "5", "--stochastic"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and "return" in outputs[0]


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert play.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_bad_runs_are_one_line_errors(pendulum_run: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert "does not exist" in one_line_error(["--run", str(tmp_path / "missing")], capsys)
    vae = tmp_path / "vae"
    vae.mkdir()
    save_config(load_config(CONFIGS / "vae_digits.yaml", []), vae / "config.yaml")
    assert "is a vae run" in one_line_error(["--run", str(vae)], capsys)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.yaml").write_text((pendulum_run / "config.yaml").read_text())
    assert "no checkpoint" in one_line_error(["--run", str(fresh)], capsys)


def test_a_gl_platform_that_cannot_render_is_one_line_naming_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """GLFW needs a window, which this headless test process has not got: a real failed probe."""
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(RenderError) as error:
        choose_gl_backend(("glfw",))
    assert "\n" not in str(error.value) and "install Debian's" in str(error.value)
    monkeypatch.setenv("MUJOCO_GL", "glfw")
    with pytest.raises(RenderError,
                       match=r"MUJOCO_GL=glfw cannot render offscreen here .*; unset it"):
        choose_gl_backend()


def test_a_user_set_gl_platform_that_fails_stops_play_with_one_line(
        reinforce_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MUJOCO_GL", "glfw")
    monkeypatch.delenv("DISPLAY", raising=False)
    err = one_line_error(["--run", str(reinforce_run), "--video", str(tmp_path / "x.mp4")], capsys)
    assert "MUJOCO_GL=glfw" in err
    assert not (tmp_path / "x.mp4").exists()
