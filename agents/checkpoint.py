"""Atomic, verified, safely loaded checkpoints.

train.py writes and resumes from them; agents.variance reads them to study a trained policy.

A checkpoint is `checkpoints/step_<N>.pt` (torch.save of plain data: tensors, numbers,
strings, lists, tuples, dicts) plus `step_<N>.pt.sha256`. Writing goes to a temporary file
that is fsynced and then renamed, so a crash leaves either the old set or the new one, never a
half-written file under a checkpoint's name; older checkpoints are pruned only after the new
one is complete. Loading uses `torch.load(weights_only=True)`: a file that would need to
unpickle code is refused (`UnsafeCheckpointError`), never executed. A file whose bytes do not
match its checksum, or that torch cannot read, is skipped with a warning in favour of the
previous one.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"^step_(\d+)\.pt$")


class UnsafeCheckpointError(ValueError):
    """The file asks the unpickler for objects beyond plain data (possibly code)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in `directory`, newest (highest step) first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def save_checkpoint(state: dict[str, Any], directory: Path, step: int, keep: int = 2) -> Path:
    """Write `state` atomically as the checkpoint for `step`; keep the newest `keep` of them."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step_{step:012d}.pt"
    _write_atomic(path, lambda f: torch.save(state, f))
    checksum = _sha256(path)
    _write_atomic(path.with_name(path.name + ".sha256"), lambda f: f.write(checksum.encode()))
    _fsync_dir(directory)
    for old in list_checkpoints(directory)[keep:]:
        old.unlink()
        old.with_name(old.name + ".sha256").unlink(missing_ok=True)
    return path


def load_file(path: Path) -> dict[str, Any]:
    """Load one checkpoint file as plain data; raise UnsafeCheckpointError for pickled code."""
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file() and sidecar.read_text().strip() != _sha256(path):
        raise OSError(f"{path.name} does not match its checksum (truncated or corrupted)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise UnsafeCheckpointError(
                f"refusing to load {path}: it contains pickled objects beyond plain tensors and "
                "numbers (possibly code), which weights_only loading does not execute"
            ) from None
        raise OSError(f"{path.name} is not a readable checkpoint: "
                      f"{str(e).splitlines()[0]}") from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise OSError(f"{path.name} is not a readable checkpoint: "
                      f"{str(e).splitlines()[0]}") from None
    if not isinstance(state, dict):
        raise OSError(f"{path.name} does not hold a checkpoint dictionary")
    return state


def load_latest(directory: Path) -> tuple[dict[str, Any], Path]:
    """The newest checkpoint in `directory` that loads; unreadable ones are skipped with a warning.

    Raises FileNotFoundError when there is none, UnsafeCheckpointError for a file that would
    run code (never skipped silently: someone put it there).
    """
    candidates = list_checkpoints(directory)
    for path in candidates:
        try:
            return load_file(path), path
        except OSError as e:
            warnings.warn(f"skipping checkpoint: {e}; trying the previous one", stacklevel=2)
    if candidates:
        raise FileNotFoundError(f"no readable checkpoint in {directory} "
                                f"({len(candidates)} corrupted)")
    raise FileNotFoundError(f"no checkpoint in {directory}")


def first_non_finite(state: Any, prefix: str = "") -> str | None:
    """Dotted key of the first floating tensor in `state` holding NaN or inf, else None."""
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and not bool(torch.isfinite(state).all()):
            return prefix or "<tensor>"
        return None
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, list | tuple):
        items = enumerate(state)  # type: ignore[assignment]
    else:
        return None
    for key, value in items:
        found = first_non_finite(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None
