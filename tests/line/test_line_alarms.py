"""Live alarms through the real line: shot records into JetStream, a line worker on
PostgreSQL, the alarm in the record and on the dashboards' event stream.

A melt temperature that falls 40 degrees after its baseline makes one open rule-1 alarm
whose count is every shot beyond the limits, not a row per shot; the alarm is published
as a live event and reaches a dashboard's hub through NATS.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import numpy as np
import pytest
from sqlalchemy import Engine, select

from castline.domain.alarm_engine import AlarmEngine
from castline.domain.alarms import ENVELOPE_BREACH, RULE1, Alarm, AlarmGate
from castline.domain.live_spc import ChartRules
from castline.line.runtime import LineRuntime
from castline.messaging import events
from castline.messaging.broker import EmbeddedNats
from castline.messaging.schema import InvalidMessage, ShotMessage, decode_input
from castline.settings import Settings
from castline.store import alarms, database
from castline.store import tables as t
from castline.web.live import Hub, NatsFeed
from tests.line.conftest import until

BASELINE, FALLEN = 30, 40


def shot(n: int, at: datetime, melt: float, vacuum: float) -> bytes:
    params = {"melt_temp_c": melt, "vacuum_mbar": vacuum}
    message = ShotMessage(plant="p1", machine="m1", shot_number=n, die="D1", ts=at, params=params)
    return message.to_json()


def open_alarms(engine: Engine) -> list[dict[str, object]]:
    a = t.alarms
    with engine.connect() as conn:
        rows = conn.execute(select(a).where(a.c.cleared_at.is_(None)))
        return [dict(r._mapping) for r in rows]


async def test_a_melt_drift_makes_one_open_alarm_shown_live(
    tmp_path: Path, broker: EmbeddedNats, pg_engine: Engine
) -> None:
    database.upgrade(pg_engine)
    settings = Settings(home=tmp_path / "home", plant="p1", join_window_s=60.0)
    runtime = LineRuntime(settings, pg_engine, broker.url, plant="p1")
    rules = ChartRules(baseline_shots=BASELINE)
    runtime.alarms.alarm_engine = AlarmEngine(rules=rules, gate=AlarmGate(every_s=0.2))
    hub, stop, ready = Hub(), asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(runtime.run(stop, ready)),
        asyncio.create_task(NatsFeed(hub, broker.url).run(stop)),
    ]
    nc = await nats.connect(broker.url)
    heard: list[dict[str, object]] = []

    async def on_alarm(msg: nats.aio.msg.Msg) -> None:
        heard.append(json.loads(msg.data))

    await nc.subscribe(f"{events.ROOT}.p1.*.alarm", cb=on_alarm)
    try:
        await asyncio.wait_for(ready.wait(), 30)
        js = nc.jetstream()
        rng = np.random.default_rng(5)
        start = datetime.now(UTC) - timedelta(hours=2)
        for n in range(BASELINE + FALLEN):
            melt = 680.0 + rng.normal(0, 1.0) - (40.0 if n >= BASELINE else 0.0)
            at = start + timedelta(seconds=60 * n)
            await js.publish("castline.v1.p1.m1.shot", shot(n, at, melt, 60 + rng.normal(0, 2)))

        def counted() -> bool:
            rows = [r for r in open_alarms(pg_engine) if r["rule"] == RULE1]
            return any(r["subject"] == "melt_temp_c" and r["count"] == FALLEN for r in rows)

        await until(counted, timeout=60)
        on_melt = [r for r in open_alarms(pg_engine) if r["subject"] == "melt_temp_c"]
        rule1 = [r for r in on_melt if r["rule"] == RULE1]
        assert len(rule1) == 1, "one open alarm per machine, die, chart and kind"
        assert rule1[0]["machine"] == "m1" and rule1[0]["die"] == "D1"
        assert len(on_melt) <= 2  # rule 1 and drift, each once, for 40 fallen shots
        assert {r["subject"] for r in open_alarms(pg_engine)} <= {"melt_temp_c", "quarantine"}

        # Anything in the worker raises through the same sink (the golden envelope does).
        breach = Alarm("p1", "m1", "D1", "envelope", ENVELOPE_BREACH, "fast shot low", start)
        runtime.alarms.raise_(breach)
        await until(lambda: any(r["rule"] == ENVELOPE_BREACH for r in open_alarms(pg_engine)))

        await until(lambda: any(e["subject"] == "melt_temp_c" for e in heard))
        live = hub.retained(lambda topic: topic.endswith("/alarm"))
        assert live and live[0].topic == "castline/v1/p1/m1/alarm"
        shown = [e for e in heard if e["rule"] == RULE1 and e["subject"] == "melt_temp_c"]
        assert {e["id"] for e in shown} == {rule1[0]["id"]}
        assert shown[0]["opened"] and all(not e["opened"] for e in shown[1:])
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()
    # The learnt baseline is kept: the next worker checks with the same limits at once.
    (kept,) = alarms.load_baselines(pg_engine, ("melt_temp_c",))
    assert (kept.machine, kept.die, kept.baseline.shots) == ("m1", "D1", BASELINE)
    again = LineRuntime(settings, pg_engine, broker.url, plant="p1")
    stop = asyncio.Event()
    second = asyncio.create_task(again.alarms.run(stop))
    await until(lambda: ("p1", "m1", "D1") in again.alarms.alarm_engine.charts)
    chart = again.alarms.alarm_engine.charts[("p1", "m1", "D1")]
    assert chart.baseline is not None and chart.baseline.center[0] == kept.baseline.center[0]
    stop.set()
    await second


def test_a_device_cannot_post_an_alarm() -> None:
    """Only castline raises alarms: an alarm message on a device subject is refused (and
    so dead-lettered by the line)."""
    with pytest.raises(InvalidMessage, match="only castline publishes alarm"):
        decode_input("castline/v1/p1/m1/alarm", b"{}")
