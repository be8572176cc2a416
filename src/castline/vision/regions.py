"""Defect regions: connected areas of the heat map at or above the region threshold."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from castline.domain.verdict import Region


def find_regions(
    heatmap: np.ndarray, threshold: float, max_regions: int = 10, min_area_px: float = 0.0
) -> list[Region]:
    """Boxes (image pixels) around connected hot areas, hottest first. An area under
    `min_area_px` is finer than the map resolves (the upsampling's ripple at the
    threshold): left out, unless it is the hottest."""
    mask = heatmap >= threshold
    if not mask.any():
        return []
    labels, _ = ndimage.label(mask)
    boxes = ndimage.find_objects(labels)
    regions = []
    for index, box in enumerate(boxes, start=1):
        if box is None:
            continue
        ys, xs = box
        inside = labels[box] == index
        regions.append(
            Region(
                x=int(xs.start),
                y=int(ys.start),
                w=int(xs.stop - xs.start),
                h=int(ys.stop - ys.start),
                area_px=int(inside.sum()),
                score=float(heatmap[box][inside].max()),
            )
        )
    regions.sort(key=lambda r: r.score, reverse=True)
    kept = regions[:1] + [r for r in regions[1:] if r.area_px >= min_area_px]
    return kept[:max_regions]
