"""Time partitions of the record's large tables on PostgreSQL (migration 0012).

`shots` and `machine_states` are partitioned by range of `at` (native declarative
partitioning): partitions of whole months (`history_partition_months`, aligned to
January), made ahead of time by `ensure_partitions` (every `open_store` and the line's
hourly duty), and a DEFAULT partition that takes any row no partition covers, so a shot
from a far past or future clock is stored, never refused. A partition made for rows
already in the default one takes them over in the same transaction.

Retention drops whole partitions (`drop_history`): no row-by-row delete of millions of
shots. SQLite stays one unpartitioned table per fact; there these functions do nothing
but the row deletes of `drop_history`. With the blob store given, the photos and heat
maps of the parts dropped go too, where no part that stays refers to them (the digests
found set-wise in SQL; the files removed after the commit). The hourly counts of
`shot_hours` (the KPIs' roll-up, a few rows a machine-hour) are kept: a plant's KPI
trend outlives its shots.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, text

from castline.store import rollups
from castline.store import tables as t
from castline.store.blobs import BlobStore

PARTITIONED = ("shots", "machine_states")
AHEAD_MONTHS = 3  # partitions exist this far ahead of now, so the line never waits on DDL
# Rows about a shot's part in tables not partitioned: retention deletes them with the shot.
PART_TABLES = ("verdicts", "images", "reviews", "truths", "part_marks", "shot_curves")
KEYS = "shot_keys"  # PostgreSQL: the shot numbers recorded (migration 0012)
BLOB_COLUMNS = (("images", "blob"), ("images", "heatmap"), ("verdicts", "heatmap"))
_GONE = "_gone_blobs"  # digests of the parts being dropped, for the blob store

_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    start: datetime
    end: datetime


def is_partitioned(conn: Connection, table: str = "shots") -> bool:
    """True where `table` is a partitioned PostgreSQL table (migration 0012 ran there)."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    ).scalar()
    return kind == "p"


def period_start(at: datetime, months: int = 1) -> datetime:
    """The first instant of the partition period holding `at` (UTC, aligned to January)."""
    at = at.astimezone(UTC)
    month0 = (at.month - 1) // months * months
    return datetime(at.year, month0 + 1, 1, tzinfo=UTC)


def add_months(at: datetime, months: int) -> datetime:
    """The first instant (UTC) of the month `months` after the month of `at`."""
    at = at.astimezone(UTC)
    index = at.year * 12 + at.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partitions(conn: Connection, table: str) -> list[Partition]:
    """The range partitions of `table`, oldest first (the default partition is not one)."""
    conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))  # bounds are printed in the session zone
    found = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": table},
    )
    out = []
    for name, bound in found:
        match = _BOUND.search(bound or "")
        if match:  # not the DEFAULT partition
            start, end = (datetime.fromisoformat(x).astimezone(UTC) for x in match.groups())
            out.append(Partition(table, name, start, end))
    return sorted(out, key=lambda p: p.start)


def ensure_partitions(
    engine: Engine, now: datetime | None = None, months: int = 1, ahead: int = AHEAD_MONTHS
) -> list[str]:
    """Create the partitions of the current period and of `ahead` months after it, where
    missing; return the names created. Nothing on SQLite or an unpartitioned database."""
    now = now or datetime.now(UTC)
    created = []
    with engine.begin() as conn:
        if not is_partitioned(conn):
            return []
        start = period_start(now, months)
        while start <= add_months(now, ahead):
            end = add_months(start, months)
            for table in PARTITIONED:
                if create_partition(conn, table, start, end):
                    created.append(f"{table}_p{start:%Y%m%d}")
            start = end
    return created


