"""python -m agents.export: the ONNX file against load_policy (round trip),
its interface, errors."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from agents import export, load_policy
from envs import make_env


def test_the_onnx_model_acts_like_load_policy_on_real_observations(
        reinforce_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "policy.onnx"
    assert export.main(["--run", str(reinforce_run), "--onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (f"opset {export.OPSET}" in printed and "max abs difference" in printed
            and ": ok" in printed)
    assert [p.name for p in tmp_path.iterdir()] == ["policy.onnx"]  # one self-contained file

    model = onnx.load(str(out))
    assert model.opset_import[0].version == export.OPSET
    (obs_input,), (action_output,) = model.graph.input, model.graph.output
    assert [d.dim_param or d.dim_value
            for d in obs_input.type.tensor_type.shape.dim] == ["batch", 4]
    assert [d.dim_param or d.dim_value
            for d in action_output.type.tensor_type.shape.dim] == ["batch", 1]

    # Observations the task really produces (InvertedPendulum-v5, actions in [-3, 3]), batch 37.
    env = make_env("InvertedPendulum-v5", seed=1, rescale=False)
    env.action_space.seed(1)
    obs = []
    for _ in range(37):
        o, _, terminated, truncated, _ = env.step(env.action_space.sample())
        obs.append(o)
        if terminated or truncated:
            env.reset()
    batch = np.asarray(obs, dtype=np.float32)  # (37, 4)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    actions = session.run(["action"], {"obs": batch})[0]  # (37, 1)
    expected = load_policy(reinforce_run)(batch).numpy()
    assert actions.shape == (37, 1)
    # float32 rounding through a 64-64 MLP: a few ulp of the action range [-3, 3]
    np.testing.assert_allclose(actions, expected, rtol=0, atol=64 * np.finfo(np.float32).eps * 3)
    assert np.abs(actions).max() <= 3

    # The command's own check can fail: against a changed policy it reports a large difference.
    changed = load_policy(reinforce_run)
    assert export.max_difference(changed, out, samples=5, seed=0) <= export.TOLERANCE
    with torch.no_grad():
        changed.actor.net[0].bias += 0.5
    assert export.max_difference(changed, out, samples=5, seed=0) > export.TOLERANCE


def test_bad_input_is_one_line(pendulum_run: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert export.main(["--run", str(tmp_path / "missing"),
                        "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "does not exist" in err
    with pytest.raises(SystemExit) as exit_info:
        export.main(["--run", str(pendulum_run), "--onnx", str(tmp_path / "x.pt")])
    assert exit_info.value.code == 2 and "ending in .onnx" in capsys.readouterr().err
