"""The real data folder (`../shared/data` or CASTLINE_DATA) and its splits.

Casting photographs are split by a hash of their content, never by file name (names
repeat across the public set's folders): training sees only the "train" split; the
simulator and demo show only "holdout" images, so the line is never judged on photos
the model learnt from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

Split = Literal["train", "val", "holdout"]
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp")

# Percent of images in each split, by content hash: [0, 60) train, [60, 80) val, rest holdout.
_TRAIN_BELOW = 60
_VAL_BELOW = 80


def split_of(data: bytes) -> Split:
    bucket = int.from_bytes(hashlib.sha256(data).digest()[:4], "big") % 100
    if bucket < _TRAIN_BELOW:
        return "train"
    return "val" if bucket < _VAL_BELOW else "holdout"


def images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name for a stable order."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def images_in_split(folder: Path, split: Split) -> Iterator[Path]:
    for path in images(folder):
        if split_of(path.read_bytes()) == split:
            yield path


def casting_root(data: Path) -> Path | None:
    """The casting photographs under a data folder, or None where there are none."""
    root = Path(data) / "casting" / "train"
    return root if (root / "ok_front").is_dir() and (root / "def_front").is_dir() else None


def kamp_process_root(data: Path) -> Path | None:
    root = Path(data) / "kamp" / "process"
    return root if root.is_dir() else None
