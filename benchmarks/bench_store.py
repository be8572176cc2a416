"""Write 100,000 shots through the store into SQLite and PostgreSQL; print rows per second.

Then write the same shots again and show that no row was added (idempotent writes).

    .venv/bin/python benchmarks/bench_store.py [--shots 100000] [--batch 1000]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, create_engine, text

from castline.domain.shot import PartKey, Shot
from castline.domain.units import NAMES
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fleet_shots(n: int, machines: int = 9, seed: int = 7) -> list[Shot]:
    rng = np.random.default_rng(seed)
    values = rng.normal(100.0, 10.0, size=(n, len(NAMES)))
    return [
        Shot(
            key=PartKey("bench", f"m{i % machines}", i // machines),
            die=f"die{i % machines}",
            at=T0 + timedelta(seconds=4.4 * i),
            params=dict(zip(NAMES, map(float, values[i]), strict=True)),
        )
        for i in range(n)
    ]


def batches(shots: list[Shot], size: int) -> Iterator[list[Shot]]:
    for start in range(0, len(shots), size):
        yield shots[start : start + size]


def write_all(store: Store, shots: list[Shot], batch: int) -> tuple[int, float]:
    start = time.perf_counter()
    added = sum(store.record_shots(chunk) for chunk in batches(shots, batch))
    return added, time.perf_counter() - start


def run(name: str, engine: Engine, shots: list[Shot], batch: int) -> None:
    database.upgrade(engine)
    store = Store(engine)
    added, seconds = write_all(store, shots, batch)
    again, seconds_again = write_all(store, shots, batch)
    rows = store.count(t.shots)
    points = sum(len(shot.params) for shot in shots) * added / len(shots)
    print(
        f"{name:10} first write : {added:7d} rows in {seconds:6.2f} s = "
        f"{added / seconds:9.0f} rows/s = {points / seconds:9.0f} data points/s"
    )
    print(
        f"{name:10} second write: {again:7d} rows added in {seconds_again:6.2f} s; "
        f"table holds {rows} rows"
    )
    if again or rows != len(shots):
        raise SystemExit(f"{name}: writes are not idempotent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    shots = fleet_shots(args.shots)
    print(f"{len(shots)} shots, {len(NAMES)} parameters each, batches of {args.batch}")
    with tempfile.TemporaryDirectory() as tmp:
        engine = database.connect(f"sqlite:///{Path(tmp) / 'bench.db'}")
        run("SQLite", engine, shots, args.batch)
        engine.dispose()
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"castline_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        engine = database.connect(admin.url.set(database=name).render_as_string(False))
        run("PostgreSQL", engine, shots, args.batch)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
