"""The line runtime: consume what the plant sends from JetStream, decide, publish, record.

For every message: validate (invalid -> dead letter with the reason), record it, and for a
casting image inspect and publish the verdict to the robot cell. The message is
acknowledged only after its record is durable, so a runtime killed at any moment loses
nothing: JetStream redelivers, and the natural keys of the store make the second write a
no-op. A part that already has a verdict gets that same verdict again, never a new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import Verdict
from castline.line.inspection import ActiveModels, Outcome, inspect, quarantine
from castline.line.join import Joiner, Unjoined
from castline.line.metrics import LineMetrics
from castline.messaging import jetstream, topics
from castline.messaging.journal import VerdictJournal
from castline.messaging.schema import (
    CellMessage,
    ImageMessage,
    InvalidMessage,
    Region,
    ShotMessage,
    StateMessage,
    TruthMessage,
    VerdictMessage,
    decode,
)
from castline.messaging.topics import Kind
from castline.settings import Settings
from castline.store.blobs import BlobStore
from castline.store.repository import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
LATENCY_WINDOW = 100_000  # recent verdict latencies kept for the summary percentiles
MAX_DELIVERIES = 5  # a message that fails this often is dead-lettered, not retried forever
OWN_OUTPUT = (".verdict", ".availability")
# The database being away is not the message's fault: such failures are retried for as long
# as it takes and never count towards dead-lettering.
STORE_DOWN = (OperationalError, InterfaceError)
STORE_RETRY_S = 2.0  # a message taken while the database was away comes back after this,
STORE_RETRY_MAX_S = 15.0  # and longer each time, up to this
STORE_PROBE_S = 1.0
DIE_LOOKUPS = 11  # a photo before its shot record waits up to 10 x 30 ms for the part's die
DIE_LOOKUP_WAIT_S = 0.03


class LiveFeed(Protocol):
    def publish(self, topic: str, payload: dict[str, Any]) -> None: ...


class LineRuntime:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        nats_url: str,
        feed: LiveFeed | None = None,
        metrics: LineMetrics | None = None,
        plant: str | None = None,
    ) -> None:
        self.settings = settings
        self.nats_url = nats_url
        self.plant = plant
        self.store = Store(engine)
        self.blobs = BlobStore(settings.blobs)
        self.models = ActiveModels(engine)
        self.joiner = Joiner(settings.join_window_s)
        self.feed = feed
        self.metrics = metrics or LineMetrics()
        self.deadline_s = settings.verdict_deadline_s
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="line")
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.verdict_counts: Counter[str] = Counter()
        self.dead_letter_count = 0
        self.backlog = 0
        self.store_down_since: float | None = None  # monotonic time the database went away
        self.store_outages_s: list[float] = []  # how long each database outage lasted
        self._nc: NATS | None = None
        self.journal: VerdictJournal | None = None
        self._known_dies: set[str] = set()
        self._known_machines: set[tuple[str, str]] = set()
        self._in_flight: set[asyncio.Task[None]] = set()

    # --- lifecycle -----------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        nc = await self._connect(stop)
        if nc is None:
            return  # stopped before the broker was reached
        self._nc = nc
        js = self._nc.jetstream()
        await jetstream.ensure_stream(js)
        durable = await jetstream.ensure_line_consumer(js, self.plant)
        sub = await js.pull_subscribe_bind(durable, stream=jetstream.STREAM)
        replicas = (await js.stream_info(jetstream.STREAM)).config.num_replicas or 1
        self.journal = await VerdictJournal.open(js, replicas)
        loaded = await self._db(self.models.preload)
        log.info("line runtime ready: %d inspection models loaded", loaded)
        if ready:
            ready.set()
        helpers = [
            asyncio.create_task(self._expire_loop(stop)),
            asyncio.create_task(self._backlog_loop(stop, sub)),
            asyncio.create_task(self._store_watch(stop)),
        ]
        slots = asyncio.Semaphore(8)
        in_flight = self._in_flight
        try:
            while not stop.is_set():
                try:
                    batch = await sub.fetch(batch=16, timeout=0.5)
                except (NatsTimeout, TimeoutError):  # nothing waiting
                    continue
                except Exception as exc:
                    log.warning("fetch failed (%r); retrying", exc)
                    await asyncio.sleep(0.5)
                    continue
                # Shots and states first: an image arriving with its shot is judged by the
                # model of the die that shot names.
                batch.sort(key=lambda m: ".image." in m.subject)
                records = [m for m in batch if ".image." not in m.subject]
                await asyncio.gather(*(self._guarded(m) for m in records))
                for msg in batch[len(records) :]:
                    await slots.acquire()
                    task = asyncio.create_task(self._guarded(msg))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    task.add_done_callback(lambda _t: slots.release())
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.deadline_s + 5)
        finally:
            for task in helpers:
                task.cancel()
            await self._nc.close()
            self.executor.shutdown(wait=False)

    async def _connect(self, stop: asyncio.Event) -> NATS | None:
        """Connect, retrying while the broker is away; give up only when told to stop."""
        connecting = asyncio.ensure_future(
            nats.connect(
                servers=self.nats_url.split(","),  # a cluster: every node's URL
                name="castline-line",
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                allow_reconnect=True,
                error_cb=self._broker_error,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not connecting.done():
            connecting.cancel()
            return None
        return connecting.result()

    async def _broker_error(self, exc: Exception) -> None:
        log.warning("NATS %s: %s (retrying; is the broker up?)", self.nats_url, exc)

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    # --- one message -----------------------------------------------------------

    async def _guarded(self, msg: Msg) -> None:
        try:
            try:
                await self.handle(msg)
            except STORE_DOWN:
                raise
            except Exception as exc:
                await self._failed(msg, exc)
        except STORE_DOWN as exc:
            self._store_lost(exc)
            deliveries = msg.metadata.num_delivered if msg.metadata else 1
            await self._nak(msg, min(STORE_RETRY_S * deliveries, STORE_RETRY_MAX_S))

    async def _failed(self, msg: Msg, exc: Exception) -> None:
        """The message itself failed: retry a few times, then dead-letter it."""
        self.metrics.errors.inc()
        deliveries = msg.metadata.num_delivered if msg.metadata else 1
        log.exception("processing %s failed (delivery %d)", msg.subject, deliveries)
        if deliveries >= MAX_DELIVERIES:
            reason = f"processing failed {deliveries} times: {exc.__class__.__name__}: {exc}"
            await self._dead_letter(msg, reason)
            await msg.ack()
        else:
            await self._nak(msg, 0.5)

    @staticmethod
    async def _nak(msg: Msg, delay: float) -> None:
        try:
            await msg.nak(delay=delay)
        except Exception as exc:  # the broker is away too: redelivered after the ack wait
            log.debug("nak of %s failed: %s", msg.subject, exc)

    def _store_lost(self, exc: Exception) -> None:
        if self.store_down_since is None:
            self.store_down_since = time.monotonic()
            self.metrics.store_up.set(0)
            log.error(
                "database unreachable (%s): inspection goes on, verdicts are journaled in "
                "JetStream and everything is recorded when the database is back",
                str(exc).splitlines()[0],
            )

    async def _store_watch(self, stop: asyncio.Event) -> None:
        """While the database is away, probe it every second; say when it is back."""
        while not stop.is_set():
            await asyncio.sleep(STORE_PROBE_S)
            if self.store_down_since is None:
                continue
            try:
                await self._db(self.store.ping)
            except STORE_DOWN:
                continue
            outage = time.monotonic() - self.store_down_since
            self.store_outages_s.append(outage)
            self.store_down_since = None
            self.metrics.store_up.set(1)
            log.warning("database back after %.1f s; catching up", outage)

    async def handle(self, msg: Msg) -> None:
        if msg.subject.endswith(OWN_OUTPUT):
            await msg.ack()
            return
        try:
            route, message = decode(msg.subject, msg.data)
        except InvalidMessage as exc:
            await self._dead_letter(msg, exc.reason)
            await msg.ack()
            return
        self.metrics.messages.labels(route.kind.value).inc()
        arrived = msg.metadata.timestamp if msg.metadata else None
        match message:
            case ImageMessage():
                await self._on_image(message, arrived or datetime.now(UTC))
            case ShotMessage():
                await self._on_shot(message)
            case StateMessage():
                if message.die:  # known at once, even if the record has to wait
                    self.joiner.mounted(message.plant, message.machine, message.die)
                await self._db(
                    self.store.record_state,
                    message.plant,
                    message.machine,
                    message.state,
                    message.ts,
                    message.die,
                    message.reason,
                )
                self._feed(msg.subject, message.model_dump(mode="json"))
            case TruthMessage():
                key = PartKey(message.plant, message.machine, message.shot_number)
                await self._db(
                    self.store.record_truth,
                    key,
                    message.defective,
                    message.defect_type,
                    message.cause,
                )
            case CellMessage():
                self._feed(msg.subject, message.model_dump(mode="json"))
        await msg.ack()

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        self.metrics.dead_letters.inc()
        self.dead_letter_count += 1
        log.warning("dead letter from %s: %s", msg.subject, reason)
        ref = f"{jetstream.STREAM}:{msg.metadata.sequence.stream}" if msg.metadata else ""
        await self._db(
            self.store.record_dead_letter, msg.subject, reason, msg.data, datetime.now(UTC), ref
        )

    async def _on_shot(self, message: ShotMessage) -> None:
        shot = message.to_shot()
        # The part's die is known at once, even if the record has to wait for the database.
        self.joiner.shot(shot.key, shot.die, time.monotonic(), shot.trial)
        try:
            await self._record_shot(message.plant, shot)
        except STORE_DOWN:
            if self.journal is not None:  # for the worker of the group that gets the photo
                await self.journal.note_die(shot.key, shot.die, shot.trial)
            raise
        self._feed(
            topics.topic(message.plant, message.machine, Kind.SHOT),
            message.model_dump(mode="json", exclude={"curve"}),
        )

    async def _record_shot(self, plant: str, shot: Shot) -> None:
        machine = shot.key.machine
        if (plant, machine) not in self._known_machines:
            await self._db(self.store.ensure_machine, plant, Machine(machine))
            self._known_machines.add((plant, machine))
        if shot.die not in self._known_dies:
            await self._db(self.store.ensure_die, shot.die, machine=machine, plant=plant)
            self._known_dies.add(shot.die)
        await self._db(self.store.record_shots, [shot])

    async def _on_image(self, message: ImageMessage, arrived: datetime) -> None:
        key = PartKey(message.plant, message.machine, message.shot_number)
        self.joiner.image(key, message.view, time.monotonic())
        data = message.image_bytes()
        try:
            row = await self._db(self.store.verdict, key)
        except STORE_DOWN:
            await self._decide_into_journal(key, message.view, data, arrived)
            raise  # the photo comes back, to be recorded, when the database does
        drawn: Outcome | None = None  # the outcome whose heat map is still to draw
        journaled = await self._journaled(key) if row is None else None
        if row is not None:  # redelivered: the part keeps the verdict it has
            await self._publish(key, row, arrived)
        elif journaled is not None:  # decided while the database was away: record that
            row, _ = await self._record(key, journaled, arrived, fresh=False)
        else:
            outcome = await self._inspect(key, message.view, data, arrived)
            row, recorded = await self._decide(key, outcome, arrived, timed=True)
            drawn = outcome if recorded else None
        # The photo and its heat map are for people: stored after the cell has its verdict
        # (a redelivery stores them if a crash came first), acknowledged after both.
        blob = await self._db(self.blobs.put, data)
        await self._db(
            self.store.record_image, key, message.view, message.ts, blob, message.content_type
        )
        heatmap = row["heatmap"]
        if drawn is not None and drawn.draw_overlay is not None:
            draw = drawn.draw_overlay
            heatmap = await self._db(lambda: self.blobs.put(draw()))
            await self._db(self.store.attach_heatmap, key, heatmap)
        self._feed(
            topics.topic(key.plant, key.machine, Kind.VERDICT),
            {
                **self._verdict_message(key, row).model_dump(mode="json"),
                "image": blob,
                "heatmap": heatmap,
            },
        )

    async def _inspect(self, key: PartKey, view: str, data: bytes, arrived: datetime) -> Outcome:
        remaining = self.deadline_s - (datetime.now(UTC) - arrived).total_seconds()
        die, trial = await self._die_of(key)
        if trial:
            return Outcome(Verdict.NG, "warm-up (trial) shot: scrapped by rule")
        return await inspect(self.models, die, view, data, remaining, self.executor)

    async def _die_of(self, key: PartKey) -> tuple[str | None, bool]:
        """The die that made the part, and whether it was a trial shot. In a group of
        workers another one may have the part's shot record, and may be recording it right
        now: the store (or, while it is away, the journal) knows it a moment later."""
        for attempt in range(DIE_LOOKUPS):
            if self.joiner.has_shot(key):
                break
            recorded = await self._recorded_die(key)
            if recorded is not None:
                return recorded
            if attempt < DIE_LOOKUPS - 1:
                await asyncio.sleep(DIE_LOOKUP_WAIT_S)
        return self.joiner.die_of(key), self.joiner.is_trial(key)

    async def _recorded_die(self, key: PartKey) -> tuple[str, bool] | None:
        try:
            return await self._db(self.store.shot_die, key)
        except STORE_DOWN:  # its worker noted the die in the journal
            return await self.journal.die_of(key) if self.journal else None

    async def _journaled(self, key: PartKey) -> dict[str, Any] | None:
        return await self.journal.get(key) if self.journal else None

    async def _decide_into_journal(
        self, key: PartKey, view: str, data: bytes, arrived: datetime
    ) -> None:
        """The database is away: decide anyway, journal the verdict in JetStream (the first
        worker's verdict stands), then tell the cell. The record follows later."""
        if self.journal is None or await self.journal.get(key) is not None:
            return  # the cell has this part's verdict already
        outcome = await self._inspect(key, view, data, arrived)
        row, ours = await self.journal.first(key, self._fields(outcome, arrived))
        await self._publish(key, row, arrived, fresh=ours, timed=ours)

    @staticmethod
    def _fields(outcome: Outcome, arrived: datetime) -> dict[str, Any]:
        """The verdict as it is recorded: the outcome, when it was decided, how fast."""
        decided_at = datetime.now(UTC)
        return {
            "verdict": outcome.verdict.value,
            "decided_at": decided_at,
            "score": outcome.score,
            "reason": outcome.reason,
            "model_version": outcome.model_version,
            "latency_ms": (decided_at - arrived).total_seconds() * 1e3,
            "regions": [r.model_dump() for r in outcome.regions],
            "timings": outcome.timings,
        }

    async def _decide(
        self, key: PartKey, outcome: Outcome, arrived: datetime, timed: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """Record the verdict durably, then publish it. Returns the part's verdict row and
        whether this outcome became it (False: the part had one, published instead)."""
        return await self._record(key, self._fields(outcome, arrived), arrived, timed=timed)

    async def _record(
        self,
        key: PartKey,
        fields: dict[str, Any],
        arrived: datetime,
        timed: bool = False,
        fresh: bool = True,
    ) -> tuple[dict[str, Any], bool]:
        verdict, decided_at = Verdict(fields["verdict"]), fields["decided_at"]
        rest = {k: v for k, v in fields.items() if k not in ("verdict", "decided_at")}
        recorded = await self._db(self.store.record_verdict, key, verdict, decided_at, **rest)
        row = await self._db(self.store.verdict, key)
        if row is None:  # pragma: no cover - the insert above or an earlier one made it
            raise RuntimeError(f"verdict of {key} vanished after recording")
        await self._publish(key, row, arrived, fresh=recorded and fresh, timed=timed)
        return row, recorded

    async def _publish(
        self,
        key: PartKey,
        row: dict[str, Any],
        arrived: datetime,
        fresh: bool = False,
        timed: bool = False,
    ) -> None:
        message = self._verdict_message(key, row)
        subject = topics.to_subject(topics.topic(key.plant, key.machine, Kind.VERDICT))
        assert self._nc is not None
        await self._nc.publish(subject, message.to_json())
        if fresh:
            self.verdict_counts[message.verdict.value] += 1
            self.metrics.verdicts.labels(message.verdict.value).inc()
        if fresh and timed:
            latency_s = (datetime.now(UTC) - arrived).total_seconds()
            self.metrics.latency.observe(latency_s)
            self.latencies_ms.append(latency_s * 1e3)
        self._feed(topics.to_mqtt(subject), message.model_dump(mode="json"))

    @staticmethod
    def _verdict_message(key: PartKey, row: dict[str, Any]) -> VerdictMessage:
        return VerdictMessage(
            plant=key.plant,
            machine=key.machine,
            shot_number=key.shot_number,
            verdict=Verdict(row["verdict"]),
            decided_at=row["decided_at"],
            score=row["score"],
            reason=row["reason"],
            model_version=row["model_version"],
            latency_ms=row["latency_ms"],
            regions=[Region(**r) for r in row["regions"]],
        )

    def _feed(self, topic: str, payload: dict[str, Any]) -> None:
        """Tell the dashboard; a dashboard problem never holds up the line."""
        if self.feed is None:
            return
        try:
            self.feed.publish(topics.to_mqtt(topic), payload)
        except Exception:
            log.exception("live feed refused %s", topic)

    # --- background duties --------------------------------------------------------

    async def _expire_loop(self, stop: asyncio.Event) -> None:
        retry: list[Unjoined] = []  # parts whose end could not be recorded yet
        while not stop.is_set():
            await asyncio.sleep(1.0)
            due, retry = retry + self.joiner.expire(time.monotonic()), []
            for unjoined in due:
                try:
                    await self._settle(unjoined)
                except STORE_DOWN as exc:
                    self._store_lost(exc)
                    retry.append(unjoined)
                except Exception:
                    log.exception(
                        "part %s (no %s) could not be settled", unjoined.key, unjoined.missing
                    )

    async def _settle(self, unjoined: Unjoined) -> None:
        """This worker saw one half of a part. In a group of workers another one may have
        had the other half: the store says whether the part is really incomplete."""
        key, window = unjoined.key, self.joiner.window_s
        if unjoined.missing == "shot":
            if await self._db(self.store.shot_die, key) is None:
                self.metrics.unjoined.labels("no_shot").inc()
                log.info("image of %s had no shot record within %.0f s", key, window)
        elif await self._db(self.store.verdict, key) is None and not await self._journaled(key):
            self.metrics.unjoined.labels("no_image").inc()
            reason = f"no casting image within {window:.0f} s of the shot"
            await self._decide(key, quarantine(reason), datetime.now(UTC))

    async def _backlog_loop(self, stop: asyncio.Event, sub: Any) -> None:
        while not stop.is_set():
            try:
                info = await sub.consumer_info()
                self.backlog = int(info.num_pending + info.num_ack_pending)
                self.metrics.backlog.set(self.backlog)
            except Exception as exc:
                log.debug("backlog unknown: %s", exc)
            await asyncio.sleep(2.0)

    @property
    def in_flight(self) -> int:
        """Images being inspected right now."""
        return len(self._in_flight)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {
            "verdicts": dict(self.verdict_counts),
            "dead_letters": self.dead_letter_count,
            "latency_ms_p50": pct(0.50),
            "latency_ms_p99": pct(0.99),
            "backlog": self.backlog,
        }
