"""Hostile input at volume: 10,000 messages, half of them hostile, through a real broker
into one line worker, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_fuzz.py [--count 10000] [--seed 7]

Prints, per database: messages, good ones recorded, bad ones dead-lettered (with the
count per case), messages that needed more than one delivery, whether the worker is
still running, and messages per second while it worked through the queue. Exit code 1
if any message was lost, recorded twice, or the worker stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats, free_port
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store
from castline.testing.hostile import Sent, messages, queue

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


async def run_once(engine: Engine, sent: list[Sent], home: Path) -> dict[str, Any]:
    database.upgrade(engine)
    with EmbeddedNats(home / "nats", port=free_port(), mqtt_port=None) as broker:
        await queue(broker.url, sent)
        runtime = LineRuntime(Settings(home=home), engine, broker.url)
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(runtime.run(stop, ready))
        await asyncio.wait_for(ready.wait(), 30)
        store, good = Store(engine), sum(m.good for m in sent)
        started = time.perf_counter()
        while store.count(t.shots) < good or runtime.backlog or runtime.in_flight:
            await asyncio.sleep(0.2)
            if time.perf_counter() - started > 600 or task.done():
                break
        seconds = time.perf_counter() - started
        alive = not task.done()
        stop.set()
        await asyncio.wait_for(task, 30)
    bad = Counter(m.case for m in sent if not m.good)
    return {
        "messages": len(sent),
        "good": good,
        "recorded": store.count(t.shots),
        "bad": bad.total(),
        "dead_letters": store.count(t.dead_letters),
        "retried": int(runtime.metrics.errors._value.get()),
        "worker_alive": alive,
        "messages_per_s": round(len(sent) / seconds, 1),
        "cases": dict(sorted(bad.items())),
    }


def pg_engine() -> tuple[Engine, Engine, str]:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"castline_fuzz_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    return admin, database.connect(url), name


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sent = list(messages(args.count, seed=args.seed))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = database.connect(f"sqlite:///{Path(tmp) / 'fuzz.db'}")
        results["sqlite"] = await run_once(sqlite, sent, Path(tmp) / "sqlite")
        sqlite.dispose()
        admin, pg, name = pg_engine()
        try:
            results["postgresql"] = await run_once(pg, sent, Path(tmp) / "pg")
        finally:
            pg.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(json.dumps(results, indent=2))
    ok = all(
        r["recorded"] == r["good"] and r["dead_letters"] == r["bad"] and r["worker_alive"]
        for r in results.values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
