"""The review loop: what people confirm becomes the active model within a minute.

Every `poll_s`, for each die and view with an active model, the store is asked for
reviews newer than the last one any version of that die and view learnt from. A photo
castline held (its view judged NG or REVIEW) that a person confirmed OK is a false
reject: once `min_new` of them wait, and the die and view was not updated in the last
`every_s`, `vision.update.update_model` adds them to the active model's memory and the
new version is registered and activated. The line picks it up as it picks up any
activation (`line/inspection.py` asks the registry every few seconds).

A part a person confirmed NG (naming the defect) teaches the supervised head: its photo
of this view, where castline held this view or the part has no other photo (a part with
several views says nothing of which one shows the defect). A model with a head is
updated for one confirmed defect; a model trained on good photos only once
`head.MIN_DEFECTS` are kept (those confirmed wait in the store, or in the head data of a
version made for good photos meanwhile). The head is refitted with the kept training
descriptors, its thresholds cross-fitted (`vision/update.py`, `vision/head.py`).

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from castline.domain.verdict import Verdict
from castline.store import tables as t
from castline.store.blobs import BlobStore
from castline.store.reads import reviewed_photos, rows
from castline.vision.head import MIN_DEFECTS, HeadData, HeadError
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
    defects: int  # confirmed defects learnt (or listed, where the head cannot learn)
    path: Path
    head: bool = False  # the supervised head was refitted (or created)


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

    def learn_now(self, die: str, view: str) -> Learnt | None:
        """One update of the die and view's active model from the reviews waiting, now
        (`castline vision update --reviews`); None where none wait."""
        active = self.registry.active(die, view)
        if active is None:
            raise RegistryError(f"{die}/{view} has no active model")
        return self._learn(active)

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
        good, defects = self._confirmed(die, view, after)
        path = Path(str(active["path"]))
        data = _head_data(path)
        if data is None:
            defects = []  # nothing to refit from: listed with good photos only (update.py)
        headed = (active["manifest"] or {}).get("score") == "head"
        enough_defects = bool(defects) and (
            headed or (data is not None and len(data.bad) + len(defects) >= MIN_DEFECTS)
        )
        if len(good) < self.config.min_new and not enough_defects:
            return None
        last = max(int(r["id"]) for r in [*good, *defects])
        photos = self._photos(good)
        confirmed = self._photos(defects)
        version, out = reviewed_version(self.models_dir, die, view, active, f".r{last}")
        if (out / MANIFEST_FILE).is_file():  # made before, but the store was away to register it
            model = InspectionModel.load(out)
        else:
            model = update_model(
                path,
                out,
                photos,
                confirmed,
                version=version,
                last_review=last,
                config=self.config.update,
            )
        self.registry.register(die, view, out.resolve(), model.manifest, activate=True)
        head = "head" in model.manifest.get("learnt_from_reviews", {}) and bool(confirmed)
        return Learnt(
            die, view, version, str(active["version"]), len(photos), len(confirmed), out, head
        )

    def _confirmed(
        self, die: str, view: str, after: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The false rejects and confirmed defects after review `after`, oldest first, at
        most `max_photos` of each; where one kind was cut, the other stops at the same
        review, so the next update starts where this one ends and none is skipped."""
        most = self.config.max_photos
        good = rows(self.engine, reviewed_photos(die, view, Verdict.OK, after, most))
        bad = rows(self.engine, reviewed_photos(die, view, Verdict.NG, after, most))
        full = [int(found[-1]["id"]) for found in (good, bad) if len(found) >= most]
        if full:
            cut = min(full)
            good = [r for r in good if int(r["id"]) <= cut]
            bad = [r for r in bad if int(r["id"]) <= cut]
        return good, [r for r in bad if self._on_this_view(r)]

    def _on_this_view(self, review: dict[str, Any]) -> bool:
        """A part confirmed NG shows its defect on this view if castline held this view,
        or if this is the part's only photo. A part with several views that castline
        passed (or held for another view) does not say which view shows the defect: its
        photo here may be a good one, and it is not learnt as a defect."""
        if review["decided"] in (Verdict.NG.value, Verdict.REVIEW.value):
            return True
        same = [
            t.images.c[name] == review[name]
            for name in ("plant", "machine", "shot_number", "cavity")
        ]
        with self.engine.connect() as conn:
            views = conn.execute(select(func.count()).select_from(t.images).where(*same)).scalar()
        return views == 1

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


def _head_data(path: Path) -> HeadData | None:
    """What the active model's head is refitted from; None where it has nothing."""
    try:
        return HeadData.load(path) if path.is_dir() else None
    except HeadError as exc:
        log.warning("review loop: %s", exc)
        return None


def reviewed_version(
    models_dir: Path, die: str, view: str, active: Mapping[str, Any], tail: str
) -> tuple[str, Path]:
    """A version learnt from reviews of the active one, named after the version trained
    from photos (its root) and `tail`, and its folder (made). The loop's tail is its last
    review, the same on every process that would make it: the registry keeps only one."""
    root = str((active["manifest"] or {}).get("learnt_from_reviews", {}).get("root") or "")
    version = (root or str(active["version"]))[: 80 - len(tail)] + tail
    out = models_dir / "reviewed" / die / view / re.sub(r"[^A-Za-z0-9._-]", "_", version)
    out.parent.mkdir(parents=True, exist_ok=True)
    return version, out
