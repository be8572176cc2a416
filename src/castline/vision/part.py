"""Where the part lies in the photo, learnt from the good photos: the places that count.

A defect is on the casting; the table, belt or fixture around it may be scratched, dusty
or unevenly lit and is not inspected. Where the part sits in the same place in every
photo (the per-cell memory), training finds it from the good photos' letterboxed grey
thumbnails (`align.thumbnail`): the background is what the photo's frame shows, so a
place belongs to the part where its median grey differs from the frame's, or where it
varies between photos more than the frame does (the part's edge moves with placement,
its surface with the light). Holes in that region are filled (a bore is part of the
part's outline), and the region is widened by `margin` so the part's own border, flash
and placement spread stay inside.

No part is found, and every place counts, where nothing in the photos stands out from
the frame (a surface that fills the photo: its edge is the part's edge) or where the
region would cover nearly all or almost none of the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from castline.vision.align import THUMB
from castline.vision.patches import GRID_STRIDE, HW

FRAME = 2  # px of the thumbnail's outer ring that show the background
MIN_CONTRAST = 8.0  # grey levels: less than this apart from the frame is background
NOISE_FACTOR = 3.0  # ... or less than this many times the frame's own variation
SHARE_RANGE = (0.05, 0.95)  # a part region outside this share of the photo is no finding


@dataclass(frozen=True)
class PartRegion:
    """Per patch of the grid, 1 where the part (widened by the margin) lies, else 0."""

    weights: np.ndarray | None  # [gh, gw] float32; None: no part found, all places count
    share: float  # of the photo's patches that count
    threshold: float  # grey levels of difference from the frame that mark the part
    margin: float  # widening, share of the side

    def as_dict(self) -> dict[str, float | bool | str]:
        return {
            "found": self.weights is not None,
            "share_of_photo": round(self.share, 4),
            "threshold_grey": round(self.threshold, 2),
            "margin_of_side": self.margin,
            "how": "median and spread of the good photos against the photo's frame",
        }


def difference_from_frame(thumbs: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Per thumbnail pixel, how far the photos there differ from the background, and the
    level the frame itself reaches (its 90th percentile)."""
    stack = np.stack(thumbs).astype(np.float32)
    median, spread = np.median(stack, axis=0), stack.std(axis=0)
    ring = np.zeros(median.shape, dtype=bool)
    ring[:FRAME], ring[-FRAME:], ring[:, :FRAME], ring[:, -FRAME:] = True, True, True, True
    difference = np.abs(median - np.median(median[ring])) + np.maximum(
        spread - np.median(spread[ring]), 0.0
    )
    return difference, float(np.percentile(difference[ring], 90))


def find_part(thumbs: list[np.ndarray], grid: HW, size: HW, margin: float) -> PartRegion:
    """The part's region on the patch grid of a model input of `size` (see the module
    text); the thumbnails are letterboxed like that input (align.thumbnail)."""
    difference, frame_level = difference_from_frame(thumbs)
    threshold = max(NOISE_FACTOR * frame_level, MIN_CONTRAST)
    part = ndimage.binary_fill_holes(difference > threshold)
    share = float(part.mean())
    if not SHARE_RANGE[0] <= share <= SHARE_RANGE[1]:
        return PartRegion(None, 1.0, threshold, margin)
    reach = round(margin * THUMB)
    if reach:
        disk = np.hypot(*np.mgrid[-reach : reach + 1, -reach : reach + 1]) <= reach
        part = ndimage.binary_dilation(part, structure=disk)
    weights = _on_grid(part, grid, size)
    return PartRegion(weights, float(weights.mean()), threshold, margin)


def _on_grid(part: np.ndarray, grid: HW, size: HW) -> np.ndarray:
    """A patch counts where any thumbnail pixel under its 8 x 8 input pixels is part."""
    stride, scale = GRID_STRIDE, THUMB / max(size)
    weights = np.zeros(grid, dtype=np.float32)
    for i in range(grid[0]):
        top, bottom = int(i * stride * scale), int(np.ceil((i + 1) * stride * scale))
        for j in range(grid[1]):
            left, right = int(j * stride * scale), int(np.ceil((j + 1) * stride * scale))
            under = part[top : max(bottom, top + 1), left : max(right, left + 1)]
            weights[i, j] = float(under.any())
    return weights
