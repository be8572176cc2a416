"""The line runtime: intake, decision and output of one worker, and its background duties.

For every message: the intake validates it (invalid -> dead letter with the reason) and
hands it here; a shot or state is recorded, a casting photo is decided and its verdict
journaled, told to the robot cell and recorded. A message is acknowledged only after its
record is durable, so a worker killed at any moment loses nothing: JetStream redelivers,
the journal says what the cell was told, and the natural keys of the store make a second
write a no-op. A part keeps the first verdict it was told, whoever told it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from nats.aio.client import Client as NATS
from sqlalchemy import Engine

from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.line.alarms import LineAlarms
from castline.line.cameras import Cameras
from castline.line.curve_check import CurveCheck
from castline.line.decision import Decider
from castline.line.downstream import DownstreamResults
from castline.line.expiry import Expiry
from castline.line.inspection import ActiveModels
from castline.line.intake import STORE_DOWN, Delivery, Intake, StoreHealth
from castline.line.join import Joiner
from castline.line.metrics import LineMetrics
from castline.line.output import Output
from castline.line.photos import PartPhotos, recorded_mark, recorded_mount
from castline.line.records import Recorder
from castline.messaging import jetstream
from castline.messaging.backlog import read_backlog
from castline.messaging.connect import connect_until_stopped
from castline.messaging.journal import VerdictJournal
from castline.messaging.schema import (
    CellMessage,
    DownstreamMessage,
    ImageMessage,
    Message,
    ShotMessage,
    StateMessage,
    TruthMessage,
)
from castline.messaging.topics import Kind
from castline.settings import Settings
from castline.store.blobs import BlobStore
from castline.store.envelopes import Envelopes
from castline.store.partitions import keep_history
from castline.store.repository import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


def _curve_check(settings: Settings, engine: Engine) -> CurveCheck:
    """Curves against their die's envelope; its hourly duty also keeps the history's
    partitions made ahead and the retention."""
    history = partial(
        keep_history, engine, settings.history_partition_months, settings.shot_retention_days,
        blobs=BlobStore(settings.blobs),
    )  # fmt: skip
    return CurveCheck(
        Envelopes(engine),
        settings.envelope_learn_shots,
        settings.curve_retention_days,
        settings.envelope_action_of,
        history=history,
    )


class LineRuntime:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        nats_url: str,
        metrics: LineMetrics | None = None,
        plant: str | None = None,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.nats_url = nats_url
        self.plant = plant
        self.connect_options = connect_options or {}  # credentials, TLS
        self.store = Store(engine)
        self.blobs = BlobStore(settings.blobs)
        self.models = ActiveModels(engine)
        self.metrics = metrics or LineMetrics()
        self.deadline_s = settings.verdict_deadline_s
        self.cameras = Cameras(settings.machines_without_camera)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="line")
        self.health = StoreHealth(self.store, self._db, self.metrics)
        self.decider = Decider(
            self.models,
            Joiner(settings.join_window_s, lambda die: settings.views_per_part.get(die, 1)),
            self.deadline_s,
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="inspect"),  # never behind records
            self._recorded_die,
        )
        self.decider.recorded_mark = recorded_mark(self.store, self._db)
        self.decider.recorded_mount = recorded_mount(self.store, self._db)
        self.curves = _curve_check(settings, engine)
        self.decider.hold = self.curves.hold
        self.alarms = LineAlarms(engine, self._db, plant or settings.plant, self.deadline_s)
        self.curves.sink = self.alarms  # envelope breaches are alarms too
        self.downstream = DownstreamResults(engine, self._db, self._show_downstream)
        self.journal: VerdictJournal | None = None
        self._intake: Intake | None = None
        self._output: Output | None = None
        self._photos: PartPhotos | None = None
        self._known_dies: set[str] = set()
        self._known_machines: set[tuple[str, str]] = set()

    # --- lifecycle -----------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        nc = await connect_until_stopped(
            self.nats_url, stop, "castline-line", **self.connect_options
        )
        if nc is None:
            return  # stopped before the broker was reached
        try:
            await self._serve(nc, stop, ready)
        finally:
            await nc.close()
            self.executor.shutdown(wait=False)

    async def _serve(self, nc: NATS, stop: asyncio.Event, ready: asyncio.Event | None) -> None:
        js = nc.jetstream()
        await jetstream.ensure_stream(js)
        durable = await jetstream.ensure_line_consumer(js, self.plant)
        sub = await js.pull_subscribe_bind(durable, stream=jetstream.STREAM)
        photo_queue = await jetstream.ensure_photo_consumer(js, self.plant)
        photos = await js.pull_subscribe_bind(photo_queue, stream=jetstream.STREAM)
        replicas = (await js.stream_info(jetstream.STREAM)).config.num_replicas or 1
        self.journal = await VerdictJournal.open(js, replicas)
        self._output = Output(nc, self.journal, self.store, self.blobs, self._db, self.metrics)
        self._output.thumbnails = self.settings.heatmap_thumbnails
        self._photos = PartPhotos(self.decider, self._output)
        recorder = Recorder(
            self.store.engine, self._db, self.decider, self.output, self.journal, self.curves.check
        )
        recorder.alarms = self._output.alarms = self.alarms
        recorder.cameras = self.cameras
        self.alarms.publish = self._output.event
        self._intake = Intake(
            js,
            self.store,
            self._db,
            self.metrics,
            self.health,
            self.handle,
            recorder,
            self._refused,
            self._photos.unreadable,
        )
        loaded = await self._db(self.models.preload)
        log.info("line runtime ready: %d inspection models loaded", loaded)
        if ready:
            ready.set()
        duties = [
            asyncio.create_task(self._expiry().run(stop)),
            asyncio.create_task(self._intake.watch_backlog(stop, sub)),
            asyncio.create_task(self.health.watch(stop)),
            asyncio.create_task(self.downstream.run(stop)),
            asyncio.create_task(self.curves.watch(stop, self._db)),
            asyncio.create_task(self.alarms.run(stop, lambda: read_backlog(js, durable))),
        ]
        try:
            await self._intake.run(stop, sub, self.deadline_s, photos)
        finally:
            for task in duties:
                task.cancel()

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """A blocking store or disk call, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _expiry(self) -> Expiry:
        def shot_die(key: PartKey) -> Awaitable[tuple[str, bool] | None]:
            return self._db(self.store.shot_die, key)

        return Expiry(self.decider, self.output, self.health, self.metrics, shot_die)

    @property
    def photos(self) -> PartPhotos:
        if self._photos is None:
            raise RuntimeError("the line runtime is not running")
        return self._photos

    @property
    def output(self) -> Output:
        if self._output is None:
            raise RuntimeError("the line runtime is not running")
        return self._output

    # --- one message -----------------------------------------------------------

    async def handle(self, message: Message, delivery: Delivery) -> None:
        match message:
            case ImageMessage():
                await self.photos.take(message, delivery)
            case ShotMessage():
                await self._on_shot(message)
            case StateMessage():
                await self._on_state(message)
            case TruthMessage():
                key = PartKey(
                    message.plant, message.machine, message.shot_number, cavity=message.cavity
                )
                truth = (message.defective, message.defect_type, message.cause)
                await self._db(self.store.record_truth, key, *truth)
            case CellMessage():
                payload = message.model_dump(mode="json")
                self.output.event(message.plant, message.machine, Kind.CELL, payload)
            case DownstreamMessage():
                await self.downstream.take(message, delivery.arrived)

    def _show_downstream(self, plant: str, station: str, payload: dict[str, Any]) -> None:
        self.output.event(plant, station, Kind.DOWNSTREAM, payload)

    def _refused(self, message: Message) -> None:
        """A shot that could not be recorded is dead-lettered: it makes no part."""
        if isinstance(message, ShotMessage):
            key = PartKey(message.plant, message.machine, message.shot_number)
            self.decider.forget(key, message.cavities)

    async def _on_shot(self, message: ShotMessage) -> None:
        shot = self.curves.check(message.to_shot())
        if self.cameras.photographed(message.plant, message.machine):
            self.decider.shot(shot)
        try:
            await self._record_shot(message.plant, shot)
        except STORE_DOWN:
            if self.journal is not None:  # for the worker of the group that gets the photo
                await self.journal.note_die(shot.key, shot.die, shot.trial)
            raise
        self.alarms.shots([shot])
        payload = message.model_dump(mode="json", exclude={"curve", "curve_b64"})
        self.output.event(message.plant, message.machine, Kind.SHOT, payload)

    async def _record_shot(self, plant: str, shot: Shot) -> None:
        machine = shot.key.machine
        if (plant, machine) not in self._known_machines:
            await self._db(self.store.ensure_machine, plant, Machine(machine))
            self._known_machines.add((plant, machine))
        if shot.die not in self._known_dies:
            await self._db(lambda: self.store.ensure_die(shot.die, machine=machine, plant=plant))
            self._known_dies.add(shot.die)
        await self._db(self.store.record_shots, [shot])

    async def _on_state(self, message: StateMessage) -> None:
        if message.die:  # known at once, even if the record has to wait
            self.decider.mounted(message.plant, message.machine, message.die)
        state = (message.state, message.ts, message.die, message.reason)
        await self._db(self.store.record_state, message.plant, message.machine, *state)
        payload = message.model_dump(mode="json")
        self.output.event(message.plant, message.machine, Kind.STATE, payload)

    async def _recorded_die(self, key: PartKey) -> tuple[str, bool] | None:
        try:
            return await self._db(self.store.shot_die, key)
        except STORE_DOWN:  # its worker noted the die in the journal
            return await self.journal.die_of(key) if self.journal else None

    # --- background duties --------------------------------------------------------

    # --- what it did ----------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Photos being decided right now."""
        return len(self._intake.in_flight) if self._intake else 0

    @property
    def dead_letter_count(self) -> int:
        return self._intake.dead_letters if self._intake else 0

    @property
    def verdict_counts(self) -> Counter[str]:
        return Counter(self._output.verdict_counts if self._output else ())

    @property
    def backlog(self) -> int:
        return self._intake.backlog if self._intake else 0

    def summary(self) -> dict[str, Any]:
        latency = self._output.latency_percentiles() if self._output else {}
        return {
            "verdicts": dict(self.verdict_counts),
            "dead_letters": self.dead_letter_count,
            "latency_ms_p50": latency.get(0.50),
            "latency_ms_p99": latency.get(0.99),
            "backlog": self.backlog,
        }
