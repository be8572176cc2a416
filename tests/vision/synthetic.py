"""A synthetic casting for tests: a ring-shaped part on a textured background.

The part carries a notch on its rim, so a rotation really changes the photo. Defects
are dark pits of known centre and radius: tests know where the defect is. Shapes are
drawn at 3x resolution and averaged down, as a lens would: hard aliased edges would be
an artefact no real photo has.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

SIZE = 128
_SUPER = 3


def part(
    seed: int,
    *,
    angle: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    pit: tuple[int, int, int] | None = None,
    size: int = SIZE,
) -> np.ndarray:
    """uint8 RGB photo; `pit` = (x, y, radius) of a dark defect in image pixels."""
    rng = np.random.default_rng(seed)
    n = size * _SUPER
    yy, xx = (np.mgrid[0:n, 0:n].astype(np.float64) + 0.5) / _SUPER
    cx, cy = size / 2 + shift[0], size / 2 + shift[1]
    r = np.hypot(xx - cx, yy - cy) / size
    theta = np.degrees(np.arctan2(yy - cy, xx - cx))
    grey = np.full((n, n), 120.0)
    disc = r < 0.36
    grey[disc] = 190 - 60 * r[disc]  # the part, brighter towards the centre
    grey[(r > 0.16) & (r < 0.23)] = 60  # dark inner ring
    grey[r < 0.08] = 215  # bore
    notch = (np.abs(((theta - angle + 180) % 360) - 180) < 8) & (r > 0.28) & (r < 0.34)
    grey[notch] = 90
    if pit is not None:
        px, py, radius = pit
        grey[np.hypot(xx - px, yy - py) <= radius] = 25
    grey = grey.reshape(size, _SUPER, size, _SUPER).mean(axis=(1, 3))
    # A smooth surface texture, as lens and JPEG leave it, and a little sensor noise.
    grey += ndimage.gaussian_filter(rng.normal(0, 3, (size, size)), 1.5)
    grey += rng.normal(0, 0.5, (size, size))
    image = np.clip(grey, 0, 255).astype(np.uint8)
    return np.repeat(image[:, :, None], 3, axis=2)


def save(image: np.ndarray, path: str) -> None:
    Image.fromarray(image).save(path)
