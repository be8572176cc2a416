"""Heat-map overlays for people: the photo, the anomaly map in colour, defect boxes."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

from castline.domain.verdict import Region


def overlay_image(
    image: np.ndarray,
    heatmap: np.ndarray,
    regions: list[Region],
    *,
    scale: float | None = None,
    alpha: float = 0.7,
) -> Image.Image:
    """`scale`: heat value shown at full colour (default: the map's maximum)."""
    photo = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != (photo.height, photo.width):
        heat = np.asarray(Image.fromarray(heat).resize(photo.size, Image.Resampling.BILINEAR))
    top = scale if scale and scale > 0 else float(heat.max()) or 1.0
    level = np.clip(heat / top, 0.0, 1.0)
    colours = colormaps["inferno"](level)[:, :, :3]
    # Cool areas stay clear so the casting remains readable; hot areas take the colour.
    weight = (alpha * level**2)[:, :, None]
    blended = (1 - weight) * np.asarray(photo, dtype=np.float32) + weight * 255.0 * colours
    out = Image.fromarray(blended.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for region in regions:
        box = (region.x, region.y, region.x + region.w - 1, region.y + region.h - 1)
        draw.rectangle(box, outline=(0, 255, 0), width=2)
    return out


def overlay_png(
    image: np.ndarray, heatmap: np.ndarray, regions: list[Region], *, scale: float | None = None
) -> bytes:
    """PNG bytes of the overlay, for the web UI and reports."""
    buffer = io.BytesIO()
    overlay_image(image, heatmap, regions, scale=scale).save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnail_jpeg(png: bytes, side: int, max_bytes: int) -> bytes:
    """A small JPEG of an overlay (PNG), its longest side `side` at most; smaller quality
    until it fits `max_bytes`."""
    with Image.open(io.BytesIO(png)) as picture:
        small = picture.convert("RGB")
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    for quality in (80, 60, 40, 20):
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=quality)
        if buffer.tell() <= max_bytes:
            break
    return buffer.getvalue()
