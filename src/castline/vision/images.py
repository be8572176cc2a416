"""Photos in and out: decode bytes or files to uint8 RGB arrays (Pillow)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


def decode_image(data: bytes) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 [H, W, 3] RGB."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not a readable image ({len(data)} bytes): {exc}") from exc


def read_image(path: Path) -> np.ndarray:
    return decode_image(Path(path).read_bytes())


def photo_size(path: Path) -> tuple[int, int]:
    """(height, width) of a photo file, from its header alone."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{Path(path).name}: not a readable image: {exc}") from exc
    return height, width


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Accept grey [H, W], RGB and RGBA arrays; return contiguous uint8 [H, W, 3]."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0-255), got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image must be HxW, HxWx3 or HxWx4, got shape {image.shape}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]} px is too small to inspect")
    return np.ascontiguousarray(image[:, :, :3])
