"""How well the good photos line up: decides between per-place and whole-photo memory.

A memory per cell of the patch grid is sharper where the part sits in the same place in
every photo (a fixture, a robot's nest); where parts move by more than about half a cell
between photos, a patch must be compared with the whole photo's normal patches instead.
Training measures each photo's offset from the mean photo (phase correlation of small
grey thumbnails, letterboxed like the model input) and chooses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

THUMB = 64  # px: offsets of a few percent of the side are resolved, in microseconds


def thumbnail(image: np.ndarray) -> np.ndarray:
    """Grey float [THUMB, THUMB], letterboxed (edge padding) like the model input."""
    h, w = image.shape[:2]
    scale = THUMB / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    grey = Image.fromarray(image).convert("L").resize((nw, nh), Image.Resampling.BILINEAR)
    small = np.asarray(grey, dtype=np.float32)
    top, left = (THUMB - nh) // 2, (THUMB - nw) // 2
    return np.pad(small, ((top, THUMB - nh - top), (left, THUMB - nw - left)), mode="edge")


def _offset(spectrum: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    cross = spectrum * np.conj(reference)
    peak = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-9)).real
    dy, dx = np.unravel_index(int(np.argmax(peak)), peak.shape)
    wrap = THUMB // 2
    return (int(dy) - THUMB if dy > wrap else int(dy)), (int(dx) - THUMB if dx > wrap else int(dx))


def offsets(thumbs: list[np.ndarray]) -> np.ndarray:
    """Each photo's (dy, dx) offset from the mean photo, as a share of the side: [n, 2]."""
    window = np.outer(np.hanning(THUMB), np.hanning(THUMB)).astype(np.float32)
    spectra = [np.fft.fft2((t - t.mean()) * window) for t in thumbs]
    reference = np.mean(spectra, axis=0)
    found = np.asarray([_offset(s, reference) for s in spectra], dtype=np.float64)
    found -= np.median(found, axis=0)  # offsets from the typical placement
    return found / THUMB


@dataclass(frozen=True)
class Alignment:
    """The measured spread of placements and the memory arrangement it calls for."""

    p90_offset: float  # 90th percentile of |offset|, share of the side
    limit: float  # the largest spread the per-cell memory tolerates, share of the side
    cell: int  # chosen cell side in patches (0: one memory for the whole photo)

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "p90_offset_of_side": round(self.p90_offset, 4),
            "cell_limit_of_side": round(self.limit, 4),
            "memory": "per cell" if self.cell else "whole photo",
            "cell": self.cell,
        }


def choose(thumbs: list[np.ndarray], cell: int, reach: int, grid: int) -> Alignment:
    """Per-cell memory when 90 % of photos sit within what a cell's memory reaches.

    A cell learns its own patches and `reach` patches around: a part that moves by up to
    `reach` + half a cell still meets its normal look in its cell's memory.
    """
    spread = float(np.percentile(np.abs(offsets(thumbs)).max(axis=1), 90))
    limit = (reach + cell / 2) / grid
    return Alignment(spread, limit, cell if spread <= limit else 0)
