"""Hostile input through the real broker into a running line, on both databases.

Every bad message becomes exactly one dead letter on its first delivery, every good one
exactly one record, and the worker is still running at the end.
(`benchmarks/bench_fuzz.py` runs the same with 10,000 messages.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine

from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store
from castline.testing.hostile import CASES, messages, queue

from .conftest import until

COUNT = 400


async def test_every_bad_message_is_dead_lettered_once_and_every_good_one_recorded(
    tmp_path: Path, broker: EmbeddedNats, engine: Engine
) -> None:
    database.upgrade(engine)
    sent = list(messages(COUNT, seed=11))
    assert {m.case for m in sent} >= set(CASES), "every hostile case is in the run"
    await queue(broker.url, sent)

    settings = Settings(home=tmp_path / "home", verdict_deadline_s=5.0)
    runtime = LineRuntime(settings, engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 15)
    store = Store(engine)
    good = sum(m.good for m in sent)
    bad = Counter(m.case for m in sent if not m.good)
    await until(lambda: runtime.backlog == 0 and store.count(t.shots) == good, timeout=60)
    await asyncio.sleep(1.0)  # room for a late, wrong extra row
    assert not task.done(), "the worker stopped"
    stop.set()
    await asyncio.wait_for(task, 20)
    assert store.count(t.shots) == good
    assert store.count(t.dead_letters) == bad.total(), bad
    assert runtime.dead_letter_count == bad.total()
    assert runtime.metrics.errors._value.get() == 0, "each bad message refused at once"
