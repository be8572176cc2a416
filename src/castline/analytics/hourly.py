"""The counts of castings per KPI period, from the hourly counts the store keeps
(`castline.store.rollups`, `shot_hours`) and the shots of the rest.

`read_counts` takes the stored hours that lie wholly inside one period and before the
rolled mark, and the shots of the rest (the open hour, hours before the first roll-up,
hours a period's edge cuts: a plant whose shifts begin on the half hour), counted by the
same SQL. So the month's KPIs read a few thousand rows whatever the shots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, and_, case, func, literal, or_, select

from castline.store import tables as t
from castline.store.rollups import (
    COUNTS,
    HOUR,
    HOURS_MARK,
    casting_counts,
    floor_hour,
    late_hours,
    marks_of,
)


@dataclass(frozen=True, slots=True)
class Window:
    """The KPI periods' edges and what of [since, until) the stored hours may answer."""

    edges: pd.DatetimeIndex
    start: datetime  # first stored hour used
    end: datetime  # end of the stored hours used (the rolled mark at most)
    cut: frozenset[datetime]  # hours inside [start, end) a period edge cuts: read raw


def window(conn: Connection, plant: str, edges: pd.DatetimeIndex) -> Window:
    """What the stored hours answer of the periods between `edges`: hours before the mark
    not cut by an edge and with no fact recorded since the duty made them (such an hour,
    until the next duty, is read from the shots)."""
    since, until = edges[0].to_pydatetime(), edges[-1].to_pydatetime()
    seen = marks_of(conn)
    rolled = seen.get(HOURS_MARK)
    start = floor_hour(since) + (HOUR if floor_hour(since) < since else timedelta(0))
    end = min(floor_hour(until), datetime.fromtimestamp(rolled, UTC)) if rolled else start
    end = max(end, start)
    cut = {floor_hour(e) for e in edges[1:-1].to_pydatetime() if floor_hour(e) != e}
    if end > start:
        at = t.shots.c.at
        where = [t.shots.c.plant == plant, at >= start, at < end]
        cut |= late_hours(conn, seen, where).get(plant, set())
    return Window(edges, start, end, frozenset(cut))


def read_counts(
    engine: Engine, plant: str, edges: pd.DatetimeIndex, machine: str | None = None
) -> pd.DataFrame:
    """(machine, period, die, castings, good, ...) for the periods between `edges`."""
    with engine.connect() as conn:
        w = window(conn, plant, edges)
        stored = _stored(conn, plant, w, machine)
        raw = _raw(conn, plant, w, machine)
    both = pd.concat([stored, raw], ignore_index=True)
    if both.empty:
        return both
    return both.groupby(["machine", "period", "die"], as_index=False)[list(COUNTS)].sum()


def _columns() -> list[str]:
    return ["machine", "period", "die", *COUNTS]


def _stored(conn: Connection, plant: str, w: Window, machine: str | None) -> pd.DataFrame:
    """The stored hours summed by machine, period and die in the database (a month of a
    plant is thousands of hours, the answer a few hundred rows)."""
    h = t.shot_hours.c
    period = period_of(h.hour, w.edges).label("period")
    where = [h.plant == plant, h.hour >= w.start, h.hour < w.end]
    where += [h.hour.not_in(sorted(w.cut))] if w.cut else []
    where += [h.machine == machine] if machine else []
    sums = (func.sum(h[n]).label(n) for n in COUNTS)
    query = select(h.machine, period, h.die, *sums).where(*where)
    query = query.group_by(h.machine, period, h.die)
    frame = pd.DataFrame.from_records([tuple(r) for r in conn.execute(query)], columns=_columns())
    return frame.astype({n: int for n in COUNTS})


def _raw(conn: Connection, plant: str, w: Window, machine: str | None) -> pd.DataFrame:
    """Counts from the shots of what the stored hours do not answer, by period."""
    at = t.shots.c.at
    since, until = w.edges[0].to_pydatetime(), w.edges[-1].to_pydatetime()
    spans = [and_(at >= since, at < w.start), and_(at >= w.end, at < until)]
    spans += [and_(at >= h, at < h + HOUR) for h in sorted(w.cut) if w.start <= h < w.end]
    period = period_of(at, w.edges)
    where = [at >= since, at < until, or_(*spans)]
    if machine:
        where.append(t.shots.c.machine == machine)
    rows = [tuple(r) for r in conn.execute(casting_counts(period, plant, where))]
    frame = pd.DataFrame.from_records(rows, columns=_columns())
    for name in COUNTS:
        frame[name] = frame[name].astype(int)
    return frame


def period_of(at: Any, edges: pd.DatetimeIndex) -> Any:
    """SQL: the index of the period between `edges` that holds `at`."""
    inner = edges[1:-1].to_pydatetime()
    if not len(inner):
        return literal(0)
    return case(*((at < e, i) for i, e in enumerate(inner)), else_=len(inner))


def cycle_medians(
    engine: Engine,
    plant: str,
    edges: pd.DatetimeIndex,
    units: dict[str, str],
    machine: str | None = None,
) -> dict[tuple[str, int], float | None]:
    """Per unit (of `units`, machine to unit) and period: the median recorded cycle time
    of the production shots (not trials), one value a shot. A median is no sum of hours:
    PostgreSQL takes it where the shots are (percentile_cont), SQLite in pandas."""
    if not units:
        return {}
    s = t.shots.c
    unit = case(*((s.machine == m, u) for m, u in units.items()), else_=s.machine)
    period = period_of(s.at, edges)
    since, until = edges[0].to_pydatetime(), edges[-1].to_pydatetime()
    where = [s.plant == plant, s.at >= since, s.at < until, s.trial.is_(False)]
    where += [s.machine == machine] if machine else []
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            median = func.percentile_cont(0.5).within_group(s.cycle_time_s)
            query = select(unit, period, median).where(*where).group_by(unit, period)
            return {(str(u), int(p)): _number(m) for u, p, m in conn.execute(query)}
        rows = conn.execute(select(unit, period, s.cycle_time_s).where(*where)).all()
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=["u", "p", "c"])
    frame["c"] = pd.to_numeric(frame["c"], errors="coerce").astype(float)
    found = frame.groupby(["u", "p"])["c"].median()
    keys: list[tuple[str, int]] = found.index.tolist()
    return {(str(u), int(p)): _number(m) for (u, p), m in zip(keys, found.tolist(), strict=True)}


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
