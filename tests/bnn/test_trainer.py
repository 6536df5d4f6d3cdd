"""BNNLearner under the Learner protocol: exact resume, diagnostics that leave the trajectory
alone, and train.py end to end (config -> summary.json fields, figure, resume)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch

from agents.checkpoint import load_latest
from bnn.config import DataConfig, ModelConfig, OptimConfig
from bnn.layers import ESTIMATORS
from bnn.trainer import BNNLearner
from tests.test_train import assert_identical

REPO = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
BNN_CONFIGS = sorted((REPO / "configs").glob("bnn_*.yaml"))
TINY = ["model.hidden_sizes=[8]", "model.predictive_samples=4", "optim.batch_size=16",
        "log.every=3", "eval.every=3", "checkpoint.every=3", "diagnostics.grad_variance_every=3",
        "wandb.mode=disabled"]


def tiny_learner(estimator: str = "local", bayesian: bool = True, grad_variance_every: int = 0,
                 data: str = "gap1d") -> BNNLearner:
    return BNNLearner(DataConfig(name=data),  # type: ignore[arg-type]
                      ModelConfig(hidden_sizes=[8], bayesian=bayesian, predictive_samples=4),
                      OptimConfig(lr=1e-2, batch_size=16), estimator, grad_variance_every, seed=0,
                      device=CPU, grad_variance_samples=4)


def parameters(learner: BNNLearner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.model.parameters()]


def advance(learner: BNNLearner, steps: int) -> list[dict[str, float]]:
    """The loop of train.py in miniature: log every 2nd step."""
    return [learner.advance(log=(learner.step + 1) % 2 == 0) for _ in range(steps)]


@pytest.mark.parametrize(("estimator", "bayesian"),
                         [(e, True) for e in ESTIMATORS] + [("local", False)])
def test_resume_from_a_checkpoint_is_bit_identical(estimator: str, bayesian: bool) -> None:
    total, split = 9, 4
    torch.manual_seed(7)
    straight = tiny_learner(estimator, bayesian, grad_variance_every=3)
    advance(straight, split)
    straight.evaluate()  # train.py evaluates between steps: must not shift the weight noise
    advance(straight, total - split)

    torch.manual_seed(7)
    first = tiny_learner(estimator, bayesian, grad_variance_every=3)
    advance(first, split)
    buffer = io.BytesIO()
    torch.save({"learner": first.state_dict(), "rng": torch.get_rng_state()}, buffer)
    torch.manual_seed(12345)  # a fresh process: other global RNG state, until train.py restores it
    resumed = tiny_learner(estimator, bayesian, grad_variance_every=3)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed.load_state_dict(state["learner"])
    torch.set_rng_state(state["rng"])
    advance(resumed, total - split)
    assert resumed.step == straight.step == total
    for a, b in zip(parameters(straight), parameters(resumed), strict=True):
        assert torch.equal(a, b)


def test_gradient_diagnostics_log_all_three_estimators_and_leave_the_trajectory_alone() -> None:
    torch.manual_seed(0)
    plain = tiny_learner("global")
    advance(plain, 6)
    torch.manual_seed(0)
    diagnosed = tiny_learner("global", grad_variance_every=2)
    logs = advance(diagnosed, 6)
    expected = {"grad/weight_var_trace", "grad/var_ratio_global_local",
                "grad/var_ratio_global_flipout",
                *(f"grad/weight_var_trace_{name}" for name in ESTIMATORS)}
    assert expected <= logs[1].keys() and logs[0] == {}
    assert logs[1]["grad/weight_var_trace"] == logs[1]["grad/weight_var_trace_global"]
    for a, b in zip(parameters(plain), parameters(diagnosed), strict=True):
        assert torch.equal(a, b)


def test_summary_reports_data_units_and_a_zero_variance_for_the_plain_network() -> None:
    bayesian, plain = tiny_learner(data="diabetes"), tiny_learner(bayesian=False, data="diabetes")
    for learner in (bayesian, plain):
        advance(learner, 2)
    summary = bayesian.summary()
    assert summary.keys() == {"dataset", "test_rmse", "test_log_likelihood", "grad_var_trace"}
    assert summary["dataset"] == "diabetes" and summary["grad_var_trace"] > 0
    # diabetes targets spread ~77 around ~152: an untrained net's RMSE is of that order,
    # in data units
    assert 20 < summary["test_rmse"] < 300 and math.isfinite(summary["test_log_likelihood"])
    assert plain.summary()["grad_var_trace"] == 0.0
    assert summary == bayesian.summary(), "evaluation must be reproducible on the same parameters"


def test_bad_input_is_a_one_line_value_error() -> None:
    with pytest.raises(ValueError, match="estimator must be one of global, local, flipout"):
        tiny_learner("exact")
    with pytest.raises(ValueError,
                       match="batch_size must be <= the 160 training examples, got 500"):
        BNNLearner(DataConfig(), ModelConfig(), OptimConfig(batch_size=500), "local", 0, 0, CPU)


@pytest.mark.parametrize("path", BNN_CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads_and_trains(path: Path) -> None:
    from training.config import BNNRunConfig, load_config

    config = load_config(path, ["model.hidden_sizes=[8]"])
    assert isinstance(config, BNNRunConfig) and config.data.name == path.stem.removeprefix("bnn_")
    learner = BNNLearner(config.data, config.model, config.optim, config.estimator,
                         config.diagnostics.grad_variance_every, config.seed, CPU)
    metrics = learner.advance(log=True)
    assert learner.step == 1 and math.isfinite(metrics["loss/elbo"])


def test_bnn_configs_cover_the_gap_and_a_bundled_scikit_learn_set() -> None:
    assert {p.name for p in BNN_CONFIGS} >= {"bnn_gap1d.yaml", "bnn_diabetes.yaml"}


def test_train_py_runs_a_bnn_config_end_to_end_and_resumes_exactly(tmp_path: Path) -> None:
    import train

    config = ["--config", str(REPO / "configs" / "bnn_gap1d.yaml")]
    assert train.main([*config, "--out", str(tmp_path / "straight"), *TINY, "total_steps=6"]) == 0
    summary = json.loads((tmp_path / "straight" / "summary.json").read_text())
    assert (summary["kind"] == "bnn" and summary["status"] == "completed"
            and summary["dataset"] == "gap1d")
    assert {"test_rmse", "test_log_likelihood", "grad_var_trace"} <= summary.keys()
    assert (tmp_path / "straight" / "bnn_predictive.png").read_bytes()[:4] == b"\x89PNG"
    logged = [json.loads(line)
              for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert any("grad/var_ratio_global_local" in row for row in logged)
    assert any("test/log_likelihood" in row for row in logged)

    # The same run stopped at step 3 (its final checkpoint) and resumed to step 6.
    out = tmp_path / "resumed"
    assert train.main([*config, "--out", str(out), *TINY, "total_steps=3"]) == 0
    torch.manual_seed(999)  # a fresh process would start from other RNG state: resume restores it
    assert train.main(["--resume", str(out), "total_steps=6"]) == 0
    a, _ = load_latest(tmp_path / "straight" / "checkpoints")
    b, _ = load_latest(out / "checkpoints")
    assert a["step"] == b["step"] == 6
    assert_identical(a["learner"], b["learner"])
    resumed_summary = json.loads((out / "summary.json").read_text())
    for key in ("test_rmse", "test_log_likelihood", "grad_var_trace"):
        assert resumed_summary[key] == summary[key], key
    assert ((out / "metrics.jsonl").read_text()
            == (tmp_path / "straight" / "metrics.jsonl").read_text())


def test_an_unknown_estimator_in_a_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import train

    code = train.main(["--config", str(REPO / "configs" / "bnn_gap1d.yaml"),
                       "--out", str(tmp_path / "run"), "estimator=exact"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "estimator must be one of global, local, flipout" in err
    assert not (tmp_path / "run").exists()
