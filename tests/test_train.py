"""train.py end to end: the run-directory contract, bad input, and runs that survive
(SIGTERM + exact resume, a truncated checkpoint, a NaN, the same seed twice)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import train
from agents.checkpoint import list_checkpoints, load_latest, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
# A small SAC run on Pendulum-v1: a few seconds on 2 cores.
TINY_SAC = ["agent.hidden_sizes=[32, 32]", "agent.batch_size=32", "agent.learning_starts=100",
            "agent.compile=false", "eval.episodes=1", "eval.every=300", "log.every=100",
            "checkpoint.every=200", "wandb.mode=disabled"]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def learner_state(run_dir: Path) -> dict:
    state, _ = load_latest(run_dir / "checkpoints")
    return state["learner"]


# Wall-clock readings (RecordEpisodeStatistics' episode start times) are not training state.
WALL_CLOCK = ("episode_start_times", "episode_start_time")


def assert_identical(a: object, b: object, where: str = "learner") -> None:
    if where.endswith(WALL_CLOCK):
        return
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_smoke_run_writes_every_file_of_the_contract_with_a_real_offline_wandb_run(
    tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = run_cli("--out", str(out), "total_steps=400", *TINY_SAC, "wandb.mode=offline",
                     "wandb.tags=[smoke]")
    assert result.returncode == 0, result.stderr
    assert (out / "config.yaml").is_file()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in rows if "loss/critic" in r] == [200, 300, 400]
    assert {"loss/critic", "loss/actor", "loss/alpha", "stats/alpha",
            "stats/entropy"} <= rows[-2].keys()
    assert any("eval/return_mean" in r for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["total_steps"] == 400
    for key in ("kind", "seed", "wall_time_s", "steps_per_s", "env_id", "eval_return_mean",
                "eval_return_std", "eval_episodes"):
        assert key in summary, key
    assert summary["versions"]["torch"] == torch.__version__ and "gymnasium" in summary["versions"]
    assert list_checkpoints(out / "checkpoints")
    offline = list((out / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("run-*.wandb")), "no offline W&B run files"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["agent.batch_size=-4"], "agent.batch_size"),
        (["agent.learning_starts=30000"], "learning_starts"),
        (["agent.bogus=1"], "unknown key 'agent.bogus'"),
        (["env.id=HalfCheeta-v5"], "HalfCheetah-v5"),
        (["env.id=CartPole-v1"], "Discrete"),
        (["--config", "configs/nope.yaml"], "config file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_leaves_no_run_dir(
        tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """train.main in this process (test_resume.py's audited command runs train.py as a process:
    the same one line and exit 2 there)."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    assert train.main(["--out", str(out), *args, "wandb.mode=disabled"]) == 2
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert not out.exists()


# REINFORCE on Pendulum-v1: 4 envs x 25 steps per update, a few seconds in all.
TINY_REINFORCE = ["--config", "configs/reinforce_pendulum.yaml", "env.num_envs=4",
                  "agent.rollout_steps=25", "agent.hidden_sizes=[32, 32]", "eval.episodes=1",
                  "eval.every=1000", "log.every=100", "checkpoint.every=500", "wandb.mode=disabled"]


