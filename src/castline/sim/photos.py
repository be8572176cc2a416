"""Synthetic casting photographs: a grey impeller-like disc, optionally with one defect.

Used where no real photographs exist (a plant evaluating castline, CI without the data
folder) and by tests that need an image with a known defect region. The picture follows
the public casting set: top view, grey metal on a darker background, the part not quite
centred or aligned. Each defect type of the catalogue has its own look, and the function
returns the boolean mask of the pixels it changed, so a test knows where the defect is.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from castline.domain.defects import DEFAULT_CATALOGUE

DEFECT_CODES: tuple[str, ...] = tuple(t.code for t in DEFAULT_CATALOGUE)
Drawn = tuple[np.ndarray, np.ndarray]  # picture (grey, float) and defect mask

# Geometry as fractions of the image size.
_RIM = 0.40  # outer radius of the disc
_HUB = 0.11  # radius of the hub
_BORE = 0.045  # radius of the hole in the hub


class _Part:
    """Where the part lies in one picture: centre, radius and rotation."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.size = size
        shift = 0.03 * size
        self.cx = size / 2 + rng.uniform(-shift, shift)
        self.cy = size / 2 + rng.uniform(-shift, shift)
        self.rim = _RIM * size * rng.uniform(0.97, 1.03)
        self.hub = _HUB * size
        self.bore = _BORE * size
        self.turn = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        self.r = np.hypot(xx - self.cx, yy - self.cy)
        self.theta = np.arctan2(yy - self.cy, xx - self.cx)

    def point(self, radius: float, angle: float) -> tuple[float, float]:
        return (self.cx + radius * math.cos(angle), self.cy + radius * math.sin(angle))

    def metal(self) -> np.ndarray:
        return (self.r <= self.rim) & (self.r >= self.bore)


