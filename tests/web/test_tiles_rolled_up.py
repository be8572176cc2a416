"""The overview's tiles are the same whether the hourly counts exist or not: their skip
scans start at the rolled month, the newest shots at the oldest machine's newest hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from castline.domain.shot import PartKey, Shot
from castline.store import database, partitions, rollups
from castline.store import tables as t
from castline.store.repository import Store
from castline.web import queries

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def test_tiles_alike_with_and_without_the_hourly_counts(engine: Engine) -> None:
    database.upgrade(engine)
    store = Store(engine)
    old = NOW - timedelta(days=70)
    partitions.ensure_partitions(engine, now=old, ahead=3)
    store.record_shots(
        [Shot(PartKey("p1", "m1", n), "d1", old + timedelta(minutes=n), {}) for n in (1, 2)]
    )
    store.record_shots([Shot(PartKey("p1", "m2", 7), "d2", NOW - timedelta(days=40), {})])
    store.record_shots([Shot(PartKey("p1", "m2", 8), "d2", NOW, {})])  # the open hour
    store.record_shots([Shot(PartKey("p1", "m3", 1), "d3", NOW, {})])  # never counted
    since = NOW - timedelta(days=1)
    before = queries.machine_tiles(engine, "p1", since)
    rollups.keep_rollups(engine, NOW)
    with engine.begin() as conn:  # not a registered machine: found from the facts only
        conn.execute(t.machines.delete())
    after = queries.machine_tiles(engine, "p1", since)
    assert [(x["machine"], x["shot_number"], x["die"]) for x in after] == [
        ("m1", 2, "d1"),
        ("m2", 8, "d2"),
        ("m3", 1, "d3"),
    ]
    assert [{k: v for k, v in x.items() if k != "name"} for x in after] == [
        {k: v for k, v in x.items() if k != "name"} for x in before
    ]
