"""Inspect a casting image with the active model for its die and view, within a deadline.

Any doubt ends in QUARANTINE: no die known, no active model, a model that fails to load
or raises, an image that does not decode, or a deadline that passed. Never "nothing found".
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from castline.domain.verdict import Region, Verdict
from castline.vision.model import InspectionModel
from castline.vision.overlay import overlay_png
from castline.vision.registry import ModelRegistry

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    verdict: Verdict
    reason: str
    score: float | None = None
    model_version: str | None = None
    regions: tuple[Region, ...] = ()
    # The heat-map overlay is for people, not for the robot cell: drawn after the verdict.
    draw_overlay: Callable[[], bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)


def quarantine(reason: str, **kwargs: Any) -> Outcome:
    return Outcome(Verdict.QUARANTINE, reason, **kwargs)


class ActiveModels:
    """The active model of each die and view, reloaded when the registry changes."""

    def __init__(self, engine: Engine, refresh_s: float = 5.0) -> None:
        self.registry = ModelRegistry(engine)
        self.refresh_s = refresh_s
        self._checked: dict[tuple[str, str], float] = {}
        self._path: dict[tuple[str, str], str | None] = {}  # active model file per die/view
        self._loaded: dict[str, InspectionModel] = {}  # by path: dies may share a model

    def preload(self) -> int:
        """Load every active model now, so no part waits for a model to load."""
        for row in self.registry.all():
            if row["active"]:
                self.get(row["die"], row["view"])
        return len(self._loaded)

    def get(self, die: str, view: str) -> InspectionModel | None:
        key = (die, view)
        now = time.monotonic()
        if now - self._checked.get(key, -1e9) >= self.refresh_s:
            try:
                row = self.registry.active(die, view)
            except SQLAlchemyError:
                if key not in self._path:
                    raise
                log.warning("registry unreachable: die %s view %s keeps its model", die, view)
            else:
                self._path[key] = row["path"] if row else None
            self._checked[key] = now
        path = self._path.get(key)
        if path is None:
            return None
        if path not in self._loaded:
            # One intra-op thread: several images are inspected at once, one core each.
            model = InspectionModel.load(path, threads=1)
            model.inspect(np.full((64, 64, 3), 128, np.uint8))  # first run allocates: not on a part
            self._loaded[path] = model
        return self._loaded[path]


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def _inspect_now(model: InspectionModel, data: bytes) -> Outcome:
    t0 = time.perf_counter()
    image = _decode(data)
    t1 = time.perf_counter()
    result = model.inspect(image)
    t2 = time.perf_counter()
    timings = {"decode_ms": (t1 - t0) * 1e3, "inspect_ms": (t2 - t1) * 1e3}
    reason = f"score {result.score:.3f}"
    # Colours on a fixed scale above the region threshold (anomaly units, like the map):
    # an OK part looks calm, a defect glows.
    scale = 1.5 * model.region_threshold
    draw = partial(overlay_png, image, result.heatmap, result.regions, scale=scale)
    regions = tuple(result.regions)
    return Outcome(result.verdict, reason, result.score, model.version, regions, draw, timings)


async def inspect(
    models: ActiveModels,
    die: str | None,
    view: str,
    data: bytes,
    remaining_s: float,
    executor: Executor | None = None,
) -> Outcome:
    """Decide one image; QUARANTINE with the reason whenever a trustworthy verdict is missing."""
    if remaining_s <= 0:
        return quarantine(f"deadline passed {-remaining_s:.1f} s before inspection started")
    if die is None:
        return quarantine("die unknown: no shot or state message named the mounted die yet")
    try:
        model = models.get(die, view)
    except Exception as exc:
        log.exception("model for die %s view %s failed to load", die, view)
        return quarantine(f"model for die {die}, view {view} failed to load: {exc}")
    if model is None:
        return quarantine(f"no active model for die {die}, view {view}")
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(
            loop.run_in_executor(executor, _inspect_now, model, data), remaining_s
        )
    except TimeoutError:
        return quarantine(
            f"deadline passed: inspection took over {remaining_s:.2f} s",
            model_version=model.version,
        )
    except Exception as exc:
        log.warning("inspection failed for die %s view %s: %s", die, view, exc)
        return quarantine(f"inspection failed: {exc}", model_version=model.version)
