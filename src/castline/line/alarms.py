"""Live alarms at the line's edge: the worker's alarm engine fed as records are noted,
written to the record and shown on the dashboards.

The records path only hands over what it has already built (the shots of a recorded
batch, each verdict told): the charts of a batch are a few numpy operations, and nothing
on that path touches the database or the broker for an alarm. A duty of its own, once a
second, takes what the gate lets through, writes it in one transaction and publishes each
alarm as a live event on `castline.events.v1.<plant>.<machine>.alarm` (plant-wide alarms,
like the backlog, under the machine id `line`). An alarm that fails must never stop the
line: errors are logged and the reports wait for the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from castline.domain.alarm_engine import AlarmEngine
from castline.domain.alarms import Alarm, backlog_alarm
from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict
from castline.messaging.backlog import Backlog
from castline.messaging.topics import Kind
from castline.store import alarms as stored
from castline.store.alarms import Raised

log = logging.getLogger(__name__)

Db = Callable[..., Awaitable[Any]]
Publish = Callable[[str, str, Kind, dict[str, Any]], None]
PLANT_WIDE = "line"  # the machine id plant-wide alarms are shown under


class LineAlarms:
    """Implements `AlarmSink` for the worker: `raise_` takes an alarm from any part of it."""

    def __init__(
        self,
        engine: Engine,
        db: Db,
        plant: str,
        deadline_s: float,
        alarm_engine: AlarmEngine | None = None,
    ) -> None:
        self.engine = engine
        self.db = db  # runs a blocking call off the event loop
        self.publish: Publish | None = None  # the worker's live events, once it runs
        self.plant = plant  # whose plant-wide alarms (the backlog) this worker raises
        self.deadline_s = deadline_s
        self.alarm_engine = alarm_engine or AlarmEngine()
        self.written = 0

    # --- fed by the records path (cheap, never raises) ---------------------------------

    def shots(self, shots: list[Shot]) -> None:
        try:
            self.alarm_engine.shots(shots)
        except Exception:  # a bug in a chart must not stop recording
            log.exception("live SPC failed on a batch of %d shots", len(shots))

    def verdict(self, key: PartKey, told: PartVerdict) -> None:
        try:
            self.alarm_engine.verdict(key.plant, key.machine, told)
        except Exception:
            log.exception("held-part watch failed for %s", key)

    def raise_(self, alarm: Alarm) -> None:
        self.alarm_engine.raise_(alarm)

    # --- its own duty ------------------------------------------------------------------

    async def run(
        self,
        stop: asyncio.Event,
        backlog: Callable[[], Awaitable[Backlog]] | None = None,
        every_s: float = 1.0,
    ) -> None:
        await self._resume()
        rounds = 0
        while not stop.is_set():
            if backlog is not None and rounds % 5 == 0:
                await self._check_backlog(backlog)
            try:
                await self.flush()
            except Exception as exc:  # the database away: the reports wait in the gate
                log.warning("alarms not written yet: %s", exc)
            rounds += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    async def _resume(self) -> None:
        """Check at once with the baselines learnt before (this worker or another)."""
        engine = self.alarm_engine
        try:
            kept = await self.db(stored.load_baselines, self.engine, engine.names)
        except Exception as exc:  # they are learnt again from the next shots
            log.warning("stored chart baselines not read: %s", exc)
            return
        for b in kept:
            engine.use_baseline((b.plant, b.machine, b.die), b.baseline, b.regime)

    async def _keep_baselines(self) -> None:
        learnt, self.alarm_engine.learnt = self.alarm_engine.learnt, []
        if not learnt:
            return
        now = datetime.now(UTC)
        kept = [stored.StoredBaseline(*key, regime, b, now) for key, regime, b in learnt]
        try:
            await self.db(stored.save_baselines, self.engine, kept)
        except Exception as exc:  # the charts go on; a restart learns them again
            log.warning("chart baselines not kept: %s", exc)

    async def flush(self) -> list[Raised]:
        """Keep new baselines; write the alarms the gate lets through now, then show them."""
        await self._keep_baselines()
        due = self.alarm_engine.due(time.monotonic())
        if not due:
            return []
        try:
            raised: list[Raised] = await self.db(stored.raise_many, self.engine, due)
        except Exception:
            for alarm in due:  # back to the gate; it merges them with what came since
                self.alarm_engine.gate.offer(alarm)
            raise
        self.written += len(raised)
        if self.publish is not None:
            for r in raised:
                machine = r.alarm.machine or PLANT_WIDE
                self.publish(r.alarm.plant, machine, Kind.ALARM, event(r))
        return raised

    async def _check_backlog(self, backlog: Callable[[], Awaitable[Backlog]]) -> None:
        try:
            seen = await backlog()
        except Exception as exc:
            log.debug("backlog unknown: %s", exc)
            return
        at = datetime.now(UTC)
        alarm = backlog_alarm(self.plant, seen.oldest_s, seen.total, self.deadline_s, at)
        if alarm is not None:
            self.raise_(alarm)


def event(r: Raised) -> dict[str, Any]:
    """The live event of an alarm: what the alarms page shows in a row."""
    a = r.alarm
    return {
        "id": r.id,
        "opened": r.opened,
        "plant": a.plant,
        "machine": a.machine,
        "die": a.die,
        "subject": a.chart,
        "rule": a.kind,
        "severity": a.severity,
        "message": a.message,
        "count": r.count,
        "raised_at": r.raised_at.isoformat(),
        "last_seen_at": r.last_seen_at.isoformat(),
    }
