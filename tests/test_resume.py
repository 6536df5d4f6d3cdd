"""`train.py --resume` on every branch: overrides a saved run cannot take, a finished run, no
config.yaml, no or only corrupt checkpoints, a checkpoint that would run code, a config.yaml
that no longer fits its checkpoint; and stopping with Ctrl-C once (checkpoint) or twice (none).
Every refusal exits 2 with one line on stderr and leaves the run directory byte for byte as it was.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import train
from agents.checkpoint import list_checkpoints, load_latest
from tests.test_train import TINY_SAC, run_cli
from training.config import ConfigError, load_config, resume_config, to_dict

REPO = Path(__file__).resolve().parents[1]


def snapshot(run_dir: Path) -> dict[str, str]:
    """Every file under run_dir with the sha256 of its bytes."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed 400-step SAC run with checkpoints at steps 200 and 400."""
    out = tmp_path_factory.mktemp("finished") / "run"
    result = run_cli("--out", str(out), "total_steps=400", *TINY_SAC)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def run_dir(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def resume_refused(run_dir: Path, capsys: pytest.CaptureFixture[str], *overrides: str) -> str:
    """Resume in-process; assert exit 2, one stderr line, the run untouched; return the line."""
    before = snapshot(run_dir)
    assert train.main(["--resume", str(run_dir), *overrides]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert snapshot(run_dir) == before
    return lines[0]


def test_the_audited_command_exits_2_with_one_line_and_leaves_the_run_untouched(
    run_dir: Path
) -> None:
    before = snapshot(run_dir)
    result = run_cli("--resume", str(run_dir), "agent.hidden_sizes=[8]")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "error: --resume cannot change agent.hidden_sizes from [32, 32] to [8]")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("agent.hidden_sizes=[64, 64]", "agent.hidden_sizes"),  # another network shape
        ("env.id=MountainCarContinuous-v0", "env.id"),  # another env
        ("agent.num_critics=3", "agent.num_critics"),  # another number of critics
        ("env.num_envs=2", "env.num_envs"),
        ("seed=1", "seed"),
        ("agent.lr=0.01", "agent.lr"),  # fits the tensors, but is not the run that was saved
        ("kind=reinforce", "kind"),
    ],
)
def test_an_override_the_saved_run_cannot_take_is_refused(
    run_dir: Path, capsys: pytest.CaptureFixture[str], override: str, key: str,
) -> None:
    line = resume_refused(run_dir, capsys, override, "total_steps=600")
    assert line.startswith(f"error: --resume cannot change {key} from "), line
    assert "a resumed run may change only total_steps, device, threads, adapt_threads, eval" in line


def test_resume_config_accepts_the_sections_a_resumed_run_may_change(finished_run: Path) -> None:
    import yaml

    saved = yaml.safe_load((finished_run / "config.yaml").read_text())
    resumed = resume_config(saved, ["total_steps=900", "eval.episodes=3", "log.every=50",
                                    "checkpoint.keep=3", "wandb.mode=offline", "device=cpu",
                                    # the last two: unchanged
                                    "seed=0", "agent.hidden_sizes=[32, 32]"])
    expected = to_dict(load_config(None, [], base=saved))
    expected |= {"total_steps": 900, "device": "cpu"}
    expected["eval"]["episodes"], expected["log"]["every"] = 3, 50
    expected["checkpoint"]["keep"], expected["wandb"]["mode"] = 3, "offline"
    assert to_dict(resumed) == expected
    assert saved["agent"]["hidden_sizes"] == [32, 32] and saved["total_steps"] == 400  # not mutated
    with pytest.raises(ConfigError, match=r"cannot change agent\.gamma from 0\.99 to 0\.9:"):
        resume_config(saved, ["agent.gamma=0.9"])


