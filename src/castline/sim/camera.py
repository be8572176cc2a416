"""The robot cell's camera: a photograph for every simulated casting.

With the real data folder it shows real photographs of cast impellers, a good one for a
good part and a defective one for a defective part, taken only from the holdout split
(the vision model trains on the others). Without it, it renders synthetic photographs of
the defect type the rules chose; a small pool per type keeps rendering cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from castline.datasets import casting_root, images_in_split
from castline.sim.photos import DEFECT_CODES, encode_jpeg, render_casting
from castline.sim.rules import Truth

POOL = 8  # synthetic photographs kept per defect type


class Camera:
    def __init__(self, data: Path | None, size: int = 256) -> None:
        self.size = size
        self.good: list[bytes] = []
        self.defective: list[bytes] = []
        root = casting_root(data) if data is not None else None
        if root is not None:
            self.good = [p.read_bytes() for p in images_in_split(root / "ok_front", "holdout")]
            self.defective = [
                p.read_bytes() for p in images_in_split(root / "def_front", "holdout")
            ]
        self._rendered: dict[str | None, list[bytes]] = {}

    @property
    def real(self) -> bool:
        return bool(self.good and self.defective)

    def photo(self, truth: Truth, rng: np.random.Generator) -> bytes:
        """JPEG bytes of the casting whose ground truth is `truth`."""
        if self.real:
            pool = self.defective if truth.defective else self.good
            return pool[int(rng.integers(len(pool)))]
        code = truth.defect_type if truth.defective else None
        if truth.defective and code not in DEFECT_CODES:
            code = DEFECT_CODES[int(rng.integers(len(DEFECT_CODES)))]
        rendered = self._rendered.setdefault(code, [])
        if len(rendered) < POOL:
            image, _ = render_casting(rng, code, self.size)
            rendered.append(encode_jpeg(image))
            return rendered[-1]
        return rendered[int(rng.integers(POOL))]
