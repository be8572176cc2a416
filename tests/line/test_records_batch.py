"""Batched records, exactly once: a real NATS, a real PostgreSQL, one line worker.

A batch is fetched many records at a time (`messaging/pull.py`), written in one
transaction (COPY from 200 rows on) and acknowledged only after its commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from sqlalchemy import Engine, create_engine, func, select, text

from castline.line.runtime import LineRuntime
from castline.messaging import jetstream, pull
from castline.messaging.broker import EmbeddedNats
from castline.messaging.schema import ShotMessage
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.bulk import BULK_MIN_ROWS, copy_insert_ignore
from castline.store.facts import Facts, record_facts
from castline.store.repository import Store
from tests.conftest import PG_ADMIN_URL

MACHINES = 10
START = datetime(2026, 11, 30, 8, tzinfo=UTC)


def shot(n: int) -> tuple[str, bytes]:
    machine = f"m{n % MACHINES}"
    message = ShotMessage(
        plant="p1",
        machine=machine,
        shot_number=n // MACHINES,
        die=f"D{n % MACHINES}",
        ts=START + timedelta(seconds=n),
        params={"melt_temp_c": 680.0 + n % 7, "v2_mps": 4.0},
    )
    return f"castline.v1.p1.{machine}.shot", message.to_json()


@dataclass
class Worker:
    runtime: LineRuntime
    store: Store
    js: JetStreamContext


@pytest.fixture
async def worker(tmp_path: Path, broker: EmbeddedNats, pg_engine: Engine) -> AsyncIterator[Worker]:
    database.upgrade(pg_engine)
    settings = Settings(home=tmp_path / "home", machines_without_camera=("*",))
    runtime = LineRuntime(settings, pg_engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = await started(runtime, stop, ready)
    nc = await nats.connect(broker.url)
    yield Worker(runtime, Store(pg_engine), nc.jetstream())
    await nc.close()
    stop.set()
    await asyncio.wait_for(task, 30)


async def started(
    runtime: LineRuntime, stop: asyncio.Event, ready: asyncio.Event
) -> asyncio.Task[None]:
    task = asyncio.create_task(runtime.run(stop, ready))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiting}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # its error, if it failed to start
    assert ready.is_set(), "the worker did not start in time"
    return task


async def publish(js: JetStreamContext, messages: list[tuple[str, bytes]]) -> None:
    for subject, data in messages:
        await js.publish(subject, data)


async def line_consumer(js: JetStreamContext) -> tuple[int, int, int]:
    """(pending, unacknowledged, deliveries so far) of the line's records consumer: a
    message given back and delivered again counts twice in the last."""
    for info in await js.consumers_info(jetstream.STREAM):
        if info.config.durable_name and "photo" not in info.config.durable_name:
            pending, held = int(info.num_pending or 0), int(info.num_ack_pending or 0)
            return pending, held, int(info.delivered.consumer_seq or 0)
    raise AssertionError("no line consumer")


async def settled(worker: Worker, shots: int, timeout: float = 90) -> tuple[int, int, int]:
    """Wait until every shot is recorded and the consumer holds nothing unacknowledged."""
    state = (0, 0, 0)
    for _ in range(int(timeout / 0.2)):
        state = await line_consumer(worker.js)
        count = await asyncio.to_thread(worker.store.count, t.shots)
        if count >= shots and state[:2] == (0, 0):
            return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"not settled: consumer {state}")


async def delivered_more_than(js: JetStreamContext, n: int, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.2)):
        if (await line_consumer(js))[2] > n:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no message was delivered again (of {n})")


def recorded(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(t.shots.c.machine, t.shots.c.shot_number)).all()
    return sorted((str(m), int(n)) for m, n in rows)


async def test_batches_are_recorded_once_though_sent_twice_and_a_bad_record_is_dead_lettered(
    worker: Worker, pg_engine: Engine
) -> None:
    """600 shots (more than one fetch; COPY-sized batches), a record that is not JSON among
    them, then the first 300 sent again (what a redelivery after a crash looks like to
    the store): every shot once, the bad one dead-lettered with its reason, all acked."""
    messages = [shot(n) for n in range(600)]
    await publish(worker.js, [*messages[:250], ("castline.v1.p1.m3.shot", b"{not json")])
    await publish(worker.js, messages[250:])
    await publish(worker.js, messages[:300])
    await settled(worker, 600)
    expected = sorted((f"m{n % MACHINES}", n // MACHINES) for n in range(600))
    assert recorded(pg_engine) == expected
    with pg_engine.connect() as conn:
        reasons = conn.execute(select(t.dead_letters.c.reason)).scalars().all()
    assert len(reasons) == 1 and "not JSON" in reasons[0]


async def test_a_batch_whose_write_fails_is_not_acknowledged_and_comes_back(
    tmp_path: Path, broker: EmbeddedNats, pg_engine: Engine
) -> None:
    """The shots table is locked by another session and the worker's statements time out:
    the batch's transaction fails, its messages are given back, not acknowledged; once the
    lock goes they come back and are recorded, once each."""
    database.upgrade(pg_engine)
    name = pg_engine.url.database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"ALTER DATABASE \"{name}\" SET statement_timeout = '700ms'"))
    admin.dispose()
    pg_engine.dispose()  # new sessions take the timeout
    locker = pg_engine.connect()
    locker.execute(text("SET statement_timeout = 0"))
    locker.execute(text("LOCK TABLE shots IN ACCESS EXCLUSIVE MODE"))  # held until commit
    settings = Settings(home=tmp_path / "home", machines_without_camera=("*",))
    runtime = LineRuntime(settings, pg_engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = await started(runtime, stop, ready)
    try:
        nc = await nats.connect(broker.url)
        worker = Worker(runtime, Store(pg_engine), nc.jetstream())
        await publish(worker.js, [shot(n) for n in range(300)])
        await delivered_more_than(worker.js, 300)  # failed, given back, delivered again
        locker.commit()
        locker.close()
        await settled(worker, 300)
        assert recorded(pg_engine) == sorted(
            (f"m{n % MACHINES}", n // MACHINES) for n in range(300)
        )
        with pg_engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.dead_letters)).scalar() == 0
        await nc.close()
    finally:
        if not locker.closed:
            locker.rollback()
            locker.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_fetch_takes_what_is_waiting_in_batches_and_times_out_when_nothing_is(
    broker: EmbeddedNats,
) -> None:
    nc = await nats.connect(broker.url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    await publish(js, [shot(n) for n in range(700)])
    sub = await js.pull_subscribe("castline.v1.>", durable="batch_test")
    first = await pull.fetch(sub, 512, timeout=2)
    second = await pull.fetch(sub, 512, timeout=2)
    assert (len(first), len(second)) == (512, 188)
    seqs = [m.metadata.sequence.stream for m in first + second]
    assert sorted(seqs) == list(range(1, 701))  # each once, none lost
    assert await pull.ack_all(first + second) == 700
    with pytest.raises(nats.errors.TimeoutError):
        await pull.fetch(sub, 512, timeout=0.5)
    await nc.close()


def test_a_copied_batch_counts_only_the_rows_it_added(pg_engine: Engine) -> None:
    database.upgrade(pg_engine)
    rows = [{"id": f"p{i}", "name": f"plant {i}"} for i in range(BULK_MIN_ROWS + 50)]
    with pg_engine.begin() as conn:
        assert copy_insert_ignore(conn, t.plants, rows[:BULK_MIN_ROWS]) == BULK_MIN_ROWS
    with pg_engine.begin() as conn:  # the last half again, and 50 new: only those are added
        assert copy_insert_ignore(conn, t.plants, rows[BULK_MIN_ROWS // 2 :]) == 50
    assert Store(pg_engine).count(t.plants) == BULK_MIN_ROWS + 50


def test_a_batch_writes_only_the_dies_not_known_to_be_recorded(pg_engine: Engine) -> None:
    """The line tells the batch which dies earlier batches recorded; a new die is still
    made sure of before its shots (their foreign key)."""
    database.upgrade(pg_engine)
    first = [ShotMessage.model_validate_json(shot(n)[1]).to_shot() for n in range(MACHINES)]
    record_facts(pg_engine, Facts(machines={("p1", f"m{i}") for i in range(MACHINES)}, shots=first))
    later = [ShotMessage.model_validate_json(shot(n)[1]).to_shot() for n in range(10, 20)]
    later.append(replace(later[0], key=replace(later[0].key, shot_number=99), die="NEW"))
    record_facts(pg_engine, Facts(shots=later, known_dies=frozenset(s.die for s in first)))
    store = Store(pg_engine)
    assert store.count(t.dies) == MACHINES + 1
    assert store.count(t.shots) == 2 * MACHINES + 1