def render_casting(
    rng: np.random.Generator, defect: str | None = None, size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """One photograph (uint8 HxWx3 RGB) and its defect mask (bool HxW, empty when good)."""
    if defect is not None and defect not in _DRAW:
        raise ValueError(f"unknown defect type {defect!r}; known: {', '.join(DEFECT_CODES)}")
    if size < 64:
        raise ValueError(f"size {size} is too small for a casting photograph: use 64 or more")
    part = _Part(rng, size)
    grey = _good_part(rng, part)
    mask = np.zeros((size, size), dtype=bool)
    if defect is not None:
        grey, mask = _DRAW[defect](rng, part, grey)
    # Lighting: a gentle gradient across the picture, then sensor noise.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    gx, gy = rng.uniform(-18, 18, size=2)
    grey = grey * rng.uniform(0.9, 1.1) + gx * (xx - 0.5) + gy * (yy - 0.5)
    grey = grey + rng.normal(0, 3.0, size=grey.shape)
    image = np.clip(grey, 0, 255).astype(np.uint8)
    return np.repeat(image[:, :, None], 3, axis=2), mask


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB image, as a robot-cell camera would send them."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _good_part(rng: np.random.Generator, part: _Part) -> np.ndarray:
    size = part.size
    background = rng.uniform(35, 60)
    grey = np.full((size, size), background, dtype=np.float32)
    metal = part.metal()
    # Cast surface: mid grey with a fine grain, darker towards the rim (curved surface).
    grain = _smooth_noise(rng, size, blur=1.2) * 10
    shade = 150 + rng.uniform(-15, 15) - 25 * (part.r / part.rim) ** 2
    grey[metal] = (shade + grain)[metal]
    # Vanes: curved ribs from the hub to near the rim, a little brighter (they catch light).
    vanes = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(vanes)
    count = int(rng.integers(6, 9))
    width = max(2, round(size / 64))
    for k in range(count):
        start = part.turn + 2 * math.pi * k / count
        points = [
            part.point(part.hub + t * (part.rim * 0.88 - part.hub), start + 0.9 * t)
            for t in np.linspace(0, 1, 12)
        ]
        draw.line(points, fill=255, width=width)
    vane = np.asarray(vanes.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float32) / 255
    grey += 30 * vane * metal
    # Hub: a raised ring with a dark bore.
    hub = (part.r <= part.hub) & metal
    grey[hub] += 20
    grey[part.r < part.bore] = background * 0.6
    # Rim edge: a thin bright line where the edge catches the light.
    edge = np.abs(part.r - part.rim) < max(1.0, size / 200)
    grey[edge] += 35
    return grey


def _smooth_noise(rng: np.random.Generator, size: int, blur: float) -> np.ndarray:
    noise = rng.normal(0, 1, size=(size, size)).astype(np.float32)
    img = Image.fromarray(((noise + 4) * 32).clip(0, 255).astype(np.uint8))
    smooth = np.asarray(img.filter(ImageFilter.GaussianBlur(blur)), dtype=np.float32)
    return (smooth - smooth.mean()) / (smooth.std() + 1e-6)


def _on_part(rng: np.random.Generator, part: _Part, inner: float = 1.3) -> tuple[float, float]:
    """A random point on the metal between the hub and the rim."""
    radius = rng.uniform(part.hub * inner, part.rim * 0.85)
    return part.point(radius, rng.uniform(0, 2 * math.pi))


def _canvas(part: _Part) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("L", (part.size, part.size), 0)
    return img, ImageDraw.Draw(img)


def _apply(
    grey: np.ndarray, shape: Image.Image, delta: float, limit: np.ndarray | None = None
) -> Drawn:
    """Darken (delta < 0) or brighten the drawn shape; its pixels become the mask."""
    alpha = np.asarray(shape, dtype=np.float32) / 255
    if limit is not None:
        alpha = alpha * limit
    return grey + delta * alpha, alpha > 0.5


def _scale(part: _Part) -> float:
    return part.size / 256


def _gas_porosity(rng: np.random.Generator, part: _Part, grey: np.ndarray) -> Drawn:
    img, draw = _canvas(part)
    s = _scale(part)
    cx, cy = _on_part(rng, part)
    for _ in range(int(rng.integers(2, 7))):
        x, y = cx + rng.normal(0, 12 * s), cy + rng.normal(0, 12 * s)
        radius = rng.uniform(2.0, 4.5) * s
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return _apply(grey, img, -95, part.metal())


def _shrinkage_porosity(rng: np.random.Generator, part: _Part, grey: np.ndarray) -> Drawn:
    img, draw = _canvas(part)
    s = _scale(part)
    cx, cy = _on_part(rng, part)
    for _ in range(int(rng.integers(10, 22))):
        x, y = cx + rng.normal(0, 6 * s), cy + rng.normal(0, 6 * s)
        corners = [(x + rng.uniform(-3, 3) * s, y + rng.uniform(-3, 3) * s) for _ in range(4)]
        draw.polygon(corners, fill=255)
    return _apply(grey, img, -85, part.metal())


def _cold_shut(rng: np.random.Generator, part: _Part, grey: np.ndarray) -> Drawn:
    img, draw = _canvas(part)
    radius = rng.uniform(part.hub * 1.6, part.rim * 0.85)
    start = rng.uniform(0, 2 * math.pi)
    span = rng.uniform(0.5, 1.2)
    points = [
        part.point(radius + rng.normal(0, 0.6), start + t * span) for t in np.linspace(0, 1, 24)
    ]
    draw.line(points, fill=255, width=max(2, round(2 * _scale(part))))
    return _apply(grey, img, -60, part.metal())


def _misrun(rng: np.random.Generator, part: _Part, grey: np.ndarray) -> Drawn:
    # The metal never reached a segment of the rim: background shows where the part should be.
    start = rng.uniform(-math.pi, math.pi)
    span = rng.uniform(0.35, 0.8)
    depth = rng.uniform(0.12, 0.25) * part.rim
    ragged = depth * (0.7 + 0.3 * np.sin(part.theta * 23 + start))
    angle = np.mod(part.theta - start, 2 * math.pi)
    mask = (angle < span) & (part.r <= part.rim + 2) & (part.r > part.rim - ragged)
    out = grey.copy()
    out[mask] = float(np.median(grey[part.r > part.rim * 1.1]))
    return out, mask


def _flash(rng: np.random.Generator, part: _Part, grey: np.ndarray) -> Drawn:
    start = rng.uniform(-math.pi, math.pi)
    span = rng.uniform(0.3, 0.9)
    width = rng.uniform(3, 7) * _scale(part)
    angle = np.mod(part.theta - start, 2 * math.pi)
    mask = (angle < span) & (part.r > part.rim + 1) & (part.r < part.rim + width)
    out = grey.copy()
    out[mask] = 200 + rng.uniform(0, 30)
    return out, mask


def _crack(rng: np.random.Generator, part: _Part, grey: np.ndarray) -> Drawn:
    img, draw = _canvas(part)
    angle = rng.uniform(0, 2 * math.pi)
    radius = part.rim * 0.98
    length = rng.uniform(0.25, 0.5) * part.rim
    points = [part.point(radius, angle)]
    for t in np.linspace(0, 1, 14)[1:]:
        angle += rng.normal(0, 0.06)
        points.append(part.point(radius - t * length, angle))
    draw.line(points, fill=255, width=max(1, round(1.5 * _scale(part))))
    return _apply(grey, img, -80, part.metal())


def _die_mark(rng: np.random.Generator, part: _Part, grey: np.ndarray) -> Drawn:
    # The same damaged spot of the die repeats along a feature: a row of small marks.
    img, draw = _canvas(part)
    s = _scale(part)
    radius = rng.uniform(part.hub * 1.5, part.rim * 0.8)
    start = rng.uniform(0, 2 * math.pi)
    for k in range(int(rng.integers(3, 7))):
        x, y = part.point(radius, start + k * 0.12)
        half = rng.uniform(2, 3.5) * s
        draw.rectangle((x - half, y - half, x + half, y + half), fill=255)
    return _apply(grey, img, float(rng.choice([-55, 55])), part.metal())


def _blob(delta: float, spread: float) -> Callable[[np.random.Generator, _Part, np.ndarray], Drawn]:
    """Soldering, blister and inclusion: an irregular blob, brighter or darker."""

    def draw_blob(rng: np.random.Generator, part: _Part, grey: np.ndarray) -> Drawn:
        img, draw = _canvas(part)
        s = _scale(part)
        cx, cy = _on_part(rng, part)
        for _ in range(int(rng.integers(3, 7))):
            x, y = cx + rng.normal(0, spread * s), cy + rng.normal(0, spread * s)
            r = rng.uniform(3, 7) * s
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        return _apply(grey, img.filter(ImageFilter.GaussianBlur(0.7)), delta, part.metal())

    return draw_blob


_DRAW: dict[str, Callable[[np.random.Generator, _Part, np.ndarray], Drawn]] = {
    "gas_porosity": _gas_porosity,
    "shrinkage_porosity": _shrinkage_porosity,
    "cold_shut": _cold_shut,
    "misrun": _misrun,
    "flash": _flash,
    "crack": _crack,
    "die_mark": _die_mark,
    "soldering": _blob(+60, 4),
    "blister": _blob(+45, 2),
    "inclusion": _blob(-70, 3),
}
