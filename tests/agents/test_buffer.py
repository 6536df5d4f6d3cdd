"""Replay buffer: wrap-around, batched adds, sampling from the filled part, compact state round trip."""

import io

import pytest
import torch

from agents.buffer import ReplayBuffer

CPU = torch.device("cpu")


def transitions(first: int, n: int) -> tuple[torch.Tensor, ...]:
    """n transitions whose every field encodes its index first, first + 1, ... (obs_dim 2, act_dim 1)."""
    index = torch.arange(first, first + n, dtype=torch.float64)  # any dtype: converted on copy
    return index[:, None].repeat(1, 2), index[:, None], index, index[:, None].repeat(1, 2) + 0.5, index % 2 == 0


def test_batched_adds_wrap_around_the_ring() -> None:
    buffer = ReplayBuffer(capacity=5, obs_dim=2, act_dim=1, batch_size=4, device=CPU, seed=0)
    buffer.add(*transitions(0, 3))
    assert (buffer.pos, len(buffer)) == (3, 3)
    buffer.add(*transitions(3, 4))  # 3, 4 fill the end; 5, 6 overwrite slots 0, 1
    assert (buffer.pos, len(buffer)) == (2, 5)
    assert buffer.storage.reward.tolist() == [5.0, 6.0, 2.0, 3.0, 4.0]
    assert buffer.storage.obs[:, 1].tolist() == [5.0, 6.0, 2.0, 3.0, 4.0]
    assert buffer.storage.next_obs[:, 0].tolist() == [5.5, 6.5, 2.5, 3.5, 4.5]
    assert buffer.storage.terminated.tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert buffer.storage.obs.dtype == torch.float32


def test_sample_has_batch_shapes_draws_only_filled_rows_and_reuses_its_tensors() -> None:
    buffer = ReplayBuffer(capacity=100, obs_dim=2, act_dim=1, batch_size=64, device=CPU, seed=0)
    buffer.add(*transitions(0, 3))
    batch = buffer.sample()
    assert batch.obs.shape == (64, 2) and batch.next_obs.shape == (64, 2)
    assert batch.action.shape == (64, 1) and batch.reward.shape == (64,) and batch.terminated.shape == (64,)
    assert set(batch.reward.tolist()) == {0.0, 1.0, 2.0}  # 64 draws from 3 rows: P(one missing) < 1e-10
    assert torch.equal(batch.obs[:, 0], batch.reward) and torch.equal(batch.next_obs[:, 0], batch.reward + 0.5)
    again = buffer.sample()
    assert again.obs.data_ptr() == batch.obs.data_ptr()  # written in place, no new allocation


def test_state_dict_holds_the_filled_part_and_restores_contents_and_sampling() -> None:
    buffer = ReplayBuffer(capacity=50, obs_dim=2, act_dim=1, batch_size=8, device=CPU, seed=0)
    buffer.add(*transitions(0, 7))
    buffer.sample()
    state = buffer.state_dict()
    assert state["obs"].shape == (7, 2) and state["obs"].untyped_storage().nbytes() == 7 * 2 * 4

    saved = io.BytesIO()
    torch.save(state, saved)
    saved.seek(0)
    restored = ReplayBuffer(capacity=50, obs_dim=2, act_dim=1, batch_size=8, device=CPU, seed=123)
    restored.load_state_dict(torch.load(saved, weights_only=True))
    assert (restored.pos, len(restored)) == (7, 7)
    for a, b in zip(buffer.storage, restored.storage, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(buffer.sample(), restored.sample(), strict=True):
        assert torch.equal(a, b)  # the generator continues where it was


def test_bad_input_is_a_one_line_value_error() -> None:
    buffer = ReplayBuffer(capacity=4, obs_dim=2, act_dim=1, batch_size=2, device=CPU, seed=0)
    with pytest.raises(ValueError, match="cannot sample from an empty replay buffer"):
        buffer.sample()
    obs, action, reward, next_obs, terminated = transitions(0, 3)
    with pytest.raises(ValueError, match=r"shape mismatch: reward \(1,\) vs expected \(3,\)"):
        buffer.add(obs, action, reward[:1], next_obs, terminated)
    with pytest.raises(ValueError, match="cannot add 5 transitions to a buffer of capacity 4"):
        buffer.add(*transitions(0, 5))
