"""Output: a decided verdict made durable, told to the robot cell, recorded, shown.

Durable first, then the cell: a verdict is journaled in JetStream (the first verdict of a
part stands, whoever decided it) before the cell hears it. The record in the database
follows in one transaction with the photo and heat map; if the database is away the
message comes back later and the journal says what the cell was told.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from nats.aio.client import Client as NATS

from castline.domain.shot import PartKey
from castline.domain.verdict import PartVerdict, Verdict
from castline.line.alarms import LineAlarms
from castline.line.metrics import LineMetrics
from castline.messaging import events, thumbnails, topics
from castline.messaging.journal import VerdictJournal
from castline.messaging.schema import Region, VerdictMessage
from castline.messaging.topics import Kind
from castline.store.blobs import BlobStore
from castline.store.repository import PhotoRecord, Store
from castline.vision.overlay import thumbnail_jpeg

log = logging.getLogger(__name__)
T = TypeVar("T")
LATENCY_WINDOW = 100_000  # recent verdict latencies kept for the summary percentiles

Db = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Photo:
    view: str
    at: datetime
    data: bytes
    content_type: str
    verdict: PartVerdict | None = None  # this view's own verdict, where it was inspected


def verdict_message(key: PartKey, told: PartVerdict) -> VerdictMessage:
    return VerdictMessage(
        plant=key.plant,
        machine=key.machine,
        shot_number=key.shot_number,
        cavity=key.cavity,
        data_matrix=key.data_matrix,
        verdict=told.verdict,
        decided_at=told.decided_at,
        score=told.score,
        reason=told.reason,
        model_version=told.model_version,
        latency_ms=told.latency_ms,
        regions=[Region(**asdict(r)) for r in told.regions],
    )


class Output:
    def __init__(
        self,
        nc: NATS,
        journal: VerdictJournal,
        store: Store,
        blobs: BlobStore,
        db: Db,
        metrics: LineMetrics,
    ) -> None:
        self.nc = nc
        self.journal = journal
        self.store = store
        self.blobs = blobs
        self.db = db  # runs a blocking call off the event loop
        self.metrics = metrics
        self.verdict_counts: Counter[str] = Counter()
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.alarms: LineAlarms | None = None  # watches the share of held parts
        self.thumbnails = True  # a heat-map thumbnail of each view not judged OK is published

    async def tell(
        self, key: PartKey, verdict: PartVerdict, arrived: datetime | None
    ) -> tuple[PartVerdict, bool]:
        """Journal `verdict` as the part's, then tell the cell. If the part had a verdict
        already, that one stands and the cell hears it again. Returns the part's verdict
        and whether it is `verdict`."""
        told, ours = await self.journal.first(key, verdict)
        await self._publish(key, told)
        if ours:
            self._count(told, arrived)
            if self.alarms is not None:
                self.alarms.verdict(key, told)
        return told, ours

    async def retell(self, key: PartKey, told: PartVerdict) -> None:
        """A photo sent again or redelivered: the cell hears again what it was told (it
        may have missed it; a cell keeps the first verdict of a part)."""
        await self._publish(key, told)

    async def told(self, key: PartKey, look_in_record: bool) -> PartVerdict | None:
        """The verdict a part was told: the journal keeps it for days, the record for good
        (asked only for a redelivered photo, whose journal entry may have expired)."""
        journaled = await self.journal.get(key)
        if journaled is not None or not look_in_record:
            return journaled
        recorded: PartVerdict | None = await self.db(self.store.part_verdict, key)
        return recorded

    async def record(
        self,
        key: PartKey,
        told: PartVerdict,
        photo: Photo | None = None,
        draw_overlay: Callable[[], bytes] | None = None,
    ) -> None:
        """Keep the photo and heat map, show the part, then record it in one transaction."""
        stored = await self._keep(key, photo, draw_overlay) if photo else None
        shown = {"image": stored.blob, "heatmap": stored.heatmap} if stored else {}
        self.event(key.plant, key.machine, Kind.VERDICT, self._shown(key, told, shown))
        await self.db(self.store.record_part, key, told, stored)

    async def record_view(
        self, key: PartKey, photo: Photo, draw_overlay: Callable[[], bytes] | None
    ) -> None:
        """One view of a part whose other views are still to come: kept with its own
        verdict and heat map; the part's verdict is recorded when its last view is in."""
        stored = await self._keep(key, photo, draw_overlay)
        await self.db(self.store.record_view, key, stored)

    async def _keep(
        self, key: PartKey, photo: Photo, draw_overlay: Callable[[], bytes] | None
    ) -> PhotoRecord:
        blob = await self.db(self.blobs.put, photo.data)
        overlay = await self.db(draw_overlay) if draw_overlay else None
        heatmap = await self.db(self.blobs.put, overlay) if overlay else None
        own = photo.verdict
        if overlay and own and own.verdict is not Verdict.OK and self.thumbnails:
            await self._send_thumbnail(key, photo.view, own, overlay)
        return PhotoRecord(
            photo.view,
            photo.at,
            blob,
            photo.content_type,
            heatmap,
            own.verdict if own else None,
            own.score if own else None,
        )

    async def _send_thumbnail(
        self, key: PartKey, view: str, own: PartVerdict, overlay: bytes
    ) -> None:
        """For the central site: the uplink copies it with the verdicts. A courtesy: the
        part is recorded whether or not it could be made or sent (broker away, a photo
        whose thumbnail will not fit its bound)."""
        try:
            jpeg = await self.db(thumbnail_jpeg, overlay, thumbnails.SIDE_PX, thumbnails.MAX_BYTES)
            message = thumbnails.thumbnail_message(key, view, own, jpeg)
            await self.nc.publish(thumbnails.subject(key.plant, key.machine), message.to_json())
        except Exception as exc:
            log.warning("heat-map thumbnail of %s not sent: %s", key, exc)

    async def record_many(self, parts: list[tuple[PartKey, PartVerdict]]) -> None:
        """Verdicts of parts without a photo, shown, then recorded in one transaction."""
        for key, told in parts:
            self.event(key.plant, key.machine, Kind.VERDICT, self._shown(key, told, {}))
            if self.alarms is not None:
                self.alarms.verdict(key, told)
        await self.db(self.store.record_told, parts)

    def event(self, plant: str, machine: str, kind: Kind, payload: dict[str, Any]) -> None:
        """Tell dashboards; they never hold up the line (nothing waits for a reader)."""
        coro = self.nc.publish(events.subject(plant, machine, kind), events.encode(payload))
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_failure)

    async def _publish(self, key: PartKey, told: PartVerdict) -> None:
        subject = topics.to_subject(topics.output_topic(key.plant, key.machine))
        await self.nc.publish(subject, verdict_message(key, told).to_json())

    def _count(self, told: PartVerdict, arrived: datetime | None) -> None:
        self.verdict_counts[told.verdict.value] += 1
        self.metrics.verdicts.labels(told.verdict.value).inc()
        if arrived is not None:
            latency_s = (datetime.now(UTC) - arrived).total_seconds()
            self.metrics.latency.observe(latency_s)
            self.latencies_ms.append(latency_s * 1e3)

    def latency_percentiles(self, at: tuple[float, ...] = (0.50, 0.99)) -> dict[float, float]:
        """Photo arrival to verdict told, in ms, over the recent verdicts of this worker."""
        lat = sorted(self.latencies_ms)
        if not lat:
            return {}
        return {p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) for p in at}

    @staticmethod
    def _shown(key: PartKey, told: PartVerdict, extra: dict[str, Any]) -> dict[str, Any]:
        return {**verdict_message(key, told).model_dump(mode="json"), **extra}


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("live event not sent: %s", task.exception())
