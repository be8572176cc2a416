"""The counts of castings per KPI period, from the hourly counts the store keeps
(`castline.store.rollups`, `shot_hours`) and the shots of the rest.

`read` takes the stored hours that lie wholly inside one period and before the rolled
mark, and the shots of the rest (the open hour, hours before the first roll-up, hours a
period's edge cuts: a plant whose shifts begin on the half hour), counted by the same
SQL; the cycle times likewise, listed per stored hour. So the month's KPIs read a few
thousand rows whatever the shots.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, and_, case, func, literal, or_, select
from sqlalchemy.sql import ColumnElement

from castline.store import tables as t
from castline.store.rollups import (
    COUNTS,
    HOUR,
    HOURS_MARK,
    as_time,
    casting_counts,
    floor_hour,
    late_hours,
    marks_of,
    parse_cycles,
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


@dataclass(frozen=True, slots=True)
class Quantities:
    """What the KPIs take from the shots of the periods."""

    counts: pd.DataFrame  # machine, period, die, castings, good, ...
    cycles: pd.DataFrame  # machine, period, cycle_time_s: one row a production shot


def read(
    engine: Engine, plant: str, edges: pd.DatetimeIndex, machine: str | None = None
) -> Quantities:
    """The counts and cycle times for the periods between `edges`: the stored hours'
    and, for the rest, the shots'."""
    with engine.connect() as conn:
        w = window(conn, plant, edges)
        stored = _stored(conn, plant, w, machine)
        raw = _raw(conn, plant, w, machine)
        cycles = _cycles(conn, plant, w, machine)
    both = pd.concat([stored, raw], ignore_index=True)
    if not both.empty:
        both = both.groupby(["machine", "period", "die"], as_index=False)[list(COUNTS)].sum()
    return Quantities(both, cycles)


def every_cycle(
    engine: Engine, plant: str, edges: pd.DatetimeIndex, machine: str | None = None
) -> pd.DataFrame:
    """The cycle times from every shot of the range (the reference of `read`)."""
    since, until = edges[0].to_pydatetime(), edges[-1].to_pydatetime()
    at = t.shots.c.at
    with engine.connect() as conn:
        return shot_cycles(conn, plant, edges, [and_(at >= since, at < until)], machine)


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
    period = period_of(at, w.edges)
    where = [at >= since, at < until, or_(*_unstored(w, w.cut))]
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


def _unstored(w: Window, hours: frozenset[datetime]) -> list[ColumnElement[bool]]:
    """SQL: the spans of [since, until) the stored hours do not answer: before and after
    them, and `hours` among them (runs of hours merged into one span)."""
    at = t.shots.c.at
    since, until = w.edges[0].to_pydatetime(), w.edges[-1].to_pydatetime()
    spans = [and_(at >= since, at < w.start), and_(at >= w.end, at < until)]
    runs: list[list[datetime]] = []
    for h in sorted(h for h in hours if w.start <= h < w.end):
        if runs and runs[-1][1] == h:
            runs[-1][1] = h + HOUR
        else:
            runs.append([h, h + HOUR])
    return spans + [and_(at >= a, at < b) for a, b in runs]


def _cycles(conn: Connection, plant: str, w: Window, machine: str | None) -> pd.DataFrame:
    """The production shots' cycle times by period: the lists of the stored hours, and
    the shots of the rest (hours made before the lists were kept included)."""
    h = t.shot_hours.c
    where = [h.plant == plant, h.hour >= w.start, h.hour < w.end]
    where += [h.hour.not_in(sorted(w.cut))] if w.cut else []
    where += [h.machine == machine] if machine else []
    unlisted = select(h.hour).where(*where, h.cycles.is_(None)).distinct()
    missing = w.cut | {as_time(x) for x in conn.execute(unlisted).scalars()}
    query = select(h.hour, h.machine, period_of(h.hour, w.edges), h.cycles)
    machines: list[str] = []
    periods: list[int] = []
    values: list[float] = []
    for hour, m, p, text in conn.execute(query.where(*where, h.cycles.is_not(None))):
        if as_time(hour) in missing:  # read whole from the shots: each shot once
            continue
        listed = parse_cycles(text)
        machines += [str(m)] * len(listed)
        periods += [int(p)] * len(listed)
        values += listed
    stored = pd.DataFrame({"machine": machines, "period": periods, "cycle_time_s": values})
    raw = shot_cycles(conn, plant, w.edges, _unstored(w, frozenset(missing)), machine)
    return pd.concat([stored, raw], ignore_index=True)


def shot_cycles(
    conn: Connection,
    plant: str,
    edges: pd.DatetimeIndex,
    spans: list[ColumnElement[bool]],
    machine: str | None,
) -> pd.DataFrame:
    """(machine, period, cycle_time_s) of the production shots in `spans`, from the shots."""
    s = t.shots.c
    since, until = edges[0].to_pydatetime(), edges[-1].to_pydatetime()
    where = [s.plant == plant, s.at >= since, s.at < until, s.trial.is_(False), or_(*spans)]
    where += [s.cycle_time_s.is_not(None)] + ([s.machine == machine] if machine else [])
    query = select(s.machine, period_of(s.at, edges), s.cycle_time_s).where(*where)
    rows = [(str(m), int(p), float(c)) for m, p, c in conn.execute(query)]
    return pd.DataFrame.from_records(rows, columns=["machine", "period", "cycle_time_s"])


def cycle_medians(cycles: pd.DataFrame, units: dict[str, str]) -> dict[tuple[str, int], float]:
    """Per unit (of `units`, machine to unit; others their own) and period: the median
    recorded cycle time, one value a shot. A median is no sum of hours: it is taken
    over the listed values, whatever the stored hours' share."""
    if cycles.empty:
        return {}
    unit = cycles["machine"].map(lambda m: units.get(m, m))
    found = cycles.assign(unit=unit).groupby(["unit", "period"])["cycle_time_s"].median()
    keys: list[tuple[str, int]] = found.index.tolist()
    return {(str(u), int(p)): float(m) for (u, p), m in zip(keys, found.tolist(), strict=True)}
