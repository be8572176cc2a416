"""Intake: take what the plant sends from JetStream, one message at a time, safely.

Each message is validated; an invalid one is dead-lettered with its reason and
acknowledged. A valid one goes to the handler and is acknowledged when the handler is
done. Nothing a message holds can stop the intake: a message whose handling fails is
retried a few times, then dead-lettered; one that cannot even be dead-lettered is parked.
The database being away is not the message's fault: such a message is given back, later
each time, and never counts towards dead-lettering.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import FIRST_COMPLETED
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError
from sqlalchemy.exc import InterfaceError, OperationalError

from castline.line.heartbeat import Heartbeat
from castline.line.join import UnknownPart
from castline.line.metrics import LineMetrics
from castline.messaging import jetstream, parking, pull
from castline.messaging.schema import (
    ImageMessage,
    InvalidImage,
    InvalidMessage,
    Message,
    decode_input,
)
from castline.store.repository import Store

log = logging.getLogger(__name__)

STORE_DOWN = (OperationalError, InterfaceError)
# The broker not answering in time (an election after a node died, a reconnect) is not the
# message's fault either: the journal and the cell are behind it.
BROKER_BUSY = (NatsTimeout, TimeoutError, NoStreamResponseError, NoRespondersError)
BROKER_RETRY_S = 1.0
MAX_DELIVERIES = 5  # a message that fails this often is dead-lettered, not retried forever
STORE_RETRY_S = 2.0  # a message taken while the database was away comes back after this,
STORE_RETRY_MAX_S = 15.0  # and longer each time, up to this
STORE_PROBE_S = 1.0
# Records are fetched many at a time (a batch shares one transaction); photos only as many
# as the worker has free places to decide them (PHOTOS_AT_ONCE).
FETCH_RECORDS = 512
WRITES_AT_ONCE = 3
PHOTOS_AT_ONCE = 8


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a message reached this worker."""

    subject: str
    arrived: datetime  # when JetStream stored it: deadlines count from here
    redelivered: bool


Handler = Callable[[Message, Delivery], Awaitable[None]]


class Batch(Protocol):
    """Records taken together: noted at once, written in one go."""

    def note(self, message: Message) -> None: ...

    async def record(self, messages: list[Message]) -> None: ...


Db = Callable[..., Awaitable[Any]]


class StoreHealth:
    """Whether the database answers; while it does not, a probe every second."""

    def __init__(self, store: Store, db: Db, metrics: LineMetrics) -> None:
        self.store = store
        self.db = db
        self.metrics = metrics
        self.down_since: float | None = None  # monotonic time the database went away
        self.outages_s: list[float] = []  # how long each outage lasted

    def lost(self, exc: Exception) -> None:
        if self.down_since is not None:
            return
        self.down_since = time.monotonic()
        self.metrics.store_up.set(0)
        log.error(
            "database unreachable (%s): inspection goes on, verdicts are journaled in "
            "JetStream and everything is recorded when the database is back",
            str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__,
        )

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(STORE_PROBE_S)
            if self.down_since is None:
                continue
            try:
                await self.db(self.store.ping)
            except STORE_DOWN:
                continue
            outage = time.monotonic() - self.down_since
            self.outages_s.append(outage)
            self.down_since = None
            self.metrics.store_up.set(1)
            log.warning("database back after %.1f s; catching up", outage)


