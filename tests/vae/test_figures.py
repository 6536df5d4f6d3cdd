"""Figure helpers: the image mosaic layout and the PCA projection of the latent map."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA

from vae.figures import principal_components, tile


def test_tile_lays_images_out_row_by_row_with_blank_gaps() -> None:
    images = np.arange(1, 6 * 2 * 3 + 1, dtype=np.float64).reshape(6, 2, 3)  # 6 images of 2x3
    mosaic = tile(images, rows=2)
    assert mosaic.shape == (2 * 3 - 1, 3 * 4 - 1)
    np.testing.assert_array_equal(mosaic[0:2, 4:7], images[1])  # row 0, column 1
    np.testing.assert_array_equal(mosaic[3:5, 8:11], images[5])  # row 1, column 2
    assert (mosaic[2] == 0).all() and (mosaic[:, 3] == 0).all()


def test_principal_components_match_scikit_learn_up_to_sign() -> None:
    codes = (torch.randn(200, 5, generator=torch.Generator().manual_seed(0))
             * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.1]))
    points, explained = principal_components(codes)
    reference = PCA(n_components=2).fit(codes.numpy())
    expected = reference.transform(codes.numpy())
    signs = np.sign((points.numpy() * expected).sum(0))  # (N, 2) -> (2,)
    np.testing.assert_allclose(points.numpy() * signs, expected, atol=1e-4)
    np.testing.assert_allclose(explained.numpy(), reference.explained_variance_ratio_, rtol=1e-4)
