"""Datasets: the digits split, the MNIST readers (IDX, gzipped IDX, npz) and the batch order."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vae.config import DataConfig
from vae.data import EpochSampler, load_dataset, load_mnist, read_idx_ubyte

CPU = torch.device("cpu")


def write_idx(path: Path, array: np.ndarray) -> Path:
    """IDX bytes: 0, 0, type 0x08 (ubyte), ndim, big-endian int32 sizes, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def tiny_mnist(num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(num, 4, 3), dtype=np.uint8),
            rng.integers(0, 10, size=num, dtype=np.uint8))


# ------------------------------------------------------------------ digits


def test_digits_split_sizes_are_fixed_disjoint_and_scaled_to_unit_interval() -> None:
    dataset = load_dataset(DataConfig(), CPU)
    sizes = [len(part.images) for part in (dataset.train, dataset.val, dataset.test)]
    assert sizes == [1258, 180, 359]  # 1797 images; round(0.1 * 1797), round(0.2 * 1797)
    assert dataset.image_shape == (8, 8) and dataset.train.images.shape[1] == 64
    everything = torch.cat([dataset.train.images, dataset.val.images, dataset.test.images])
    assert everything.dtype == torch.float32
    assert everything.min() == 0.0 and everything.max() == 1.0
    # Disjoint: no test image row appears in the training rows (the digits have no duplicates
    # across this split, so equal rows would mean a shared example).
    train_rows = {tuple(row.tolist()) for row in dataset.train.images}
    assert not any(tuple(row.tolist()) in train_rows for row in dataset.test.images)


def test_digits_split_depends_on_split_seed_only() -> None:
    first, again = load_dataset(DataConfig(), CPU), load_dataset(DataConfig(), CPU)
    other = load_dataset(DataConfig(split_seed=1), CPU)
    assert torch.equal(first.test.images, again.test.images)
    assert first.test.labels is not None and again.test.labels is not None
    assert torch.equal(first.test.labels, again.test.labels)
    assert not torch.equal(first.test.images, other.test.images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"val_fraction": 1.5}, r"val_fraction must be in \(0, 1\), got 1.5"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction \\+ test_fraction must be < 1"),
        ({"path": "x.npz"}, "path must be null for the bundled digits"),
        ({"name": "mnist"}, "path must name an .npz file"),
        ({"name": "cifar"}, "name must be digits or mnist"),
    ],
)
def test_data_config_rejects_bad_values_in_one_line(kwargs: dict[str, object],
                                                    message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        DataConfig(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(error.value)


def test_batch_larger_than_the_training_split_is_rejected() -> None:
    with pytest.raises(ValueError,
                       match="batch_size must be <= the 1258 training examples, got 5000"):
        load_dataset(DataConfig(batch_size=5000), CPU)


# ------------------------------------------------------------------ MNIST files


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_directory_is_read_with_matching_labels(tmp_path: Path, suffix: str) -> None:
    train_x, train_y = tiny_mnist(5, seed=0)
    test_x, test_y = tiny_mnist(3, seed=1)
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", train_x)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", train_y)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", test_x)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", test_y)
    images, labels = load_mnist(tmp_path)
    # Files are read in sorted name order: t10k before train.
    np.testing.assert_array_equal(images, np.concatenate([test_x, train_x]))
    assert labels is not None
    np.testing.assert_array_equal(labels, np.concatenate([test_y, train_y]))


def test_single_idx_file_without_labels_file_has_no_labels(tmp_path: Path) -> None:
    images_in, _ = tiny_mnist(4)
    images, labels = load_mnist(write_idx(tmp_path / "train-images-idx3-ubyte.gz", images_in))
    np.testing.assert_array_equal(images, images_in)
    assert labels is None


def test_npz_in_keras_layout_is_read(tmp_path: Path) -> None:
    (x_train, y_train), (x_test, y_test) = tiny_mnist(5, 0), tiny_mnist(2, 1)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    images, labels = load_mnist(path)
    np.testing.assert_array_equal(images, np.concatenate([x_train, x_test]))
    assert labels is not None
    np.testing.assert_array_equal(labels, np.concatenate([y_train, y_test]))


def test_mnist_config_loads_scales_and_splits_a_written_file(tmp_path: Path) -> None:
    images, labels = tiny_mnist(40)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=images, y_train=labels)
    dataset = load_dataset(DataConfig(name="mnist", path=str(path), batch_size=4), CPU)
    assert [len(p.images) for p in (dataset.train, dataset.val, dataset.test)] == [28, 4, 8]
    assert dataset.image_shape == (4, 3)
    pooled = torch.cat([dataset.train.images, dataset.val.images, dataset.test.images])
    expected = torch.as_tensor(images.reshape(40, 12) / 255.0, dtype=torch.float32)
    assert torch.equal(pooled.sort(0).values, expected.sort(0).values)  # same pixels, permuted rows


def corrupt(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bad-images-idx3-ubyte", b"\x01\x00\x08\x03" + bytes(12), "not an IDX file"),
        ("bad-images-idx3-ubyte", b"\x00\x00\x0d\x03" + bytes(12), "IDX type code must be 0x08"),
        ("bad-images-idx3-ubyte", b"\x00\x00\x08\x03\x00\x00", "IDX header truncated"),
        ("bad-images-idx3-ubyte", b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 2, 2) + bytes(5),
         r"header says shape \(2, 2, 2\) \(24 bytes\), file has 21"),
        ("bad-images-idx3-ubyte.gz", b"not gzip at all", "not a valid gzip file"),
        ("cut-images-idx3-ubyte.gz", gzip.compress(bytes(100), mtime=0)[:15],
         "not a valid gzip file"),
        ("bad.npz", b"PK but not a zip", "not a readable .npz file"),
        ("bad.npz", b"PK\x03\x04" + bytes(40), "not a readable .npz file"),
        ("empty.npz", b"", "not a readable .npz file"),
    ],
)
def test_malformed_files_raise_one_line_value_error(tmp_path: Path, name: str, data: bytes,
                                                    message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        load_mnist(corrupt(tmp_path, name, data))
    assert "\n" not in str(error.value)


def test_npz_without_images_or_with_wrong_shape_is_rejected(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"must contain x_train and/or x_test, found \['images'\]"):
        load_mnist(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x_train=np.zeros((2, 16), np.float32))
    with pytest.raises(ValueError, match=r"uint8 array \(N, H, W\), got float32 \(2, 16\)"):
        load_mnist(tmp_path / "b.npz")


def test_missing_path_or_empty_directory_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MNIST path not found"):
        load_mnist(tmp_path / "nowhere.npz")
    with pytest.raises(FileNotFoundError, match="no \\*-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_idx_reader_returns_header_shape(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(
        read_idx_ubyte(write_idx(tmp_path / "x-images-idx3-ubyte", array)), array
    )


# ------------------------------------------------------------------ batch order


def test_epoch_sampler_visits_each_example_once_per_epoch_and_resumes_exactly() -> None:
    sampler = EpochSampler(num_examples=10, batch_size=3, seed=0)
    epoch = torch.cat([sampler.next_indices() for _ in range(3)])  # 9 of 10, full batches only
    assert len(set(epoch.tolist())) == 9
    state = sampler.state_dict()
    ahead = [sampler.next_indices() for _ in range(5)]  # crosses into the next epochs
    sampler.load_state_dict(state)
    assert all(torch.equal(a, b)
               for a, b in zip(ahead, (sampler.next_indices() for _ in range(5)), strict=True))
