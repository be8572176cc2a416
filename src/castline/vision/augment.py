"""Rotated and shifted copies of good photos, so placement alone is never a defect.

A robot cell does not place castings exactly: the memory bank learns the part at the
angles and offsets the cell will show it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Placement:
    """How far a part may turn (degrees either way) and move (fraction of the side).

    The defaults are a cell's usual placement error. Turning much further paints the
    light from directions the camera never sees: on the real impeller photos, copies at
    any angle lowered the image AUROC from 0.91 to 0.84 (docs/vision.md).
    """

    max_rotation: float = 15.0
    max_shift: float = 0.03


def moved(image: np.ndarray, angle: float, dx: float, dy: float) -> np.ndarray:
    """The photo rotated by `angle` degrees about its centre, then shifted by (dx, dy) px.

    Areas the turn uncovers are filled by mirroring the photo's own border (background
    texture), never a flat colour: a textureless corner would itself look anomalous.
    """
    h, w = image.shape[:2]
    # A turned square uncovers up to (sqrt(2) - 1) / 2 of its side at each edge.
    pad = int(np.ceil(0.21 * max(h, w) + max(abs(dx), abs(dy)))) + 1
    pad = min(pad, h - 1, w - 1)  # reflection cannot reach farther than the photo
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    turned = Image.fromarray(padded).rotate(
        angle, resample=Image.Resampling.BICUBIC, translate=(round(dx), round(dy))
    )
    return np.asarray(turned)[pad : pad + h, pad : pad + w].copy()


def copies(
    image: np.ndarray, count: int, placement: Placement, rng: np.random.Generator
) -> list[np.ndarray]:
    """The photo itself and `count` randomly placed copies."""
    out = [image]
    h, w = image.shape[:2]
    for _ in range(count):
        angle = float(rng.uniform(-placement.max_rotation, placement.max_rotation))
        dx, dy = rng.uniform(-placement.max_shift, placement.max_shift, size=2) * (w, h)
        out.append(moved(image, angle, float(dx), float(dy)))
    return out
