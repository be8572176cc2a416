"""The database goes away mid-run: inspection goes on, each verdict journaled in JetStream
and told to the cell within its deadline; when the database is back everything is recorded
as it was told. Nothing is lost, no part gets two verdicts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats
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


async def test_database_restart_mid_run_loses_and_duplicates_nothing(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path, drill_pg: DrillPostgres
) -> None:
    settings = Settings(home=tmp_path / "home", join_window_s=3.0, verdict_deadline_s=2.0)
    engine = database.open_store(drill_pg.url)
    activate(engine, synthetic_model)
    runtime = LineRuntime(settings, engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 15)
    assert broker.mqtt_port is not None
    device = Device(broker.mqtt_port)
    device.state()
    store = Store(engine)

    def send(parts: range) -> None:
        for n in parts:
            device.shot(n)
            device.image(n, casting_jpeg(n))

    try:
        send(range(1, 11))
        await until(lambda: store.count(t.verdicts) == 10)
        await asyncio.to_thread(drill_pg.stop)
        send(range(11, 31))  # the plant goes on while the database is away
        told = await asyncio.to_thread(device.wait_verdicts, set(range(11, 31)), 30)
        assert runtime.health.down_since is not None, "the outage went unnoticed"
        await asyncio.to_thread(drill_pg.start)
        await until(lambda: store.count(t.verdicts) == 30, timeout=60)
        await until(lambda: store.count(t.images) == 30, timeout=30)
        await until(lambda: runtime.backlog == 0 and runtime.in_flight == 0, timeout=30)
    finally:
        device.close()
        stop.set()
        await asyncio.wait_for(task, 30)
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
