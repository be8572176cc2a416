"""The dashboard's and analytics' reads on a large, time-partitioned history in PostgreSQL.

Generates N shots (with a verdict each, machine states, a few reviews) straight in a fresh
database with set-based SQL (generate_series), spread over `--plants` plants x 9 machines
over one year, through the schema `castline db upgrade` makes (migration 0012: monthly
partitions; 0013: hourly counts), and runs the line's hourly duty once
(`rollups.keep_rollups`: the year's hours counted). Then times castline's own reads, the
ones the web and analytics call, with varied plants, machines and parts: the dashboard
overview (`web.queries.machine_tiles`), the plant list (`web.queries.plants`), the part
page (`Reads.part`), the part lists (`Reads.shots`: the API's 200 of a plant, the
machine page's 25) and the KPIs of one month of one plant (`analytics.kpis.kpi_table`,
by day and machine), from the hourly counts and, as the reference, from every shot.
Prints p50 and p95. The database is dropped at the end, also after an error or Ctrl-C,
unless `--keep`; `--database NAME` measures a kept one again without loading.

    .venv/bin/python benchmarks/bench_history.py --shots 10000000 [--plants 100]
        [--repeat 30] [--keep | --database NAME]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

With fewer plants at a smaller N, each plant holds as many shots as at a larger N with
more plants (10,000,000 shots over 10 plants: 1,000,000 a plant-year, as 100,000,000 over
100 plants): the month KPI reads the same rows; the other reads go by index.
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine, create_engine, text

from castline.analytics import kpis
from castline.domain.shot import PartKey
from castline.domain.units import NAMES
from castline.store import database, partitions, rollups
from castline.store.reads import Reads
from castline.web import queries

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 365
MACHINES = 9
STATES_A_DAY = 12  # a state change every two hours per machine
# tables loaded with their indexes dropped and made again after (far faster)
LOADED = ("shots", "verdicts", "machine_states", "reviews")


def main() -> None:
    args = _args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still drops the database
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = args.database or f"castline_bench_history_{uuid.uuid4().hex[:8]}"
    with _database(admin, name, args.keep or bool(args.database), new=not args.database) as engine:
        per_machine = args.shots // (args.plants * MACHINES)
        print(f"database {name}: {args.plants} plants x {MACHINES} machines x {per_machine:,}")
        if not args.database:
            started = time.perf_counter()
            load(engine, args.plants, per_machine)
            print(f"loaded in {time.perf_counter() - started:,.0f} s; {_sizes(engine)}")
        started = time.perf_counter()  # the line's hourly duty, the year's hours at once
        rows = rollups.keep_rollups(engine, T0 + timedelta(days=DAYS))
        print(f"hours rolled up in {time.perf_counter() - started:,.0f} s: {rows:,} rows")
        measure(engine, args.plants, per_machine, args.repeat)


@contextmanager
def _database(admin: Engine, name: str, keep: bool, new: bool = True) -> Iterator[Engine]:
    if new:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = database.connect(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:  # always: an error, Ctrl-C or a kill by SIGTERM ends here too
        engine.dispose()
        if not keep:  # kept: to look at plans (EXPLAIN ANALYZE); drop it by hand after
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        print(f"database {name} {'kept' if keep else 'dropped'}", flush=True)


def load(engine: Engine, plants: int, per_machine: int) -> None:
    database.upgrade(engine)
    for month in range(13):  # partitions of the year, as the line's duty makes them
        partitions.ensure_partitions(engine, partitions.add_months(T0, month), ahead=0)
    with engine.begin() as conn:
        saved = _drop_indexes(conn)
        conn.execute(text("ALTER TABLE shots DISABLE TRIGGER shot_once"))  # unique by making
        _master_data(conn, plants)
    step = DAYS * 86_400 / per_machine
    for month in range(12):  # one transaction a month of the year: progress, and WAL in bounds
        first = int(month * per_machine / 12) + 1
        last = int((month + 1) * per_machine / 12)
        with engine.begin() as conn:
            _month(conn, plants, first, last, step)
        print(f"  month {month + 1}/12 loaded ({last * plants * MACHINES:,} shots)", flush=True)
    with engine.begin() as conn:
        _states(conn, plants)
        conn.execute(text("INSERT INTO shot_keys SELECT plant, machine, shot_number FROM shots"))
        conn.execute(text("ALTER TABLE shots ENABLE TRIGGER shot_once"))
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        for statement in saved:
            conn.execute(text(statement))
    print("  indexes made", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def _drop_indexes(conn: Any) -> list[str]:
    """Drop the loaded tables' indexes and keys; return the statements that make them again."""
    saved: list[str] = []
    for table in LOADED:
        found = conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = to_regclass(:t) AND contype IN ('p', 'u')"
            ),
            {"t": table},
        ).all()
        for name, definition in found:
            conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
            saved.append(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        found = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            ),
            {"t": table},
        ).all()
        for name, definition in found:
            conn.execute(text(f'DROP INDEX "{name}"'))
            # "ON ONLY" would make the parent's index alone, and none on the partitions
            saved.append(definition.replace(" ON ONLY ", " ON "))
    return saved


