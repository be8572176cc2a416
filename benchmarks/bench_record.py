"""Telemetry recording end to end: JetStream -> line worker -> PostgreSQL, in records/s.

    .venv/bin/python benchmarks/bench_record.py [--shots 20000] [--workers 1 2] [--pin]

N shot records (12 process parameters each, no photos) are queued in a fresh embedded
NATS; then, in the same run, (1) the raw JetStream rate: one consumer pulls and acks them
all without doing anything else, and (2) for each worker count, `castline line run`
processes on a fresh PostgreSQL database record them all (timed from the first rows
recorded: worker start-up is left out). Printed: each rate, and the ratio to the raw rate
of the same run. With --pin each worker gets a core of its own (taskset). The machines are
set up without cameras (setting machines_without_camera): their shots are recorded only.
With two or more worker counts, the scaling of each against the first is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from sqlalchemy import create_engine, text

from castline.domain.units import NAMES
from castline.messaging import jetstream
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ShotMessage
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MACHINES = 100


async def queue(url: str, shots: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    start = datetime.now(UTC) - timedelta(hours=1)
    params = {name: 100.0 + i for i, name in enumerate(NAMES[:12])}
    pending = []
    for n in range(shots):
        machine = f"m{n % MACHINES}"
        shot = ShotMessage(
            plant="p1",
            machine=machine,
            shot_number=n // MACHINES,
            die=f"D{n % MACHINES}",
            ts=start + timedelta(milliseconds=n),
            params=params,
        )
        pending.append(js.publish(f"castline.v1.p1.{machine}.shot", shot.to_json()))
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await nc.close()


async def raw_rate(url: str, shots: int) -> float:
    """Pull and ack every queued message with a consumer of its own: the ceiling."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe("castline.v1.>", durable=f"raw{uuid.uuid4().hex[:6]}")
    started, done = time.perf_counter(), 0
    while done < shots:
        try:
            batch = await sub.fetch(256, timeout=1)
        except (nats.errors.TimeoutError, TimeoutError):
            continue
        await asyncio.gather(*(m.ack() for m in batch))
        done += len(batch)
    rate = shots / (time.perf_counter() - started)
    await nc.close()
    return rate


def fresh_database() -> tuple[str, str]:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"castline_rec_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(name)
    database.upgrade(database.connect(url))
    return name, url


def make_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def workers_rate(nats_url: str, shots: int, workers: int, pin: bool, home: Path) -> float:
    """`castline line run` workers on a fresh database, timed until every shot is in it."""
    name, db_url = fresh_database()
    env = os.environ | {
        "CASTLINE_HOME": str(home),
        "CASTLINE_DATABASE_URL": db_url,
        # Records only: these machines have no camera, so no part waits for a photo.
        "CASTLINE_MACHINES_WITHOUT_CAMERA": '["*"]',
    }
    command = [sys.executable, "-m", "castline.cli", "line", "run", "--nats", nats_url]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            (["taskset", "-c", str(i % os.cpu_count()), *command] if pin else command),  # type: ignore[operator]
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    store = Store(database.connect(db_url))
    first: tuple[float, int] | None = None  # worker start-up is left out: from the first rows
    try:
        while (count := store.count(t.shots)) < shots:
            if first is None and count:
                first = (time.perf_counter(), count)
            time.sleep(0.1)
            if time.perf_counter() - started > 900:
                raise RuntimeError("the workers did not record everything in 15 minutes")
        begun, already = first or (started, 0)
        return (shots - already) / (time.perf_counter() - begun)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
        store.engine.dispose()
        drop(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shots", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            with EmbeddedNats(Path(tmp) / f"nats{workers}", port=free_port(), mqtt_port=None) as b:
                asyncio.run(queue(b.url, args.shots))
                raw = asyncio.run(raw_rate(b.url, args.shots))
                rate = workers_rate(b.url, args.shots, workers, args.pin, Path(tmp) / "home")
            results[f"raw pull+ack, run of {workers} worker(s)"] = round(raw)
            results[f"{workers} worker(s) -> PostgreSQL"] = round(rate)
            results[f"{workers} worker(s) / raw"] = round(rate / raw, 3)
            print(f"{workers} worker(s): {rate:,.0f} shots/s recorded; raw {raw:,.0f}/s; "
                  f"ratio {rate / raw:.3f}", flush=True)  # fmt: skip
    first = args.workers[0]
    for workers in args.workers[1:]:
        scale = (
            results[f"{workers} worker(s) -> PostgreSQL"]
            / results[f"{first} worker(s) -> PostgreSQL"]
        )
        results[f"{workers} vs {first} worker(s)"] = round(scale, 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
