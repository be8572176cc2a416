"""How far inspection is behind, read from JetStream itself.

The backlog is a property of the line's durable consumer, not of any one worker: the parts
waiting in the stream, those taken but not yet acknowledged, and the age of the oldest part
not yet done. Reading it from the broker gives the same answer however many workers run,
on whichever hosts, and also when none runs at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError

from castline.messaging import parking
from castline.messaging.devices import redact
from castline.messaging.jetstream import LINE_CONSUMER, STREAM, stream_usage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backlog:
    consumer: str
    waiting: int  # in the stream, not yet taken by a worker
    in_progress: int  # taken by a worker, not yet acknowledged
    redelivered: int  # taken again after a worker failed or let go
    idle_pulls: int  # fetch requests of workers that have nothing to do
    oldest_s: float | None  # age of the oldest message not yet acknowledged
    checked_at: datetime

    @property
    def total(self) -> int:
        return self.waiting + self.in_progress

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "checked_at": self.checked_at.isoformat()}


async def read_backlog(js: JetStreamContext, consumer: str) -> Backlog:
    return await backlog_of(js, await js.consumer_info(STREAM, consumer))


async def backlog_of(js: JetStreamContext, info: ConsumerInfo) -> Backlog:
    now = datetime.now(UTC)
    oldest_s = None
    if info.num_pending or info.num_ack_pending:
        oldest_s = await _age_of_oldest(js, info, now)
    return Backlog(
        consumer=info.name,
        waiting=int(info.num_pending or 0),
        in_progress=int(info.num_ack_pending or 0),
        redelivered=int(info.num_redelivered or 0),
        idle_pulls=int(info.num_waiting or 0),
        oldest_s=oldest_s,
        checked_at=now,
    )


async def _age_of_oldest(js: JetStreamContext, info: ConsumerInfo, now: datetime) -> float | None:
    """The first message above the consumer's acknowledgement floor, on its subjects."""
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    subject = info.config.filter_subject if info.config else None
    try:
        msg = await js.get_msg(STREAM, seq=floor + 1, subject=subject, next=True)
    except NotFoundError:
        return None
    if msg.time is None:
        return None
    return max(0.0, (now - msg.time).total_seconds())


def describe(backlog: Backlog | None, deadline_s: float, unknown: str) -> dict[str, Any]:
    """What the dashboard shows: a sentence and a level (ok, busy, behind, unknown).

    Behind means the oldest part has waited longer than the cell waits for a verdict: parts
    are reaching the cell undecided and go to the quarantine rack."""
    if backlog is None:
        return {"level": "unknown", "text": f"Inspection backlog unknown: {unknown}"}
    text = f"Inspection backlog: {backlog.waiting} waiting, {backlog.in_progress} in inspection"
    if backlog.oldest_s is not None:
        text += f", oldest {backlog.oldest_s:.1f} s"
    if backlog.total == 0:
        level = "ok"
    elif backlog.oldest_s is not None and backlog.oldest_s > deadline_s:
        level = "behind"
        text += f" (over the {deadline_s:g} s verdict deadline: parts go to quarantine)"
    else:
        level = "busy"
    return {"level": level, "text": text, **backlog.as_dict()}


def consumer_of(plant: str) -> tuple[str, str]:
    """The consumers that may hold a plant's work: its own group first, then the shared one."""
    return f"{LINE_CONSUMER}-{plant}", LINE_CONSUMER


class BacklogWatch:
    """Reads the backlog of every line consumer every `every_s` seconds, for the dashboard."""

    def __init__(
        self, nats_url: str, every_s: float = 2.0, connect_options: dict[str, Any] | None = None
    ) -> None:
        self.nats_url = nats_url
        self.every_s = every_s
        self.connect_options = connect_options or {}  # credentials, TLS
        self.latest: dict[str, Backlog] = {}
        self.error: str | None = None
        self.stream_alarm: str | None = None  # the stream nears its size limit
        self.parked: int | None = None  # messages that could not even be dead-lettered

    def for_plant(self, plant: str) -> Backlog | None:
        for name in consumer_of(plant):
            if name in self.latest:
                return self.latest[name]
        return None

    async def run(self, stop: asyncio.Event) -> None:
        nc = await nats.connect(
            servers=self.nats_url.split(","),
            name="castline-backlog",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1.0,
            error_cb=self._broker_error,
            **self.connect_options,
        )
        try:
            while not stop.is_set():
                await self._read_all(nc.jetstream())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every_s)
        finally:
            await nc.close()

    async def _read_all(self, js: JetStreamContext) -> None:
        try:
            self.parked = await parking.parked(js)  # parked before the line's stream exists
            infos = await js.consumers_info(STREAM)
            line = [i for i in infos if i.name.startswith(LINE_CONSUMER)]
            self.latest = {i.name: await backlog_of(js, i) for i in line}
            self.stream_alarm = (await stream_usage(js)).alarm
            self.error = None
        except Exception as exc:  # the broker is away: the page says so, the watch goes on
            self.error = f"{exc.__class__.__name__}: {exc}"
            log.debug("backlog unknown: %s", self.error)

    async def _broker_error(self, exc: Exception) -> None:
        self.error = f"NATS {redact(self.nats_url)}: {exc}"  # people see it: no password
