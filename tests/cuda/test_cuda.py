"""The CUDA path: updates on the GPU equal the CPU ones for the same batch and noise, seeded runs
repeat on the GPU, checkpoints move between devices, and compiling works there.

Marked `cuda`; every test skips with the reason when torch sees no GPU (`pytest -m cuda` runs
only these). CPU and CUDA generators give different numbers for one seed, so the comparisons
draw the policy's and the latent's Gaussian noise from one seeded CPU generator (`same_noise`).
TF32 matmuls are switched off: they round to 10 mantissa bits, far beyond float tolerance.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

import train
from agents.buffer import Batch, ReplayBuffer
from agents.checkpoint import load_latest
from agents.reinforce import Reinforce, ReinforceConfig, ScoredBatch
from agents.sac import SAC, SACConfig
from vae.config import DataConfig, ModelConfig, OptimConfig
from vae.trainer import VAELearner

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU"),
]
CPU, GPU = torch.device("cpu"), torch.device("cuda")
# float32 on two devices: different reduction orders, a few ulps per op over a few updates
CLOSE = {"rtol": 1e-4, "atol": 1e-5}
TINY_SAC = ["agent.hidden_sizes=[32, 32]", "agent.batch_size=32", "agent.learning_starts=100",
            "agent.compile=false", "eval.episodes=1", "eval.every=0", "log.every=100",
            "checkpoint.every=200", "wandb.mode=disabled"]


@pytest.fixture(autouse=True)
def _no_tf32() -> Iterator[None]:
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.fixture
def same_noise(monkeypatch: pytest.MonkeyPatch) -> torch.Generator:
    """Normal.rsample's (and .sample's) eps from this CPU generator, moved to the sample's
    device; reseed it before each run that must see the same draws."""
    generator = torch.Generator()

    def standard_normal(shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        return torch.randn(shape, generator=generator, dtype=dtype).to(device)

    def sample(self: torch.distributions.Normal, sample_shape: tuple[int, ...] = ()) -> Tensor:
        # Normal.sample draws with torch.normal instead
        return self.rsample(torch.Size(sample_shape)).detach()

    monkeypatch.setattr(torch.distributions.normal, "_standard_normal", standard_normal)
    monkeypatch.setattr(torch.distributions.Normal, "sample", sample)
    return generator


def assert_close_states(got: dict[str, Tensor], want: dict[str, Tensor]) -> None:
    assert got.keys() == want.keys()
    for key in got:
        torch.testing.assert_close(got[key].cpu(), want[key].cpu(), **CLOSE, msg=f"{key} differs")


# ---------------------------------------------------------------- one update, CPU vs CUDA


def sac_after_updates(device: torch.device, noise: torch.Generator,
                      **config: Any) -> tuple[SAC, list[dict]]:
    torch.manual_seed(0)  # the networks are built on the CPU, then moved: the same init
    agent = SAC(3, 2, SACConfig(hidden_sizes=[16, 16], batch_size=32, buffer_size=100, lr=1e-2,
                                **config), device)
    batches = torch.Generator().manual_seed(1)
    noise.manual_seed(2)
    logged = []
    for _ in range(3):
        batch = Batch(torch.randn(32, 3, generator=batches),
                      torch.rand(32, 2, generator=batches) * 2 - 1,
                      torch.randn(32, generator=batches), torch.randn(32, 3, generator=batches),
                      (torch.rand(32, generator=batches) < 0.1).float())
        logged.append(agent.update(Batch(*(t.to(device) for t in batch)), log=True))
    return agent, logged


@pytest.mark.parametrize("backprop", ["explicit", "autograd"])
def test_sac_updates_on_cuda_equal_the_cpu_ones(same_noise: torch.Generator, backprop: str) -> None:
    cpu, cpu_logged = sac_after_updates(CPU, same_noise, backprop=backprop)
    gpu, gpu_logged = sac_after_updates(GPU, same_noise, backprop=backprop)
    assert next(gpu.actor.parameters()).is_cuda and gpu.log_alpha.is_cuda
    for name in ("actor", "critic", "target_critic"):
        assert_close_states(getattr(gpu, name).state_dict(), getattr(cpu, name).state_dict())
    torch.testing.assert_close(gpu.log_alpha.cpu(), cpu.log_alpha, **CLOSE)
    for got, want in zip(gpu_logged, cpu_logged, strict=True):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5)


@pytest.mark.filterwarnings("error:torch.compile of:RuntimeWarning")  # a fallback to eager fails
def test_compiled_sac_updates_on_cuda_equal_the_eager_ones(same_noise: torch.Generator) -> None:
    compiled, _ = sac_after_updates(GPU, same_noise, compile=True)
    eager, _ = sac_after_updates(GPU, same_noise, compile=False)
    for name in ("actor", "critic", "target_critic"):
        assert_close_states(getattr(compiled, name).state_dict(), getattr(eager, name).state_dict())


def test_reinforce_update_on_cuda_equals_the_cpu_one() -> None:
    """Policy step and value fit, with SGD so that the step is the gradient itself."""
    g = torch.Generator().manual_seed(5)
    batch = ScoredBatch(torch.randn(64, 3, generator=g), torch.randn(64, 2, generator=g),
                        torch.randn(64, generator=g), torch.randn(64, generator=g))
    agents, logged = [], []
    for device in (CPU, GPU):
        torch.manual_seed(0)
        agent = Reinforce(
            3, 2, ReinforceConfig(hidden_sizes=[16], value_steps=3, max_grad_norm=0.5), device
        )
        assert agent.value is not None
        agent.actor_optimizer = torch.optim.SGD(agent.actor.parameters(), lr=0.1)
        agent.value_optimizer = torch.optim.SGD(agent.value.parameters(), lr=0.1)
        on_device = ScoredBatch(
            *(t.to(device) for t in (batch.obs, batch.pre_squash, batch.returns, batch.baseline))
        )
        logged.append(agent.update(on_device, log=True))
        agents.append(agent)
    cpu, gpu = agents
    assert_close_states(gpu.actor.state_dict(), cpu.actor.state_dict())
    assert gpu.value is not None and cpu.value is not None
    assert_close_states(gpu.value.state_dict(), cpu.value.state_dict())
    assert logged[1] == pytest.approx(logged[0], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("estimator", ["pathwise", "score_function"])
def test_vae_steps_on_cuda_equal_the_cpu_ones(same_noise: torch.Generator, estimator: str) -> None:
    learners, logged = [], []
    for device in (CPU, GPU):
        learner = VAELearner(data=DataConfig(batch_size=32),
                             model=ModelConfig(latent_dim=3, hidden_sizes=[16]),
                             optim=OptimConfig(samples=2), estimator=estimator,
                             grad_variance_every=0, seed=0, device=device)
        learner.optimizer = torch.optim.SGD(learner.model.parameters(), lr=0.01)
        same_noise.manual_seed(3)
        logged.append([learner.advance(log=True) for _ in range(3)])
        learners.append(learner)
    assert_close_states(learners[1].model.state_dict(), learners[0].model.state_dict())
    for got, want in zip(logged[1], logged[0], strict=True):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_the_replay_buffer_lives_on_its_device_and_saves_to_the_cpu() -> None:
    buffer = ReplayBuffer(capacity=8, obs_dim=2, act_dim=1, batch_size=4, device=GPU, seed=0)
    buffer.add(torch.ones(3, 2), torch.ones(3, 1), torch.ones(3), torch.ones(3, 2), torch.zeros(3))
    assert all(t.is_cuda for t in (*buffer.storage, *buffer.sample()))
    state = buffer.state_dict()
    assert all(state[name].device == CPU for name in Batch._fields)
    again = ReplayBuffer(capacity=8, obs_dim=2, act_dim=1, batch_size=4, device=GPU, seed=1)
    again.load_state_dict(state)
    for a, b in zip(buffer.sample(), again.sample(), strict=True):
        assert torch.equal(a, b)  # the CUDA generator's state travelled through the CPU copy


# ---------------------------------------------------------------- whole runs


def test_a_seeded_run_on_cuda_repeats_exactly(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert train.main(["--out", str(tmp_path / name), "total_steps=400", "device=cuda",
                           *TINY_SAC]) == 0
    assert ((tmp_path / "a" / "metrics.jsonl").read_text()
            == (tmp_path / "b" / "metrics.jsonl").read_text())


def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu_and_back(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train.main(["--out", str(out), "total_steps=200", "device=cuda", *TINY_SAC]) == 0
    state, _ = load_latest(out / "checkpoints")
    assert state["learner"]["agent"]["actor"]["net.0.weight"].device == CPU  # loaded onto the CPU
    assert train.main(["--resume", str(out), "total_steps=400", "device=cpu"]) == 0
    assert train.main(["--resume", str(out), "total_steps=600", "device=cuda"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["total_steps"] == 600
    steps = [json.loads(line)["global_step"]
             for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 600


def test_the_checkpointed_rng_state_restores_cuda_draws() -> None:
    """training.loop.rng_state keeps every GPU's generator; set_rng_state puts it back, so a
    resumed run on the GPU draws the noise an uninterrupted one would."""
    from training.loop import rng_state, set_rng_state

    state = rng_state()
    assert len(state["cuda"]) == torch.cuda.device_count()
    first = torch.randn(4, device=GPU)
    set_rng_state(state)
    assert torch.equal(torch.randn(4, device=GPU), first)