def create_partition(conn: Connection, table: str, start: datetime, end: datetime) -> bool:
    """Create `table`'s partition for [start, end) unless one overlaps it (a period
    made earlier, perhaps of another length); rows of that range waiting in the default
    partition move into it. True if created."""
    if any(p.start < end and start < p.end for p in partitions(conn, table)):
        return False
    name, default = f"{table}_p{start:%Y%m%d}", f"{table}_default"
    bounds = {"a": start, "b": end}
    in_range = "at >= :a AND at < :b"
    waiting = conn.execute(
        text(f'SELECT EXISTS (SELECT 1 FROM "{default}" WHERE {in_range})'), bounds
    ).scalar()
    if waiting:  # PostgreSQL refuses a partition whose rows sit in the default one
        conn.execute(text(f'CREATE TEMP TABLE "_moving" (LIKE "{table}") ON COMMIT DROP'))
        conn.execute(
            text(
                f'WITH gone AS (DELETE FROM "{default}" WHERE {in_range} RETURNING *) '
                'INSERT INTO "_moving" SELECT * FROM gone'
            ),
            bounds,
        )
    conn.execute(
        text(
            f'CREATE TABLE "{name}" PARTITION OF "{table}" '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )
    if waiting:
        if table == "shots":  # their shot numbers are taken: free them to move the rows
            conn.execute(text(f'DELETE FROM shot_keys x USING "_moving" s {_SAME_PART}'))
        conn.execute(text(f'INSERT INTO "{table}" SELECT * FROM "_moving"'))
        conn.execute(text('DROP TABLE "_moving"'))
    return True


def drop_history(
    engine: Engine, before: datetime, blobs: BlobStore | None = None
) -> dict[str, int]:
    """Delete the history older than `before`. PostgreSQL: whole partitions that end by
    then, with the rows about their parts in the tables not partitioned, and older rows
    of the default partitions (a partition holding `before` stays whole: retention goes
    by partitions there). SQLite: the older rows. With `blobs`, the photo and heat-map
    files no remaining part refers to. Returns {"partitions", "shots", "states",
    "blobs"}: partitions dropped, shots, machine states and blob files deleted."""
    out = {"partitions": 0, "shots": 0, "states": 0, "blobs": 0}
    with engine.begin() as conn:
        note = _blob_notes(conn) if blobs is not None else None
        if is_partitioned(conn):
            for table in PARTITIONED:
                for p in partitions(conn, table):
                    if p.end <= before:
                        out["shots" if table == "shots" else "states"] += _drop(conn, p, note)
                        out["partitions"] += 1
            out["shots"] += _delete_default(conn, "shots", before, note)
            out["states"] += _delete_default(conn, "machine_states", before, note)
        else:
            out["shots"], out["states"] = _delete_rows(conn, before, note)
        gone = _unreferenced(conn) if note is not None else []
    for digest in gone:  # after the commit: a rollback keeps every file its rows name
        path = blobs.path(digest) if blobs is not None else None
        if path is not None and path.exists():
            path.unlink()
            out["blobs"] += 1
    return out


Note = Callable[[str, dict[str, Any]], None] | None  # digests of parts (SQL) about to go


def _blob_notes(conn: Connection) -> Callable[[str, dict[str, Any]], None]:
    """A temporary table of digests, and what notes those of the parts (a SQL table of
    plant, machine, shot_number) into it, set-wise."""
    conn.execute(text(f'CREATE TEMP TABLE "{_GONE}" (digest VARCHAR(64))'))

    def note(parts: str, params: dict[str, Any]) -> None:
        for table, column in BLOB_COLUMNS:
            conn.execute(
                text(
                    f'INSERT INTO "{_GONE}" SELECT x.{column} FROM "{table}" x '
                    f"JOIN {parts} s ON x.plant = s.plant AND x.machine = s.machine "
                    f"AND x.shot_number = s.shot_number WHERE x.{column} IS NOT NULL"
                ),
                params,
            )

    return note


def _unreferenced(conn: Connection) -> list[str]:
    """The digests noted that no row left refers to (the store is content-addressed:
    another part may have the same bytes)."""
    kept = " AND ".join(
        f'NOT EXISTS (SELECT 1 FROM "{table}" x WHERE x.{column} = g.digest)'
        for table, column in BLOB_COLUMNS
    )
    found = conn.execute(text(f'SELECT DISTINCT digest FROM "{_GONE}" g WHERE {kept}'))
    digests = [str(d) for d in found.scalars()]
    conn.execute(text(f'DROP TABLE "{_GONE}"'))
    return digests


_SAME_PART = "WHERE x.plant = s.plant AND x.machine = s.machine AND x.shot_number = s.shot_number"


def _drop(conn: Connection, p: Partition, note: Note = None) -> int:
    if p.table == "shots":
        if note is not None:
            note(f'"{p.name}"', {})
        for table in (*PART_TABLES, KEYS):
            conn.execute(text(f'DELETE FROM "{table}" x USING "{p.name}" s {_SAME_PART}'))
    n = int(conn.execute(text(f'SELECT count(*) FROM "{p.name}"')).scalar_one())
    conn.execute(text(f'DROP TABLE "{p.name}"'))
    return n


def _delete_default(conn: Connection, table: str, before: datetime, note: Note = None) -> int:
    """Rows older than `before` in the default partition (clocks far off), with the rows
    about their parts where they are shots."""
    default = f"{table}_default"
    if table == "shots":
        if note is not None:
            parts = f'(SELECT plant, machine, shot_number FROM "{default}" WHERE at < :b)'
            note(parts, {"b": before})
        for other in (*PART_TABLES, KEYS):
            conn.execute(
                text(
                    f'DELETE FROM "{other}" x USING (SELECT plant, machine, shot_number '
                    f'FROM "{default}" WHERE at < :b) s {_SAME_PART}'
                ),
                {"b": before},
            )
    return conn.execute(text(f'DELETE FROM "{default}" WHERE at < :b'), {"b": before}).rowcount


def _delete_rows(conn: Connection, before: datetime, note: Note = None) -> tuple[int, int]:
    """SQLite: shots and states older than `before`, with the rows about their parts."""
    s, ms = t.shots, t.machine_states
    if note is not None:
        note("(SELECT plant, machine, shot_number FROM shots WHERE at < :b)", {"b": before})
    for name in PART_TABLES:
        other = t.metadata.tables[name]
        same = and_(
            s.c.plant == other.c.plant,
            s.c.machine == other.c.machine,
            s.c.shot_number == other.c.shot_number,
        )
        conn.execute(other.delete().where(select(s.c.id).where(same, s.c.at < before).exists()))
    states = conn.execute(ms.delete().where(ms.c.at < before)).rowcount
    return conn.execute(s.delete().where(s.c.at < before)).rowcount, states


def keep_history(
    engine: Engine,
    months: int,
    retention_days: float,
    now: datetime | None = None,
    blobs: BlobStore | None = None,
) -> dict[str, int]:
    """The periodic duty of the history: partitions ahead made, the closed hours rolled
    up (`rollups.keep_rollups`, the KPIs' hourly counts, before any shot goes), and, with
    a retention (`shot_retention_days` > 0), what is older dropped (`drop_history`, with
    the blobs no part left refers to where `blobs` is given)."""
    now = now or datetime.now(UTC)
    ensure_partitions(engine, now, months)
    rollups.keep_rollups(engine, now)
    if retention_days <= 0:
        return {"partitions": 0, "shots": 0, "states": 0, "blobs": 0}
    return drop_history(engine, now - timedelta(days=retention_days), blobs)
