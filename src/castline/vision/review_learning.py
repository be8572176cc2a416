"""The review loop: what people confirm becomes the active model within a minute.

Every `poll_s`, for each die and view with an active model, the store is asked for
reviews newer than the last one any version of that die and view learnt from. A photo
castline held (its view judged NG or REVIEW) that a person confirmed OK is a false
reject: once `min_new` of them wait, and the die and view was not updated in the last
`every_s`, `vision.update.update_model` adds them to the active model's memory and the
new version is registered and activated. The line picks it up as it picks up any
activation (`line/inspection.py` asks the registry every few seconds). Confirmed defects
of the same span are listed in the new version's manifest.

A rollback is a person's word: the reviews the rolled-back version learnt are not learnt
again; newer reviews go on top of whatever version is active. Two processes running the
loop on one store cannot both add a version: the version is named after its root and
its last review, and the registry refuses a second one of the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from castline.domain.verdict import Verdict
from castline.store import tables as t
from castline.store.blobs import BlobStore
from castline.store.reads import reviewed_photos, rows
from castline.vision.images import decode_image
from castline.vision.model import MANIFEST_FILE, InspectionModel, ModelError
from castline.vision.registry import ModelRegistry, RegistryError
from castline.vision.update import ReviewedPhoto, UpdateConfig, UpdateError, update_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnerConfig:
    every_s: float = 60.0  # at most one update per die and view this often
    min_new: int = 1  # confirmed false rejects before an update
    poll_s: float = 5.0  # how often the store is asked
    max_photos: int = 64  # reviews one update takes (the rest wait for the next)
    update: UpdateConfig = field(default_factory=UpdateConfig)


@dataclass(frozen=True)
class Learnt:
    """A version the review loop made and activated."""

    die: str
    view: str
    version: str
    parent: str
    good: int  # photos added to the memory
    defects: int  # confirmed defects listed
    path: Path


class ReviewLearner:
    """One pass (`step`) or a loop (`run`) over the active models."""

    def __init__(
        self, engine: Engine, blobs: BlobStore, models_dir: Path, config: LearnerConfig
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.models_dir = models_dir
        self.config = config
        self.registry = ModelRegistry(engine)
        self._tried: dict[tuple[str, str], float] = {}  # last update (or failure) per die/view
        self._seen: int | None = -1  # the newest review at the last pass
        self._waiting = False  # a die and view was passed over for `every_s` last time

    def step(self) -> list[Learnt]:
        """Update every active model with enough new confirmations; returns what was made.
        Without a new review since the last pass (and none passed over), one small query."""
        newest = self._newest_review()
        if newest == self._seen and not self._waiting:
            return []
        self._seen, self._waiting = newest, False
        made = []
        for row in self.registry.all():
            key = (str(row["die"]), str(row["view"]))
            if not row["active"]:
                continue
            if time.monotonic() - self._tried.get(key, -1e18) < self.config.every_s:
                self._waiting = True
                continue
            try:
                learnt = self._learn(row)
            except (UpdateError, ModelError, RegistryError, OSError, ValueError) as exc:
                log.warning("review loop: %s/%s not updated: %s", *key, exc)
                self._tried[key] = time.monotonic()  # not again before every_s
                continue
            if learnt is not None:
                self._tried[key] = time.monotonic()
                made.append(learnt)
        return made

    async def run(self, stop: asyncio.Event, told: Callable[[Learnt], None] | None = None) -> None:
        """Until `stop`: a pass every `poll_s`, off the event loop; `told` hears each new
        version."""
        while not stop.is_set():
            try:
                for learnt in await asyncio.to_thread(self.step):
                    log.info(
                        "review loop: %s/%s now runs %s", learnt.die, learnt.view, learnt.version
                    )
                    if told is not None:
                        told(learnt)
            except SQLAlchemyError as exc:
                log.warning(
                    "review loop: store unreachable (%s); trying again", exc.__class__.__name__
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.poll_s)

    def _newest_review(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(t.reviews.c.id))).scalar()

    def learnt_until(self, die: str, view: str) -> int:
        """The newest review any version of the die and view learnt from (0: none)."""
        done = [
            (v["manifest"] or {}).get("learnt_from_reviews", {}).get("last_review")
            for v in self.registry.versions(die, view)
        ]
        return max((int(d) for d in done if d is not None), default=0)

    def _learn(self, active: dict[str, Any]) -> Learnt | None:
        die, view = str(active["die"]), str(active["view"])
        after = self.learnt_until(die, view)
        most = self.config.max_photos
        good = rows(self.engine, reviewed_photos(die, view, Verdict.OK, after, most))
        if len(good) < self.config.min_new:
            return None
        last = int(good[-1]["id"])
        defects = rows(self.engine, reviewed_photos(die, view, Verdict.NG, after, most))
        photos = self._photos(good)
        confirmed = self._photos([r for r in defects if int(r["id"]) <= last])
        root = (active["manifest"] or {}).get("learnt_from_reviews", {}).get("root")
        version = _version(str(root or active["version"]), last)
        out = self.models_dir / "reviewed" / die / view / _safe(version)
        out.parent.mkdir(parents=True, exist_ok=True)
        if (out / MANIFEST_FILE).is_file():  # made before, but the store was away to register it
            model = InspectionModel.load(out)
        else:
            update = self.config.update
            model = update_model(
                active["path"],
                out,
                photos,
                confirmed,
                version=version,
                last_review=last,
                config=update,
            )
        self.registry.register(die, view, out.resolve(), model.manifest, activate=True)
        return Learnt(die, view, version, str(active["version"]), len(photos), len(confirmed), out)

    def _photos(self, found: list[dict[str, Any]]) -> list[ReviewedPhoto]:
        """The reviewed photos whose image is still in the blob store."""
        photos = []
        for r in found:
            try:
                image = decode_image(self.blobs.get(str(r["blob"])))
            except (OSError, ValueError) as exc:
                log.warning("review loop: photo of review %s unusable: %s", r["id"], exc)
                continue
            part = f"{r['plant']}/{r['machine']}/{r['shot_number']}/{r['cavity']}"
            photos.append(
                ReviewedPhoto(
                    image, str(r["blob"]), part, int(r["id"]), str(r["reviewer"]), r["defect_type"]
                )
            )
        return photos


def _version(root: str, last_review: int) -> str:
    """The same on every process that would make it: the registry keeps only one."""
    tail = f".r{last_review}"
    return root[: 80 - len(tail)] + tail


def _safe(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", version)
