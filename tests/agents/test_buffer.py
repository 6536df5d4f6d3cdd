"""Replay buffer: wrap-around, batched adds, sampling from the filled part,
compact state round trip."""

import io

import pytest
import torch

from agents.buffer import ReplayBuffer

CPU = torch.device("cpu")


def transitions(first: int, n: int) -> tuple[torch.Tensor, ...]:
    """n transitions whose every field encodes its index first, first + 1, ...
    (obs_dim 2, act_dim 1)."""
    index = torch.arange(first, first + n, dtype=torch.float64)  # any dtype: converted on copy
    return (index[:, None].repeat(1, 2), index[:, None], index, index[:, None].repeat(1, 2) + 0.5,
            index % 2 == 0)


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
    assert (batch.action.shape == (64, 1) and batch.reward.shape == (64,)
            and batch.terminated.shape == (64,))
    # 64 draws from 3 rows: P(one missing) < 1e-10
    assert set(batch.reward.tolist()) == {0.0, 1.0, 2.0}
    assert (torch.equal(batch.obs[:, 0], batch.reward)
            and torch.equal(batch.next_obs[:, 0], batch.reward + 0.5))
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
    with pytest.raises(ValueError, match=r"^cannot sample from an empty replay buffer$"):
        buffer.sample()
    obs, action, reward, next_obs, terminated = transitions(0, 3)
    with pytest.raises(ValueError, match=r"^shape mismatch: reward \(1,\) vs expected \(3,\)$"):
        buffer.add(obs, action, reward[:1], next_obs, terminated)
    with pytest.raises(ValueError, match=r"^shape mismatch: obs \(3, 3\) vs expected \(3, 2\)$"):
        buffer.add(torch.zeros(3, 3), action, reward, next_obs, terminated)
    with pytest.raises(ValueError, match=r"^cannot add 5 transitions to a buffer of capacity 4$"):
        buffer.add(*transitions(0, 5))
    with pytest.raises(ValueError, match=r"^capacity must be >= 1, got 0$"):
        ReplayBuffer(capacity=0, obs_dim=2, act_dim=1, batch_size=2, device=CPU, seed=0)
    with pytest.raises(ValueError, match=r"^batch_size must be >= 1, got 0$"):
        ReplayBuffer(capacity=4, obs_dim=2, act_dim=1, batch_size=0, device=CPU, seed=0)


def test_the_smallest_buffer_and_batch_work() -> None:
    buffer = ReplayBuffer(capacity=1, obs_dim=2, act_dim=1, batch_size=1, device=CPU, seed=0)
    buffer.add(*transitions(0, 1))
    buffer.add(*transitions(7, 1))  # overwrites the only slot
    assert (buffer.pos, len(buffer)) == (0, 1)
    assert buffer.sample().reward.tolist() == [7.0]


def test_after_wrapping_sampling_is_uniform_over_the_whole_ring() -> None:
    """Once the ring has wrapped, every slot holds a live transition, also those at and above
    the write position: each of the 5 is drawn with probability 1/5 (binomial, 5 SE)."""
    buffer = ReplayBuffer(capacity=5, obs_dim=2, act_dim=1, batch_size=1000, device=CPU, seed=0)
    buffer.add(*transitions(0, 3))
    buffer.add(*transitions(3, 4))  # slots hold 5, 6, 2, 3, 4; pos = 2
    draws = torch.cat([buffer.sample().reward.clone() for _ in range(20)])  # 20000 draws
    counts = torch.stack([(draws == r).sum() for r in (2.0, 3.0, 4.0, 5.0, 6.0)]).double()
    assert counts.sum() == draws.numel()  # nothing else (no overwritten 0 or 1)
    n, p = draws.numel(), 0.2
    assert torch.all((counts - n * p).abs() <= 5 * (n * p * (1 - p)) ** 0.5), counts


def test_load_state_dict_takes_a_full_buffer_and_refuses_one_that_does_not_fit() -> None:
    full = ReplayBuffer(capacity=4, obs_dim=2, act_dim=1, batch_size=2, device=CPU, seed=0)
    full.add(*transitions(0, 4))
    same = ReplayBuffer(capacity=4, obs_dim=2, act_dim=1, batch_size=2, device=CPU, seed=1)
    same.load_state_dict(full.state_dict())  # size == capacity fits
    assert torch.equal(same.storage.reward, full.storage.reward) and len(same) == 4
    small = ReplayBuffer(capacity=3, obs_dim=2, act_dim=1, batch_size=2, device=CPU, seed=0)
    with pytest.raises(ValueError,
                       match=r"^saved buffer holds 4 transitions, more than this capacity 3$"):
        small.load_state_dict(full.state_dict())
    wide = ReplayBuffer(capacity=4, obs_dim=3, act_dim=1, batch_size=2, device=CPU, seed=0)
    with pytest.raises(ValueError,
                       match=r"^shape mismatch: saved obs \(4, 2\) vs expected \(4, 3\)$"):
        wide.load_state_dict(full.state_dict())
