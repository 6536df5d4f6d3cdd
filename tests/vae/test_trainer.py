"""VAELearner under the Learner protocol: logging, exact resume, evaluation, figures, configs."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch

from vae.config import DataConfig, ModelConfig, OptimConfig
from vae.trainer import VAELearner

REPO = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
VAE_CONFIGS = sorted((REPO / "configs").glob("vae_*.yaml"))


def tiny_learner(estimator: str = "pathwise", latent: str = "gaussian",
                 baseline: str = "leave_one_out", grad_variance_every: int = 0, latent_dim: int = 3,
                 posterior: str = "diagonal") -> VAELearner:
    return VAELearner(
        data=DataConfig(batch_size=32),
        model=ModelConfig(latent=latent, latent_dim=latent_dim, categories=4, hidden_sizes=[16],  # type: ignore[arg-type]
                          iwae_samples=4, temperature_decay=0.1, posterior=posterior,  # type: ignore[arg-type]
                          flow_steps=2, flow_context=4),
        optim=OptimConfig(samples=2, baseline=baseline),  # type: ignore[arg-type]
        estimator=estimator,
        grad_variance_every=grad_variance_every,
        seed=0,
        device=CPU,
        grad_variance_samples=4,
    )


def parameters(learner: VAELearner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner.model.parameters()]


def advance(learner: VAELearner, steps: int) -> list[dict[str, float]]:
    """The loop of train.py in miniature: log every 2nd step."""
    return [learner.advance(log=(learner.step + 1) % 2 == 0) for _ in range(steps)]


RESUME_CASES = [
    ("pathwise", "gaussian", "leave_one_out", "diagonal"),
    ("pathwise", "gaussian", "leave_one_out", "flow"),
    ("score_function", "gaussian", "ema", "diagonal"),
    ("pathwise", "categorical", "leave_one_out", "diagonal"),
    ("score_function", "categorical", "none", "diagonal"),
]


@pytest.mark.parametrize(("estimator", "latent", "baseline", "posterior"), RESUME_CASES)
def test_resume_from_a_checkpoint_is_bit_identical(estimator: str, latent: str, baseline: str,
                                                   posterior: str) -> None:
    total, split = 9, 4
    torch.manual_seed(7)
    straight = tiny_learner(estimator, latent, baseline, grad_variance_every=3, posterior=posterior)
    advance(straight, split)
    straight.evaluate()  # train.py evaluates between steps: must not shift the training noise
    advance(straight, total - split)

    torch.manual_seed(7)
    first = tiny_learner(estimator, latent, baseline, grad_variance_every=3, posterior=posterior)
    advance(first, split)
    buffer = io.BytesIO()
    torch.save({"learner": first.state_dict(), "rng": torch.get_rng_state()}, buffer)
    torch.manual_seed(12345)  # a fresh process: other global RNG state, until train.py restores it
    resumed = tiny_learner(estimator, latent, baseline, grad_variance_every=3, posterior=posterior)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed.load_state_dict(state["learner"])
    torch.set_rng_state(state["rng"])
    advance(resumed, total - split)

    assert resumed.step == straight.step == total
    for a, b in zip(parameters(straight), parameters(resumed), strict=True):
        assert torch.equal(a, b)


def test_gradient_diagnostics_do_not_change_the_training_trajectory() -> None:
    torch.manual_seed(0)
    plain = tiny_learner("score_function")
    advance(plain, 6)
    torch.manual_seed(0)
    diagnosed = tiny_learner("score_function", grad_variance_every=1)
    logs = advance(diagnosed, 6)
    assert "grad/encoder_var_trace" in logs[1]
    for a, b in zip(parameters(plain), parameters(diagnosed), strict=True):
        assert torch.equal(a, b)


def test_advance_logs_namespaced_floats_only_when_asked() -> None:
    learner = tiny_learner("pathwise", "categorical", grad_variance_every=4)
    assert learner.advance(log=False) == {}
    logs = advance(learner, 5)  # steps 2..6, logged at 2, 4, 6: logs[0], logs[2], logs[4]
    assert logs[1] == {} and logs[0].keys() == {"loss/elbo", "train/elbo", "train/recon_nll",
                                                "train/kl", "stats/temperature"}
    # The diagnostics run on the first logged step at or after each multiple of 4.
    grad_keys = {"grad/encoder_var_trace", "grad/encoder_snr", "grad/encoder_var_trace_pathwise",
                 "grad/encoder_var_trace_score_function", "grad/encoder_var_ratio"}
    assert grad_keys <= logs[2].keys() and not grad_keys & (logs[0].keys() | logs[4].keys())
    assert all(isinstance(v, float) for v in logs[2].values())
    # Annealing: the temperature falls from its start towards the floor.
    assert logs[0]["stats/temperature"] > logs[4]["stats/temperature"] >= 0.5
    # Pathwise gradients are less noisy than score-function ones on the same batch.
    assert logs[2]["grad/encoder_var_ratio"] > 1


def test_score_function_with_ema_logs_its_baseline() -> None:
    learner = tiny_learner("score_function", baseline="ema")
    logs = advance(learner, 2)
    assert logs[1]["stats/baseline"] != 0.0


def test_evaluate_and_summary_are_deterministic_and_leave_the_global_rng_alone() -> None:
    learner = tiny_learner()
    advance(learner, 3)
    rng = torch.get_rng_state()
    first = learner.evaluate()
    assert torch.equal(rng, torch.get_rng_state())
    assert first == learner.evaluate()
    assert first.keys() == {f"{split}/{key}" for split in ("val", "test")
                            for key in ("elbo", "recon_nll", "kl", "iwae")}
    assert first["test/elbo"] == pytest.approx(-first["test/recon_nll"] - first["test/kl"],
                                               rel=1e-5)
    summary = learner.summary()
    assert summary == {"dataset": "digits", "test_elbo": first["test/elbo"],
                       "test_recon_nll": first["test/recon_nll"], "test_kl": first["test/kl"],
                       "test_iwae": first["test/iwae"]}
    json.dumps(summary)  # plain JSON types


@pytest.mark.parametrize(("latent", "latent_dim"),
                         [("gaussian", 2), ("gaussian", 3), ("categorical", 3)])
def test_write_figures_writes_three_pngs(tmp_path: Path, latent: str, latent_dim: int) -> None:
    learner = tiny_learner(latent=latent, latent_dim=latent_dim)
    paths = learner.write_figures(tmp_path)
    assert [p.name for p in paths] == ["vae_reconstructions.png", "vae_prior_samples.png",
                                       "vae_latent_map.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_construction_rejects_bad_input_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError,
                       match="estimator must be pathwise or score_function, got 'reinforce'"):
        tiny_learner("reinforce")
    with pytest.raises(ValueError,
                       match="samples must be >= 2 for the leave_one_out baseline, got 1"):
        OptimConfig(samples=1)
    with pytest.raises(FileNotFoundError, match="MNIST path not found"):
        VAELearner(DataConfig(name="mnist", path=str(tmp_path / "missing.npz")), ModelConfig(),
                   OptimConfig(), "pathwise", 0, 0, CPU)


@pytest.mark.parametrize("path", VAE_CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads_and_trains(path: Path) -> None:
    from training.config import VAERunConfig, load_config

    config = load_config(path, ["model.hidden_sizes=[8]", "model.iwae_samples=2"])
    assert isinstance(config, VAERunConfig) and config.data.name == "digits"
    learner = VAELearner(config.data, config.model, config.optim, config.estimator,
                         config.diagnostics.grad_variance_every, config.seed, CPU)
    metrics = learner.advance(log=True)
    assert learner.step == 1 and math.isfinite(metrics["train/elbo"])


def test_vae_configs_cover_both_estimators_both_latents_and_the_flow_posterior() -> None:
    names = {p.name for p in VAE_CONFIGS}
    assert {"vae_digits.yaml", "vae_digits_score_function.yaml", "vae_digits_categorical.yaml",
            "vae_digits_flow.yaml"} <= names


def test_flow_posterior_logs_pathwise_statistics_and_refuses_the_score_function() -> None:
    learner = tiny_learner(posterior="flow", grad_variance_every=2)
    logs = advance(learner, 2)
    assert {"grad/encoder_var_trace", "grad/encoder_snr"} <= logs[1].keys()
    assert "grad/encoder_var_ratio" not in logs[1]
    with pytest.raises(ValueError, match="posterior: flow is trained with estimator: pathwise"):
        tiny_learner("score_function", posterior="flow")


def test_train_py_runs_a_vae_config_end_to_end(tmp_path: Path) -> None:
    import train

    out = tmp_path / "run"
    code = train.main(["--config", str(REPO / "configs" / "vae_digits.yaml"), "--out", str(out),
                       "total_steps=6", "log.every=3", "eval.every=3", "checkpoint.every=3",
                       "diagnostics.grad_variance_every=3", "model.hidden_sizes=[8]",
                       "wandb.mode=disabled"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["dataset"] == "digits"
    assert {"test_elbo", "test_recon_nll", "test_kl", "test_iwae"} <= summary.keys()
    assert sorted(p.name for p in out.glob("vae_*.png")) == [
        "vae_latent_map.png", "vae_prior_samples.png", "vae_reconstructions.png"]
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("grad/encoder_var_trace" in row for row in logged)


def test_default_config_file_repeats_the_dataclass_defaults_that_vae_compare_trains() -> None:
    from training.config import load_config

    config = load_config(REPO / "configs" / "vae_digits.yaml", [])
    assert (config.data, config.model, config.optim) == (DataConfig(), ModelConfig(), OptimConfig())  # type: ignore[attr-defined]
    assert config.estimator == "pathwise" and config.total_steps == 3000  # type: ignore[attr-defined]
