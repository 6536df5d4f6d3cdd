"""Checkpoints are atomic, verified, pruned safely, and never execute pickled code."""

import os
from pathlib import Path

import pytest
import torch

from agents.checkpoint import (
    UnsafeCheckpointError,
    first_non_finite,
    list_checkpoints,
    load_latest,
    save_checkpoint,
)


def state(step: int) -> dict:
    return {"step": step, "w": torch.full((3,), float(step)), "rng": (1, 2**127 + 3, "x", None)}


def test_round_trip_keeps_plain_data_and_big_ints(tmp_path: Path) -> None:
    save_checkpoint(state(5), tmp_path, 5)
    loaded, path = load_latest(tmp_path)
    assert path.name == "step_000000000005.pt"
    assert loaded["rng"] == (1, 2**127 + 3, "x", None)
    assert torch.equal(loaded["w"], torch.full((3,), 5.0))


def test_keeps_only_the_newest_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        save_checkpoint(state(step), tmp_path, step, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000000004.pt",
                                                            "step_000000000003.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_000000000003.pt", "step_000000000003.pt.sha256",
        "step_000000000004.pt", "step_000000000004.pt.sha256",
    ]


def test_truncated_newest_checkpoint_falls_back_to_the_previous_with_a_warning(
    tmp_path: Path
) -> None:
    save_checkpoint(state(1), tmp_path, 1)
    newest = save_checkpoint(state(2), tmp_path, 2)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="step_000000000002.pt"):
        loaded, path = load_latest(tmp_path)
    assert loaded["step"] == 1 and path.name == "step_000000000001.pt"


def test_flipped_byte_is_caught_by_the_checksum(tmp_path: Path) -> None:
    save_checkpoint(state(1), tmp_path, 1)
    newest = save_checkpoint(state(2), tmp_path, 2)
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="checksum"):
        loaded, _ = load_latest(tmp_path)
    assert loaded["step"] == 1


def test_truncated_file_without_checksum_is_still_detected(tmp_path: Path) -> None:
    save_checkpoint(state(1), tmp_path, 1)
    newest = save_checkpoint(state(2), tmp_path, 2)
    newest.with_name(newest.name + ".sha256").unlink()
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(UserWarning, match="not a readable checkpoint"):
        loaded, _ = load_latest(tmp_path)
    assert loaded["step"] == 1


def test_no_readable_checkpoint_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_latest(tmp_path)


class RunsCode:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_carrying_code_is_refused_and_the_code_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    with open(ckpt / "step_000000000007.pt", "wb") as f:
        torch.save({"step": 7, "payload": RunsCode(marker)}, f)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
        load_latest(ckpt)
    assert not marker.exists()


def test_first_non_finite_names_the_offending_key() -> None:
    good = {"actor": {"w": torch.ones(2)}, "steps": [torch.zeros(1, dtype=torch.long)]}
    assert first_non_finite(good) is None
    bad = {"actor": {"w": torch.ones(2)}, "critic": [torch.ones(1), torch.tensor([float("nan")])]}
    assert first_non_finite(bad) == "critic.1"