def test_a_finished_run_is_reported_and_left_untouched(
    run_dir: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    before = snapshot(run_dir)
    assert train.main(["--resume", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert err == (f"{run_dir} already reached total_steps=400; "
                   "raise it with total_steps=N to train further\n")
    assert snapshot(run_dir) == before


def test_a_directory_without_config_yaml_is_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a run")
    line = resume_refused(tmp_path, capsys)
    assert line == f"error: {tmp_path} is not a run directory (no config.yaml)"
    missing = tmp_path / "nowhere"
    assert train.main(["--resume", str(missing)]) == 2
    assert not missing.exists()


def test_a_run_without_any_checkpoint_is_refused(run_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(run_dir / "checkpoints")
    line = resume_refused(run_dir, capsys, "total_steps=600")
    assert line == f"error: no checkpoint in {run_dir / 'checkpoints'}"


def test_a_run_whose_every_checkpoint_is_corrupt_is_refused(run_dir: Path) -> None:
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert len(checkpoints) == 2
    checkpoints[0].write_bytes(checkpoints[0].read_bytes()[:1000])  # truncated: checksum fails
    checkpoints[1].write_bytes(b"\0" * 4096)
    # no checksum: torch refuses it
    checkpoints[1].with_name(checkpoints[1].name + ".sha256").unlink()
    before = snapshot(run_dir)
    result = run_cli("--resume", str(run_dir), "total_steps=600")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: no readable checkpoint in {run_dir / 'checkpoints'} (2 corrupted)"]
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    for path in checkpoints:  # each skip is said, with its reason
        assert f"skipping checkpoint: {path.name}" in result.stderr
    assert snapshot(run_dir) == before


class _RunsAShellCommand:
    """Unpickling this runs `touch MARKER`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_would_run_code_is_refused_not_executed_and_not_skipped(
    run_dir: Path
) -> None:
    newest = list_checkpoints(run_dir / "checkpoints")[0]
    marker = run_dir.parent / "code-ran"
    state, _ = load_latest(run_dir / "checkpoints")
    state["learner"]["payload"] = _RunsAShellCommand(marker)
    torch.save(state, newest)
    digest = hashlib.sha256(newest.read_bytes()).hexdigest()
    newest.with_name(newest.name + ".sha256").write_text(digest)  # the checksum matches: no skip
    before = snapshot(run_dir)
    result = run_cli("--resume", str(run_dir), "total_steps=600")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"error: refusing to load {newest}: it contains pickled objects")
    assert not marker.exists(), "the checkpoint's code ran"
    assert snapshot(run_dir) == before  # and the older good checkpoint was not silently used


def test_a_config_yaml_edited_to_another_shape_is_refused(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("- 32\n  - 32\n", "- 16\n  - 16\n", 1))
    assert "- 16" in config.read_text()
    line = resume_refused(run_dir, capsys, "total_steps=600")
    assert line.startswith(f"error: {list_checkpoints(run_dir / 'checkpoints')[0]} does not fit "
                           f"{config} (was it edited?): "), line
    assert "size mismatch" in line or "Error(s) in loading" in line


# ---------------------------------------------------------------- Ctrl-C


def test_sigint_checkpoints_the_current_step_exits_130_and_the_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "--out", str(out),
                             "total_steps=100000", *TINY_SAC],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists()
                                          and '"global_step": 300' in metrics.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "SIGINT: finishing the current update, then checkpointing" in err
    summary = json.loads((out / "summary.json").read_text())
    step = summary["total_steps"]
    assert summary["status"] == "interrupted" and 300 <= step < 100000
    assert list_checkpoints(out / "checkpoints")[0].name == f"step_{step:012d}.pt"
    assert f"interrupted at step {step}; checkpoint checkpoints/step_{step:012d}.pt written" in err
    resumed = run_cli("--resume", str(out), f"total_steps={step + 100}")
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step_{step:012d}.pt (step {step})" in resumed.stderr
    assert json.loads((out / "summary.json").read_text())["total_steps"] == step + 100


def test_a_second_ctrl_c_aborts_without_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from agents.sac import SACLearner

    real_advance = SACLearner.advance

    def advance_then_ctrl_c_twice(self: SACLearner, log: bool) -> dict[str, float]:
        metrics = real_advance(self, log)
        if self.step == 350:  # between the checkpoints at 200 and 400
            # the loop would stop and checkpoint after this update
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # ...but a second one aborts at once
        return metrics

    monkeypatch.setattr(SACLearner, "advance", advance_then_ctrl_c_twice)
    handler = signal.getsignal(signal.SIGINT)
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=1000", *TINY_SAC]) == 130
    assert signal.getsignal(signal.SIGINT) is handler  # the run's handlers are gone again
    err = capsys.readouterr().err
    assert "aborted without a checkpoint" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["total_steps"] == 350
    assert summary["message"] == "aborted by a second Ctrl-C; no checkpoint written"
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step_000000000200.pt"]

    monkeypatch.setattr(SACLearner, "advance", real_advance)
    assert train.main(["--resume", str(out), "total_steps=400"]) == 0
    assert "from step_000000000200.pt (step 200)" in capsys.readouterr().err
    steps = [json.loads(line)["global_step"]
             for line in (out / "metrics.jsonl").read_text().splitlines()]
    # train/ and eval/ rows at 300, once each
    assert steps == sorted(steps) and steps.count(300) == 2