class Intake:
    def __init__(
        self,
        js: JetStreamContext,
        store: Store,
        db: Db,
        metrics: LineMetrics,
        health: StoreHealth,
        handler: Handler,
        batch: Batch,
        refused: Callable[[Message], None],
        unreadable_photo: Callable[[ImageMessage, str], Awaitable[None]],
    ) -> None:
        self.js = js
        self.store = store
        self.db = db
        self.metrics = metrics
        self.health = health
        self.handler = handler
        self.batch = batch
        self.refused = refused  # told of a valid message that was dead-lettered all the same
        self.unreadable_photo = unreadable_photo  # its part is known: decided at once
        self.dead_letters = 0
        self.backlog = 0  # the consumer's messages not yet done, all workers together
        self.in_flight: set[asyncio.Task[None]] = set()  # photos (and downstream) being handled
        self.heartbeat = Heartbeat()  # photos being decided, record batches being written

    async def run(
        self, stop: asyncio.Event, sub: Any, drain_s: float, photos: Any | None = None
    ) -> None:
        """Fetch until `stop`: records in batches from `sub`, and, side by side, photos from
        `photos` (their own consumer, short ack wait), never more than this worker is
        deciding. Without `photos`, photos come one at a time from `sub`. On stop, what was
        fetched but not started is given back at once."""
        deciding = asyncio.create_task(self._photos(stop, photos)) if photos else None
        beating = asyncio.create_task(self.heartbeat.run())
        try:
            await self._records(stop, sub, skip_photos=photos is not None)
        finally:
            if deciding is not None:
                await deciding
            await self._drain(drain_s)
            beating.cancel()

    async def _records(self, stop: asyncio.Event, sub: Any, skip_photos: bool) -> None:
        """Records (shots, states...) of a fetch are noted at once (a photo arriving with its
        shot is judged by the model of the die that shot names), then written together in
        one transaction while the next batch is fetched (up to WRITES_AT_ONCE at once)."""
        writing: list[asyncio.Task[None]] = []
        while not stop.is_set():
            batch = await self._fetch(sub, FETCH_RECORDS)
            if stop.is_set():
                await _give_back(batch)
                break
            records = []
            for msg in batch:
                if skip_photos and jetstream.is_photo(msg.subject):
                    await _ack(msg)  # the photo consumer has it too
                elif alone(msg.subject):
                    self._start(msg)
                else:
                    records.append(msg)
            if records:
                writing.append(asyncio.create_task(self._write(*self._noted(records))))
                self.heartbeat.hold(writing[-1], records)  # a dead worker's: back in 1 s
                writing[-1].add_done_callback(self.heartbeat.release)
            while len(writing) >= WRITES_AT_ONCE or (writing and writing[0].done()):
                await writing.pop(0)
        await asyncio.gather(*writing)

    async def _photos(self, stop: asyncio.Event, sub: Any) -> None:
        """Photos, as many as there are free places to decide them: a worker that dies
        holds only the photos it was deciding, and those come back after a second."""
        while not stop.is_set():
            free = PHOTOS_AT_ONCE - len(self.in_flight)
            if free <= 0:
                await asyncio.wait(self.in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
                continue
            batch = await self._fetch(sub, free)
            if stop.is_set():
                await _give_back(batch)
                return
            for msg in batch:
                self._start(msg)

    def _start(self, msg: Msg) -> None:
        task = asyncio.create_task(self.take(msg))
        self.in_flight.add(task)
        self.heartbeat.hold(task, [msg])
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.heartbeat.release(task)

    async def _drain(self, drain_s: float) -> None:
        """Let the photos being decided finish; what does not finish in time is given back."""
        if not self.in_flight:
            return
        _, late = await asyncio.wait(self.in_flight, timeout=drain_s)
        await _give_back([msg for task in late for msg in self.heartbeat.held(task)])

    def _noted(self, msgs: list[Msg]) -> tuple[list[tuple[Msg, Message]], list[tuple[Msg, str]]]:
        """Valid records, told to the batch handler at once (before any photo of the batch
        is looked at), and the invalid ones with the reason, each for a dead letter."""
        valid, invalid, kinds = [], [], Counter[str]()
        for msg in msgs:
            try:
                route, message = decode_input(msg.subject, msg.data)
            except InvalidMessage as exc:  # decoded once: the reason goes with it
                invalid.append((msg, exc.reason))
                continue
            kinds[route.kind.value] += 1
            self.batch.note(message)
            valid.append((msg, message))
        for kind, count in kinds.items():  # counted once a batch, not once a message
            self.metrics.messages.labels(kind).inc(count)
        return valid, invalid

    async def _write(
        self, records: list[tuple[Msg, Message]], invalid: list[tuple[Msg, str]]
    ) -> None:
        for msg, reason in invalid:
            await self.take(msg, reason)
        if records:
            await self._write_valid(records)

    async def _write_valid(self, records: list[tuple[Msg, Message]]) -> None:
        """One transaction for the batch, then every message acknowledged. If the batch
        fails for a reason of its own, each message is taken alone, so one poison record
        is retried and dead-lettered without holding back the others."""
        try:
            await self.batch.record([message for _, message in records])
        except STORE_DOWN as exc:
            self.health.lost(exc)
            delay = min(STORE_RETRY_S * _deliveries(records[0][0]), STORE_RETRY_MAX_S)
            await asyncio.gather(*(_nak(msg, delay) for msg, _ in records))
            return
        except Exception as exc:
            log.warning("batch of %d records failed (%r): one at a time", len(records), exc)
            await asyncio.gather(*(self.take(msg) for msg, _ in records))
            return
        await pull.ack_all([msg for msg, _ in records])  # into the client's buffer, no task each

    async def watch_backlog(self, stop: asyncio.Event, sub: Any) -> None:
        while not stop.is_set():
            try:
                info = await sub.consumer_info()
                self.backlog = int(info.num_pending + info.num_ack_pending)
                self.metrics.backlog.set(self.backlog)
            except Exception as exc:
                log.debug("backlog unknown: %s", exc)
            await asyncio.sleep(2.0)

    @staticmethod
    async def _fetch(sub: Any, size: int) -> list[Msg]:
        try:
            return await pull.fetch(sub, size, timeout=0.5)  # no timer a message
        except (NatsTimeout, TimeoutError):  # nothing waiting
            return []
        except Exception as exc:
            log.warning("fetch failed (%r); retrying", exc)
            await asyncio.sleep(0.5)
            return []

    async def take(self, msg: Msg, invalid: str | None = None) -> None:
        """One message, whatever it holds: handled, given back, dead-lettered or parked;
        `invalid`: the reason it was already found invalid for."""
        try:
            if invalid is not None:
                await self._dead_letter(msg, invalid)
            else:
                await self._take(msg)
        except STORE_DOWN as exc:
            self.health.lost(exc)
            await _nak(msg, min(STORE_RETRY_S * _deliveries(msg), STORE_RETRY_MAX_S))
        except BROKER_BUSY as exc:
            log.warning("broker busy for %s (%r): given back", msg.subject[:200], exc)
            await _nak(msg, BROKER_RETRY_S)
        except Exception as exc:
            try:
                await self._failed(msg, exc)
            except Exception:  # the broker went away too: redelivered after the ack wait
                log.exception("message from %s left for redelivery", msg.subject[:200])

    async def _take(self, msg: Msg) -> None:
        try:
            route, message = decode_input(msg.subject, msg.data)
        except InvalidImage as exc:
            await self.unreadable_photo(exc.message, exc.reason)
            await self._dead_letter(msg, exc.reason)
            return
        except InvalidMessage as exc:
            await self._dead_letter(msg, exc.reason)
            return
        self.metrics.messages.labels(route.kind.value).inc()
        meta = msg.metadata
        arrived = meta.timestamp if meta and meta.timestamp else datetime.now(UTC)
        try:
            await self.handler(message, Delivery(msg.subject, arrived, _deliveries(msg) > 1))
        except UnknownPart as exc:  # a photo of no known part: retrying would not find it
            await self._dead_letter(msg, exc.reason)
            return
        await msg.ack()

    async def _failed(self, msg: Msg, exc: Exception) -> None:
        """The message itself failed: retry a few times, then dead-letter it."""
        self.metrics.errors.inc()
        deliveries = _deliveries(msg)
        log.warning("processing %s failed (delivery %d): %r", msg.subject, deliveries, exc)
        if deliveries < MAX_DELIVERIES:
            await _nak(msg, 0.5)
            return
        reason = f"processing failed {deliveries} times: {exc.__class__.__name__}: {exc}"
        try:
            _, message = decode_input(msg.subject, msg.data)
            self.refused(message)
        except InvalidMessage:
            pass
        try:
            await self._dead_letter(msg, reason)
        except STORE_DOWN as down:
            self.health.lost(down)
            await _nak(msg, STORE_RETRY_MAX_S)

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        """Record the message as a dead letter and acknowledge it; park it if even that
        fails for a reason of its own."""
        self.metrics.dead_letters.inc()
        self.dead_letters += 1
        log.warning("dead letter from %s: %s", msg.subject[:200], reason[:500])
        ref = f"{jetstream.STREAM}:{msg.metadata.sequence.stream}" if msg.metadata else ""
        try:
            await self.db(
                self.store.record_dead_letter,
                msg.subject,
                reason,
                msg.data,
                datetime.now(UTC),
                ref,
            )
        except STORE_DOWN:
            raise
        except Exception as exc:
            log.error("dead letter from %s not recorded (%r): parked", msg.subject[:200], exc)
            await parking.park(self.js, msg.subject, msg.data, f"{reason} (not recorded: {exc})")
        await msg.ack()


def alone(subject: str) -> bool:
    """Taken one at a time through the handler, not in a batch of records: photos, and
    downstream results (line/downstream.py), which join a part rather than make one."""
    return ".image." in subject or subject.endswith(".downstream")


def _deliveries(msg: Msg) -> int:
    return msg.metadata.num_delivered if msg.metadata and msg.metadata.num_delivered else 1


async def _ack(msg: Msg) -> None:
    try:
        await msg.ack()
    except Exception as exc:  # the broker is away: redelivered, and written again as a no-op
        log.debug("ack of %s failed: %s", msg.subject, exc)


async def _give_back(msgs: list[Msg]) -> None:
    """Fetched but not handled (the worker is stopping): another worker takes them now."""
    for msg in msgs:
        await _nak(msg, 0)


async def _nak(msg: Msg, delay: float) -> None:
    try:
        await msg.nak(delay=delay)
    except Exception as exc:  # the broker is away too: redelivered after the ack wait
        log.debug("nak of %s failed: %s", msg.subject, exc)
