"""Replay buffer for off-policy learning: preallocated tensors, batched adds, reused batches."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor


class Batch(NamedTuple):
    """A minibatch of transitions (s, a, r, s', terminated).

    `next_obs` is the true successor state, also when the episode ended there (the env's
    `final_obs`), and `terminated` (1.0 / 0.0) marks a terminal state only: a time-limit
    truncation keeps terminated = 0 so the target still bootstraps from V(s').

    Shapes: obs, next_obs (B, obs_dim); action (B, act_dim); reward, terminated (B,).
    """

    obs: Tensor
    action: Tensor
    reward: Tensor
    next_obs: Tensor
    terminated: Tensor


class ReplayBuffer:
    """A ring of the last `capacity` transitions, stored as float32 tensors on `device`.

    `add` writes N transitions (one per sub-env) at once, wrapping around; `sample` draws
    `batch_size` indices uniformly with replacement from the filled part using the buffer's
    own seeded generator, and writes the batch into tensors allocated once: the returned
    Batch is overwritten by the next `sample` call. `state_dict` holds only the filled part.

    Shapes: storage obs/next_obs (capacity, obs_dim), action (capacity, act_dim),
    reward/terminated (capacity,); add() takes (N, ...) of the same trailing shapes.
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        batch_size: int,
        device: torch.device,
        seed: int,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.capacity = capacity
        self.pos = 0  # next slot to write
        self.size = 0  # filled slots
        self.storage = self._empty(capacity, obs_dim, act_dim, device)
        self._batch = self._empty(batch_size, obs_dim, act_dim, device)
        self._index = torch.empty(batch_size, dtype=torch.long, device=device)
        self._generator = torch.Generator(device=device)
        self._generator.manual_seed(seed)

    @staticmethod
    def _empty(n: int, obs_dim: int, act_dim: int, device: torch.device) -> Batch:
        def empty(*shape: int) -> Tensor:
            return torch.zeros(shape, dtype=torch.float32, device=device)

        return Batch(empty(n, obs_dim), empty(n, act_dim), empty(n), empty(n, obs_dim), empty(n))

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Tensor, action: Tensor, reward: Tensor, next_obs: Tensor,
            terminated: Tensor) -> None:
        """Append N transitions; any dtype/device, converted on copy (no other allocation)."""
        new = Batch(obs, action, reward, next_obs, terminated)
        n = obs.shape[0]
        for name, value, slot in zip(Batch._fields, new, self.storage, strict=True):
            if value.shape != (n, *slot.shape[1:]):
                raise ValueError(f"shape mismatch: {name} {tuple(value.shape)} vs expected "
                                 f"{(n, *slot.shape[1:])}")
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions to a buffer of capacity {self.capacity}")
        head = min(n, self.capacity - self.pos)  # rows that fit before the end of the ring
        for value, slot in zip(new, self.storage, strict=True):
            slot[self.pos : self.pos + head].copy_(value[:head])
            if head < n:
                slot[: n - head].copy_(value[head:])  # the wrapped-around rest
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self) -> Batch:
        """`batch_size` transitions drawn uniformly with replacement (reused output tensors)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        torch.randint(0, self.size, self._index.shape, generator=self._generator, out=self._index)
        for slot, out in zip(self.storage, self._batch, strict=True):
            torch.index_select(slot, 0, self._index, out=out)  # (capacity, ...) -> (B, ...)
        return self._batch

    def state_dict(self) -> dict[str, Any]:
        """The filled part (compact CPU copies, so a checkpoint does not hold the empty rest)."""
        stored = {name: slot[: self.size].to("cpu", copy=True)
                  for name, slot in zip(Batch._fields, self.storage, strict=True)}
        return {**stored, "pos": self.pos, "size": self.size,
                "generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = state["size"]
        if size > self.capacity:
            raise ValueError(f"saved buffer holds {size} transitions, more than this capacity "
                             f"{self.capacity}")
        for name, slot in zip(Batch._fields, self.storage, strict=True):
            saved = state[name]
            if saved.shape != (size, *slot.shape[1:]):
                raise ValueError(f"shape mismatch: saved {name} {tuple(saved.shape)} vs expected "
                                 f"{(size, *slot.shape[1:])}")
            slot[:size].copy_(saved)
        self.pos, self.size = state["pos"], size
        self._generator.set_state(state["generator"])
