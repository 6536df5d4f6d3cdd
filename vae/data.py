"""Datasets for the VAE: scikit-learn's bundled 8x8 digits and MNIST from local files.

Every image becomes a flat float32 vector of grey levels in [0, 1]. The examples are split
once, by a seeded permutation that depends only on ``split_seed`` (not on the run's seed), so
runs with different seeds are scored on the same test images.

MNIST is read from files the user already has (nothing is downloaded):
- an ``.npz`` file with uint8 arrays ``x_train`` and/or ``x_test`` of shape (N, H, W) and
  optional labels ``y_train`` / ``y_test`` (the layout of Keras' ``mnist.npz``);
- an IDX file of images (``train-images-idx3-ubyte``, optionally ``.gz``), or a directory
  holding such files; labels are read from the matching ``*-labels-idx1-ubyte[.gz]`` file
  when it is there.
All images found are pooled and split by the same seeded rule as the digits, so MNIST's
official train/test boundary is not kept.
"""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vae.config import DataConfig

# IDX header: two zero bytes, a type code, the number of dimensions (yann.lecun.com/exdb/mnist).
IDX_UBYTE = 0x08
IMAGE_SUFFIXES = ("images-idx3-ubyte", "images-idx3-ubyte.gz")


@dataclass(frozen=True)
class Split:
    """One part of a dataset.

    | field  | shape  | meaning                                  |
    |--------|--------|------------------------------------------|
    | images | (N, D) | float32 grey levels in [0, 1], D = H * W |
    | labels | (N,)   | int64 digit classes, or None if unknown  |
    """

    images: Tensor
    labels: Tensor | None


@dataclass(frozen=True)
class Dataset:
    """A dataset split into train / validation / test, with the image shape for plotting."""

    name: str
    image_shape: tuple[int, int]
    train: Split
    val: Split
    test: Split


def read_idx_ubyte(path: Path) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzipped when the name ends in ``.gz``).

    Returns an array of shape (d_1, ..., d_n) from the header; a file that is not IDX, holds
    another element type, or is shorter or longer than its header says raises ValueError.
    """
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (gzip.BadGzipFile, EOFError) as error:  # EOFError: a truncated .gz
        raise ValueError(f"{path}: not a valid gzip file ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (the first two bytes must be zero)")
    if raw[2] != IDX_UBYTE:
        raise ValueError(f"{path}: IDX type code must be 0x08 (unsigned byte), got {raw[2]:#04x}")
    ndim = raw[3]
    header_bytes = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_bytes:
        raise ValueError(f"{path}: IDX header truncated or with zero dimensions (ndim {ndim})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) + header_bytes
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} bytes), "
                         f"file has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(shape)  # flat -> shape


def _labels_path(images_path: Path) -> Path:
    """The labels file that goes with an images file (same prefix and compression)."""
    return images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))


def _read_idx_images(files: list[Path]) -> tuple[np.ndarray, np.ndarray | None]:
    """Pool IDX image files; labels only when every images file has its labels file."""
    images = [read_idx_ubyte(f) for f in files]
    label_files = [_labels_path(f) for f in files]
    labels = [read_idx_ubyte(f)
              for f, i in zip(label_files, files, strict=True) if f != i and f.is_file()]
    return np.concatenate(images), (np.concatenate(labels) if len(labels) == len(files) else None)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Pool ``x_train`` / ``x_test`` (and ``y_train`` / ``y_test`` when all are present)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None
    image_keys = [key for key in ("x_train", "x_test") if key in arrays]
    if not image_keys:
        raise ValueError(f"{path}: .npz must contain x_train and/or x_test, found {sorted(arrays)}")
    label_keys = ["y" + key[1:] for key in image_keys]
    images = np.concatenate([arrays[key] for key in image_keys])
    if all(key in arrays for key in label_keys):
        return images, np.concatenate([arrays[key] for key in label_keys])
    return images, None


def load_mnist(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read MNIST-format images from an .npz file, an IDX file or a directory of IDX files.

    | returns | shape     | dtype                  |
    |---------|-----------|------------------------|
    | images  | (N, H, W) | uint8                  |
    | labels  | (N,)      | integer, or None       |
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"MNIST path not found: {path} "
                                "(expected an .npz file, an IDX file or a directory)")
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.name.endswith(IMAGE_SUFFIXES))
        if not files:
            raise FileNotFoundError(f"no *-images-idx3-ubyte[.gz] files in directory {path}")
        images, labels = _read_idx_images(files)
    elif path.suffix == ".npz":
        images, labels = _read_npz(path)
    else:
        images, labels = _read_idx_images([path])
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(
            f"{path}: images must be a non-empty uint8 array (N, H, W), "
            f"got {images.dtype} {images.shape}"
        )
    if labels is not None and labels.shape != (len(images),):
        raise ValueError(f"{path}: labels shape {labels.shape} does not match {len(images)} images")
    return images, labels


def split_indices(
    num_examples: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded permutation cut into (train, val, test) index arrays; sizes round(N * fraction)."""
    num_val = round(num_examples * val_fraction)
    num_test = round(num_examples * test_fraction)
    num_train = num_examples - num_val - num_test
    if min(num_train, num_val, num_test) < 1:
        raise ValueError(
            f"split of {num_examples} examples leaves an empty part "
            f"(train {num_train}, val {num_val}, test {num_test})"
        )
    order = np.random.default_rng(seed).permutation(num_examples)
    return order[:num_train], order[num_train : num_train + num_val], order[num_train + num_val :]


def load_dataset(config: DataConfig, device: torch.device) -> Dataset:
    """Load, scale to [0, 1], flatten and split the configured dataset onto ``device``."""
    if config.name == "digits":
        # Imported here: scikit-learn is needed only for this dataset.
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = bunch.images / 16.0  # grey levels 0..16 -> [0, 1]
        labels: np.ndarray | None = bunch.target
    else:
        assert config.path is not None  # checked in DataConfig
        raw, labels = load_mnist(config.path)
        images = raw / 255.0  # uint8 -> [0, 1]
    image_shape = (int(images.shape[1]), int(images.shape[2]))
    # (N, H, W) -> (N, D)
    flat = torch.as_tensor(images.reshape(len(images), -1), dtype=torch.float32)
    targets = None if labels is None else torch.as_tensor(labels.astype(np.int64))
    parts = split_indices(len(flat), config.val_fraction, config.test_fraction, config.split_seed)

    def part(index: np.ndarray) -> Split:
        rows = torch.as_tensor(index)
        return Split(flat[rows].to(device), None if targets is None else targets[rows])

    train, val, test = (part(index) for index in parts)
    if config.batch_size > len(train.images):
        raise ValueError(
            f"batch_size must be <= the {len(train.images)} training examples, got "
            f"{config.batch_size}"
        )
    return Dataset(config.name, image_shape, train, val, test)


class EpochSampler:
    """Minibatch indices: a fresh seeded permutation each epoch, full batches only.

    Holds its own ``torch.Generator`` so the data order is independent of the global RNG and
    is restored exactly by ``load_state_dict``.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int) -> None:
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(num_examples, generator=self.generator)
        self.cursor = 0

    def next_indices(self) -> Tensor:
        """The next (batch_size,) int64 indices; reshuffles when fewer than a batch remain."""
        if self.cursor + self.batch_size > self.num_examples:
            self.order = torch.randperm(self.num_examples, generator=self.generator)
            self.cursor = 0
        batch = self.order[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order.clone(),
                "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.cursor = int(state["cursor"])
