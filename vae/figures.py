"""PNG figures of a trained VAE: image grids and a 2-D map of the latent codes.

Drawn on `matplotlib.figure.Figure` objects, which render with the Agg canvas and never touch
pyplot's global state or need a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor


def tile(images: np.ndarray, rows: int) -> np.ndarray:
    """Images (N, H, W), N = rows * columns, into one (rows*(H+1)-1, columns*(W+1)-1) mosaic
    with 1-pixel blank gaps (value 0), row by row."""
    count, height, width = images.shape
    columns = count // rows
    padded = np.zeros((count, height + 1, width + 1), dtype=images.dtype)
    padded[:, :height, :width] = images
    # (N, .) -> (R, H+1, C, W+1)
    mosaic = padded.reshape(rows, columns, height + 1, width + 1).transpose(0, 2, 1, 3)
    # -> (R(H+1), C(W+1)) less the last gap
    return mosaic.reshape(rows * (height + 1), columns * (width + 1))[:-1, :-1]


def save_image_grid(images: np.ndarray, rows: int, path: Path, title: str) -> Path:
    """Grey images (N, H, W) with values in [0, 1], N = rows * columns, as one mosaic PNG."""
    mosaic = tile(images, rows)
    scale = 6.0 / max(mosaic.shape)  # inches per pixel: the long side is 6 inches
    figure = Figure(figsize=(mosaic.shape[1] * scale, mosaic.shape[0] * scale + 0.4),
                    layout="constrained")
    ax = figure.subplots()
    ax.imshow(mosaic, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    figure.savefig(path, dpi=120)
    return path


def principal_components(codes: Tensor) -> tuple[Tensor, Tensor]:
    """Project codes (N, Z) on their top-2 principal axes.

    Returns the (N, 2) projection and the (2,) share of the total variance each axis explains.
    """
    centred = codes - codes.mean(0)  # (N, Z) - (Z,)
    _, singular, right = torch.linalg.svd(centred, full_matrices=False)
    # PCA: axes are the right singular vectors; variance along axis i is s_i^2 / (N - 1).
    explained = singular[:2].square() / singular.square().sum()  # (Z,) -> (2,)
    return centred @ right[:2].T, explained  # (N, Z) @ (Z, 2) -> (N, 2)


def save_latent_map(points: np.ndarray, labels: np.ndarray | None, axis_names: tuple[str, str],
                    path: Path, title: str) -> Path:
    """Scatter of 2-D points (N, 2), coloured by integer label (N,) when labels are known."""
    figure = Figure(figsize=(5.0, 4.2), layout="constrained")
    ax = figure.subplots()
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.7)
    else:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8,
                             vmin=-0.5, vmax=9.5)
        figure.colorbar(scatter, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title, fontsize=9)
    figure.savefig(path, dpi=120)
    return path