def _master_data(conn: Any, plants: int) -> None:
    every = f"generate_series(1, {plants}) p, generate_series(1, {MACHINES}) m"
    plants_sql = f"SELECT 'p' || p, 'plant ' || p FROM generate_series(1, {plants}) p"
    conn.execute(text(f"INSERT INTO plants {plants_sql}"))
    conn.execute(
        text(
            "INSERT INTO machines (plant, id, name, views) "
            f"SELECT 'p' || p, 'm' || m, 'm' || m, '[\"top\"]' FROM {every}"
        )
    )
    conn.execute(
        text(
            "INSERT INTO dies (code, part_name, rated_life_shots, shot_counter, machine, plant) "
            f"SELECT 'd' || p || '_' || m, 'housing', 100000, 0, 'm' || m, 'p' || p FROM {every}"
        )
    )


# The values below are numbers castline makes, written into the SQL as literals.
def _month(conn: Any, plants: int, first: int, last: int, step: float) -> None:
    """Shots first..last of every machine, a verdict for each, a person's review for
    one in 250."""
    every = (
        f"generate_series(1, {plants}) p, generate_series(1, {MACHINES}) m, "
        f"generate_series({first}, {last}) i"
    )
    at = f"'{T0.isoformat()}'::timestamptz + make_interval(secs => i * {step!r} + m"
    params = ", ".join(NAMES)
    values = ", ".join("50 + 100 * random()" for _ in NAMES)
    conn.execute(
        text(
            f"INSERT INTO shots (plant, machine, shot_number, die, at, trial, {params}, extra) "
            f"SELECT 'p' || p, 'm' || m, i, 'd' || p || '_' || m, {at}), false, {values}, '{{}}' "
            f"FROM {every}"
        )
    )
    verdict = "CASE WHEN r < 0.97 THEN 'OK' WHEN r < 0.99 THEN 'NG' ELSE 'REVIEW' END"
    conn.execute(
        text(
            "INSERT INTO verdicts (plant, machine, shot_number, cavity, verdict, score, reason, "
            "model_version, decided_at, latency_ms, regions, timings) "
            f"SELECT 'p' || p, 'm' || m, i, 1, {verdict}, r, '', 'v1', {at} + 2), 40, '[]', '{{}}' "
            f"FROM {every}, LATERAL (SELECT random() + 0 * i AS r) x"
        )
    )
    conn.execute(
        text(
            "INSERT INTO reviews (plant, machine, shot_number, cavity, decision, reviewer, "
            f"comment, at) SELECT 'p' || p, 'm' || m, i, 1, 'OK', 'qa', '', {at} + 600) "
            f"FROM {every} WHERE i % 250 = 0"
        )
    )


def _states(conn: Any, plants: int) -> None:
    changes = DAYS * STATES_A_DAY
    at = f"'{T0.isoformat()}'::timestamptz + make_interval(secs => k * {86_400 / STATES_A_DAY} + m)"
    conn.execute(
        text(
            "INSERT INTO machine_states (plant, machine, state, at, die, reason) "
            "SELECT 'p' || p, 'm' || m, CASE WHEN k % 6 = 5 THEN 'idle' ELSE 'running' END, "
            f"{at}, 'd' || p || '_' || m, '' FROM generate_series(1, {plants}) p, "
            f"generate_series(1, {MACHINES}) m, generate_series(0, {changes - 1}) k"
        )
    )


def _sizes(engine: Engine) -> str:
    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
        return f"database size {size.scalar_one()}"


def measure(engine: Engine, plants: int, per_machine: int, repeat: int) -> None:
    rng = random.Random(1)
    reads = Reads(engine)
    end = T0 + timedelta(days=DAYS)
    day = end - timedelta(days=1)  # the data's last day, as "today"
    newest = partial(reads.shots, limit=25)

    def plant() -> str:
        return f"p{rng.randint(1, plants)}"

    def month() -> datetime:
        return partitions.add_months(T0, rng.randint(0, 11))

    def machine() -> str:
        return f"m{rng.randint(1, MACHINES)}"

    def part() -> PartKey:
        return PartKey(plant(), machine(), rng.randint(1, per_machine))

    cases: list[tuple[str, Callable[[], object], int]] = [
        ("overview: machine tiles", lambda: queries.machine_tiles(engine, plant(), day), repeat),
        ("plant list (home page)", lambda: queries.plants(engine, None), repeat),
        ("part page", lambda: reads.part(part()), repeat),
        ("part list: a plant's newest 200", lambda: reads.shots(plant(), limit=200), repeat),
        ("part list: a machine's newest 25", lambda: newest(plant(), machine=machine()), repeat),
        ("KPI of a month, one plant", lambda: _kpis(engine, plant(), month()), max(3, repeat // 5)),
        ("KPI of a month from every shot", lambda: _kpis(engine, plant(), month(), True), 3),
    ]  # fmt: skip
    print(f"{'read':34} {'runs':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for name, call, runs in cases:
        call()  # warm: the first read of a plant pays for the cache
        took = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            took.append((time.perf_counter() - start) * 1000)
        p95 = statistics.quantiles(took, n=20, method="inclusive")[-1]  # runs >= 3
        figures = f"{statistics.median(took):>9.1f} {p95:>9.1f} {max(took):>9.1f}"
        print(f"{name:34} {runs:>5} {figures}", flush=True)


def _kpis(engine: Engine, plant: str, start: datetime, from_shots: bool = False) -> int:
    until = partitions.add_months(start, 1)
    rows = kpis.kpi_table(engine, plant, start, until, from_shots=from_shots)
    return len(rows)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=int, default=1_000_000)
    parser.add_argument("--plants", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database after")
    parser.add_argument("--database", help="measure this kept database again (no load)")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    return parser.parse_args()


if __name__ == "__main__":
    main()