@pytest.mark.parametrize(
    ("args", "total", "interrupt_after"),
    [(TINY_SAC, 1500, 300), (TINY_REINFORCE, 4000, 1200)],
    ids=["sac", "reinforce"],
)
def test_sigterm_then_resume_ends_identical_to_an_uninterrupted_run(
    tmp_path: Path, args: list[str], total: int, interrupt_after: int,
) -> None:
    steps = [*args, f"total_steps={total}"]
    straight = run_cli("--out", str(tmp_path / "straight"), *steps)
    assert straight.returncode == 0, straight.stderr

    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "--out", str(out), *steps],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (
        metrics.exists() and f'"global_step": {interrupt_after}' in metrics.read_text()
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["total_steps"] < total

    resumed = run_cli("--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    assert_identical(learner_state(tmp_path / "straight"), learner_state(out))
    assert (tmp_path / "straight" / "metrics.jsonl").read_text() == metrics.read_text()


# The tests below run train.main in this process where the process itself is not what they
# test (a process costs ~4 s of imports here); the SIGTERM and smoke tests run train.py.


def test_resume_skips_a_truncated_checkpoint_and_uses_the_previous_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=600", *TINY_SAC]) == 0
    newest, previous = list_checkpoints(out / "checkpoints")[:2]
    newest.write_bytes(newest.read_bytes()[:1000])
    capsys.readouterr()
    with pytest.warns(UserWarning, match=f"^skipping checkpoint: {newest.name} does not match "
                                         "its checksum"):  # a process prints it on stderr
        assert train.main(["--resume", str(out), "total_steps=800"]) == 0
    assert f"from {previous.name}" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["total_steps"] == 800


def test_resume_of_a_checkpoint_from_another_version_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=200", *TINY_SAC]) == 0
    state, _ = load_latest(out / "checkpoints")
    del state["learner"]["agent"]["policy_optimizer"]  # as if an older version had written it
    for stale in list_checkpoints(out / "checkpoints"):
        stale.unlink()
    save_checkpoint(state, out / "checkpoints", step=state["step"])
    capsys.readouterr()
    assert train.main(["--resume", str(out), "total_steps=400"]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert "'policy_optimizer'" in stderr and "another version" in stderr


def test_same_seed_gives_the_same_metrics_file(tmp_path: Path) -> None:
    """One run as a process, one in this process after other tests ran in it: nothing but the
    seed decides the numbers."""
    a = run_cli("--out", str(tmp_path / "a"), "total_steps=400", *TINY_SAC)
    assert a.returncode == 0, a.stderr
    assert train.main(["--out", str(tmp_path / "b"), "total_steps=400", *TINY_SAC]) == 0
    assert ((tmp_path / "a" / "metrics.jsonl").read_text()
            == (tmp_path / "b" / "metrics.jsonl").read_text())


def test_a_nan_in_the_critic_loss_fails_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import agents.sac as sac

    real_critic_gradients = sac.critic_gradients
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # NaN loss and gradients from the 250th update on
        grads, loss, q = real_critic_gradients(*args, **kwargs)
        calls["n"] += 1
        nan = float("nan") if calls["n"] >= 250 else 1.0
        return [g * nan for g in grads], loss * nan, q

    monkeypatch.setattr(sac, "critic_gradients", poisoned)
    out = tmp_path / "run"
    code = train.main(["--out", str(out), "total_steps=1000", *TINY_SAC])
    assert code == 1
    err = capsys.readouterr().err
    assert "non-finite loss/critic" in err and "at step 400" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and "loss/critic" in summary["message"]
    kept = list_checkpoints(out / "checkpoints")
    assert kept[0].name == "step_000000000200.pt"
    assert load_latest(out / "checkpoints")[0]["step"] == 200


def test_an_edited_critic_loss_stops_the_default_run_in_one_line_naming_the_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """The default backprop: explicit would train the unedited math; the run says so instead."""
    import agents.sac as sac

    real_critic_loss = sac.critic_loss

    def huber_critic_loss(critic, target_critic, actor, batch, alpha, gamma):
        _, info = real_critic_loss(critic, target_critic, actor, batch, alpha, gamma)
        q = critic(batch.obs, batch.action)
        return torch.nn.functional.huber_loss(q, info["q_target"].expand_as(q)), info

    monkeypatch.setattr(sac, "critic_loss", huber_critic_loss)
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=300", *TINY_SAC]) == 1
    # not the progress bar's
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith(
        "error: training stopped: the gradient of critic_loss differs")
    assert "agent.backprop=autograd" in err[0] and "no checkpoint had been written yet" in err[0]
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"
    assert train.main(["--out", str(tmp_path / "autograd"), "total_steps=300", *TINY_SAC,
                       "agent.backprop=autograd"]) == 0  # trains the edited loss


def test_resume_continues_the_same_wandb_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=300", *TINY_SAC, "wandb.mode=offline"]) == 0
    assert train.main(["--resume", str(out), "total_steps=400"]) == 0
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, runs
    assert len({run.name.rsplit("-", 1)[1] for run in runs}) == 1, "resume started a new W&B run id"


def test_a_failing_wandb_warns_and_training_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    import wandb

    def broken_init(*args, **kwargs):  # what a W&B outage looks like to us
        raise wandb.errors.CommError("could not reach the W&B server")

    monkeypatch.setattr(wandb, "init", broken_init)
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=300", *TINY_SAC, "wandb.mode=online"]) == 0
    assert ("warning: W&B failed (CommError: could not reach the W&B server)"
            in capsys.readouterr().err)
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    assert (out / "metrics.jsonl").read_text()
