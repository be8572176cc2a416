"""Synthetic casting photographs: shape, determinism and a visible defect where the mask says."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from castline.sim.photos import DEFECT_CODES, encode_jpeg, render_casting


def test_good_casting_is_rgb_with_empty_mask() -> None:
    image, mask = render_casting(np.random.default_rng(3), None, size=128)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert mask.shape == (128, 128) and mask.dtype == bool and not mask.any()
    # The part is brighter than the background around it.
    assert image[64 - 20 : 64 + 20, 64 + 25 : 64 + 40].mean() > image[:10, :10].mean() + 40


def test_same_seed_same_picture_other_seed_other_picture() -> None:
    a, _ = render_casting(np.random.default_rng(7), "crack")
    b, _ = render_casting(np.random.default_rng(7), "crack")
    c, _ = render_casting(np.random.default_rng(8), "crack")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("code", DEFECT_CODES)
def test_defect_is_visible_inside_its_mask(code: str) -> None:
    rng = np.random.default_rng(11)
    for _ in range(3):
        image, mask = render_casting(rng, code)
        grey = image[:, :, 0].astype(float)
        assert 20 <= mask.sum() < 0.1 * mask.size
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        pad = 12
        around = np.zeros_like(mask)
        around[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad] = True
        around &= ~mask
        assert abs(grey[mask].mean() - grey[around].mean()) > 15, code


def test_unknown_defect_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="gas_porosity"):
        render_casting(np.random.default_rng(0), "rust")


def test_jpeg_decodes_to_the_same_size() -> None:
    image, _ = render_casting(np.random.default_rng(1), "flash", size=200)
    data = encode_jpeg(image)
    assert data[:2] == b"\xff\xd8"
    assert Image.open(io.BytesIO(data)).size == (200, 200)
