"""How well the good photos line up: decides between per-place and whole-photo memory.

A memory per cell of the patch grid is sharper where the part sits in the same place in
every photo (a fixture, a robot's nest); where parts move by more than about half a cell
between photos, a patch must be compared with the whole photo's normal patches instead.
Training measures each photo's offset from the mean photo (phase correlation of small
grey thumbnails, letterboxed like the model input) and chooses.

The model input itself is shaped like the photos (`input_shape`): a camera's photos are
rarely square, and letterboxing an oblong photo into a square leaves much of the input
to padding; the same number of input pixels shaped like the photo sees the part larger.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from castline.vision.patches import HW

THUMB = 64  # px, the longer side: offsets of a few percent of it resolved in microseconds
SQUARE_ENOUGH = 1.1  # photos closer to square than this keep a square input
SIDE_STEP = 16  # px: each side of the input a multiple of the backbone's largest stride


def input_shape(photo_sizes: list[HW], side: int) -> HW:
    """(height, width) of the model input: about `side` x `side` pixels (the same cost
    as the square), shaped like the typical (median) photo."""
    aspect = float(np.median([w / h for h, w in photo_sizes])) if photo_sizes else 1.0
    if max(aspect, 1 / aspect) < SQUARE_ENOUGH:
        return side, side

    def step(length: float) -> int:
        return max(SIDE_STEP, round(length / SIDE_STEP) * SIDE_STEP)

    return step(side / np.sqrt(aspect)), step(side * np.sqrt(aspect))


def thumb_shape(size: HW) -> HW:
    """The thumbnail of a model input of `size`: THUMB px along its longer side."""
    longer = max(size)
    return max(1, round(THUMB * size[0] / longer)), max(1, round(THUMB * size[1] / longer))


def thumbnail(image: np.ndarray, size: HW = (THUMB, THUMB)) -> np.ndarray:
    """Grey float thumbnail (`thumb_shape`), letterboxed (edge padding) like the model
    input of `size`."""
    th, tw = thumb_shape(size)
    h, w = image.shape[:2]
    scale = min(th / h, tw / w)
    nh, nw = min(th, max(1, round(h * scale))), min(tw, max(1, round(w * scale)))
    grey = Image.fromarray(image).convert("L").resize((nw, nh), Image.Resampling.BILINEAR)
    small = np.asarray(grey, dtype=np.float32)
    top, left = (th - nh) // 2, (tw - nw) // 2
    return np.pad(small, ((top, th - nh - top), (left, tw - nw - left)), mode="edge")


def _offset(spectrum: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    cross = spectrum * np.conj(reference)
    peak = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-9)).real
    found = np.unravel_index(int(np.argmax(peak)), peak.shape)
    dy, dx = (int(d) - n if d > n // 2 else int(d) for d, n in zip(found, peak.shape, strict=True))
    return dy, dx


def offsets(thumbs: list[np.ndarray]) -> np.ndarray:
    """Each photo's (dy, dx) offset from the mean photo, as a share of the longer side:
    [n, 2]."""
    th, tw = thumbs[0].shape
    window = np.outer(np.hanning(th), np.hanning(tw)).astype(np.float32)
    spectra = [np.fft.fft2((t - t.mean()) * window) for t in thumbs]
    reference = np.mean(spectra, axis=0)
    found = np.asarray([_offset(s, reference) for s in spectra], dtype=np.float64)
    found -= np.median(found, axis=0)  # offsets from the typical placement
    return found / max(th, tw)


@dataclass(frozen=True)
class Alignment:
    """The measured spread of placements and the memory arrangement it calls for."""

    p90_offset: float  # 90th percentile of |offset|, share of the longer side
    limit: float  # the largest spread the per-cell memory tolerates, share of that side
    cell: int  # chosen cell side in patches (0: one memory for the whole photo)

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "p90_offset_of_side": round(self.p90_offset, 4),
            "cell_limit_of_side": round(self.limit, 4),
            "memory": "per cell" if self.cell else "whole photo",
            "cell": self.cell,
        }


def choose(thumbs: list[np.ndarray], cell: int, reach: int, grid: HW) -> Alignment:
    """Per-cell memory when 90 % of photos sit within what a cell's memory reaches.

    A cell learns its own patches and `reach` patches around: a part that moves by up to
    `reach` + half a cell still meets its normal look in its cell's memory.
    """
    spread = float(np.percentile(np.abs(offsets(thumbs)).max(axis=1), 90))
    limit = (reach + cell / 2) / max(grid)  # patches are square: the longer side's share
    return Alignment(spread, limit, cell if spread <= limit else 0)
