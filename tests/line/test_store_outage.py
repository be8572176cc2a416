"""The database goes away mid-run: inspection goes on, each verdict journaled in JetStream
and told to the cell within its deadline; when the database is back everything is recorded
as it was told. Nothing is lost, no part gets two verdicts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from sqlalchemy import Engine, func, select

from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats
from castline.messaging.schema import ShotMessage
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store
from castline.testing.postgres import DrillPostgres, PostgresMissing
from tests.conftest import missing
from tests.line.conftest import Device, casting_jpeg, until
from tests.line.test_runtime import activate


@pytest.fixture
def drill_pg() -> Iterator[DrillPostgres]:
    pg = DrillPostgres()
    try:
        pg.start()
    except (PostgresMissing, RuntimeError) as exc:
        pg.close()
        missing(f"a throwaway PostgreSQL could not start: {exc}")
    yield pg
    pg.close()


@dataclass
class Running:
    runtime: LineRuntime
    task: asyncio.Task[None]
    stopping: asyncio.Event
    device: Device
    store: Store
    engine: Engine

    async def stop(self) -> None:
        self.device.close()
        self.stopping.set()
        await asyncio.wait_for(self.task, 30)


async def start(settings: Settings, url: str, broker: EmbeddedNats, model: Path) -> Running:
    """A line worker on `url`, the model active, and a machine with a camera."""
    engine = database.open_store(url)
    activate(engine, model)
    runtime = LineRuntime(settings, engine, broker.url)
    stopping, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stopping, ready))
    await asyncio.wait_for(ready.wait(), 15)
    assert broker.mqtt_port is not None
    device = Device(broker.mqtt_port)
    device.state()
    return Running(runtime, task, stopping, device, Store(engine), engine)


def send_parts(device: Device, parts: range) -> None:
    for n in parts:
        device.shot(n)
        device.image(n, casting_jpeg(n))


async def test_database_restart_mid_run_loses_and_duplicates_nothing(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path, drill_pg: DrillPostgres
) -> None:
    settings = Settings(home=tmp_path / "home", join_window_s=3.0, verdict_deadline_s=2.0)
    line = await start(settings, drill_pg.url, broker, synthetic_model)
    runtime, device, store, engine = line.runtime, line.device, line.store, line.engine

    try:
        send_parts(device, range(1, 11))
        await until(lambda: store.count(t.verdicts) == 10)
        await asyncio.to_thread(drill_pg.stop)
        send_parts(device, range(11, 31))  # the plant goes on while the database is away
        told = await asyncio.to_thread(device.wait_verdicts, set(range(11, 31)), 30)
        assert runtime.health.down_since is not None, "the outage went unnoticed"
        await asyncio.to_thread(drill_pg.start)
        await until(lambda: store.count(t.verdicts) == 30, timeout=60)
        await until(lambda: store.count(t.images) == 30, timeout=30)
        await until(lambda: runtime.backlog == 0 and runtime.in_flight == 0, timeout=30)
    finally:
        await line.stop()
    # Inspected and told within the deadline although nothing could be recorded in the
    # database: never held for want of a database.
    assert set(told) == set(range(11, 31))
    assert all("deadline" not in str(v["reason"]) for v in told.values()), told
    assert len(runtime.health.outages_s) == 1
    with engine.connect() as conn:
        per_part = conn.execute(
            select(t.verdicts.c.shot_number, func.count()).group_by(t.verdicts.c.shot_number)
        ).all()
        recorded = dict(conn.execute(select(t.verdicts.c.shot_number, t.verdicts.c.verdict)).all())
    assert sorted(n for n, _ in per_part) == list(range(1, 31))
    assert all(count == 1 for _, count in per_part)
    assert {n: recorded[n] for n in told} == {n: v["verdict"] for n, v in told.items()}
    assert store.count(t.shots) == 30 and store.count(t.images) == 30
    assert store.count(t.dead_letters) == 0, "an outage is not the message's fault"
    assert runtime.verdict_counts.total() == 30, "a part was counted twice"
    engine.dispose()


async def _queue_records(url: str, machines: int, shots: int) -> int:
    """Shot records of machines without a camera, straight into JetStream: the backlog
    a hall builds up while the database is away."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    sent = []
    for n in range(shots):
        machine = f"rec-{n % machines}"
        shot = ShotMessage(
            plant="p1",
            machine=machine,
            shot_number=1 + n // machines,
            die="D-REC",
            ts=datetime.now(UTC),
            params={"melt_temp_c": 680.0},
        )
        sent.append(js.publish(f"castline.v1.p1.{machine}.shot", shot.to_json()))
        if len(sent) >= 500:
            await asyncio.gather(*sent)
            sent.clear()
    await asyncio.gather(*sent)
    await nc.close()
    return shots


async def test_after_an_outage_fresh_photos_are_decided_before_the_backlog(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path, drill_pg: DrillPostgres
) -> None:
    """Thousands of records wait while the database is away; when it is back, the parts
    made then are told their verdicts within the deadline, while the backlog is still being
    written: photos have their own queue and never wait behind records."""
    settings = Settings(
        home=tmp_path / "home",
        join_window_s=3.0,
        verdict_deadline_s=2.0,
        machines_without_camera=("p1/rec-*",),
    )
    line = await start(settings, drill_pg.url, broker, synthetic_model)
    runtime, device, store, engine = line.runtime, line.device, line.store, line.engine
    backlog = 8000

    try:
        send_parts(device, range(1, 4))
        await until(lambda: store.count(t.verdicts) == 3)
        await asyncio.to_thread(drill_pg.stop)
        await _queue_records(broker.url, 20, backlog)
        await until(lambda: runtime.health.down_since is not None, timeout=15)
        await asyncio.to_thread(drill_pg.start)
        await asyncio.to_thread(send_parts, device, range(4, 14))  # the first after the outage
        told = await asyncio.to_thread(device.wait_verdicts, set(range(4, 14)), 30)
        recorded_when_told = store.count(t.shots)
        await until(lambda: store.count(t.shots) == backlog + 13, timeout=120)
        await until(lambda: store.count(t.verdicts) == 13, timeout=30)
    finally:
        await line.stop()
    assert all("deadline" not in str(v["reason"]) for v in told.values()), told
    assert all(v["verdict"] != "QUARANTINE" for v in told.values()), told
    print(f"shots recorded when the fresh parts were told: {recorded_when_told} of {backlog + 13}")
    with engine.connect() as conn:
        per_shot = (
            conn.execute(
                select(func.count())
                .select_from(t.shots)
                .group_by(t.shots.c.machine, t.shots.c.shot_number)
            )
            .scalars()
            .all()
        )
    assert set(per_shot) == {1}, "a shot was recorded twice"
    assert store.count(t.dead_letters) == 0
    engine.dispose()
