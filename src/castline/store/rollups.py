"""How the castings of each machine, hour and die were decided (`shot_hours`), and the
cycle times of its production shots, so the KPIs of a month read a few thousand rows,
not the month's shots (the reader is `castline.analytics.hourly`).

One SQL aggregation (`casting_counts`) gives, per machine, time bucket and die, the
castings and their dispositions exactly as `analytics.kpis.dispositions` and `escapes` define
them on the part join (a person's review, else the verdict, else the truth; a downstream
NG is scrap). The hourly duty (`keep_rollups`) stores it per UTC hour for closed hours
and makes an hour again when facts about its parts come late: shots, verdicts, reviews
and downstream results recorded since the last run are found by their ids and downstream
results by when they were matched. A transaction can commit after a run that read ids
above its own (ids are taken at insert, rows seen at commit): so each run looks from the
ids (and time) read by the run before the last one, which no write transaction
outlives. Making an hour again is idempotent (delete, insert). A truth imported later
for a part with no verdict is not seen: `roll_up` the range again.

The cycle times are kept as they are, not as a median: the KPIs suggest the median
cycle of a shift, day or month, and no median is made of hourly medians.

Making hours again over a range whose shots retention dropped empties them: the duty
never does (it makes only hours with shots recorded since), nor should a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.sql import ColumnElement, Select

from castline.domain.verdict import Verdict
from castline.store import reads
from castline.store import tables as t

HOUR = timedelta(hours=1)
COUNTS = ("castings", "good", "scrap", "first_good", "escapes", "trials")
SOURCES = ("shots", "verdicts", "reviews", "downstream_results")  # late facts, by id
ID_MARGIN = 1_000  # ids below those marks looked at again, on top
BEFORE = "@before"  # the mark's name + this: what the run before the last one read
CHUNK = timedelta(days=7)  # hours made in one statement on the first run
HOURS_MARK, _MATCHED = "hours", "downstream_matched"  # marks: epoch seconds


def floor_hour(at: datetime) -> datetime:
    at = at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def _hour_of(conn: Connection) -> Any:
    """The UTC hour of a shot's time, as SQL (read back through `as_time`)."""
    if conn.dialect.name == "postgresql":
        return func.date_trunc("hour", t.shots.c.at, "UTC")
    return func.strftime("%Y-%m-%d %H:00:00", t.shots.c.at)


def as_time(value: Any) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _dispositions() -> dict[str, ColumnElement[Any]]:
    """Per casting of the part join, as booleans: the rules of `analytics.kpis`."""
    v, r, tr = t.verdicts.c, t.reviews.c, t.truths.c
    ok, ng = Verdict.OK.value, Verdict.NG.value
    reviewed = r.decision.is_not(None)
    late = func.coalesce(reads.downstream_outcome().element == ng, false())
    known = tr.defective.is_not(None)
    first_ok = case(
        (v.verdict.is_not(None), v.verdict == ok), else_=and_(known, not_(tr.defective))
    )
    first_ng = case((v.verdict.is_not(None), v.verdict == ng), else_=and_(known, tr.defective))
    passed = case((reviewed, r.decision == ok), else_=func.coalesce(v.verdict == ok, false()))
    return {
        "good": and_(case((reviewed, r.decision == ok), else_=first_ok), not_(late)),
        "scrap": or_(case((reviewed, r.decision == ng), else_=first_ng), late),
        "first_good": and_(first_ok, not_(reviewed), not_(late)),
        "escapes": and_(passed, late),
    }


def cycle_times(conn: Connection, bucket: Any, plant: str, where: Sequence[Any]) -> Select[Any]:
    """(machine, bucket, die, cycle times) of the plant's production shots that `where`
    selects, one value a shot (not a casting), as exact text (`parse_cycles`)."""
    s = t.shots.c
    if conn.dialect.name == "postgresql":  # float8 as text: the shortest exact digits
        listed = func.string_agg(cast(s.cycle_time_s, Text), ",")
    else:  # 17 digits give the same double back; SQLite prints past 16 only with "!"
        listed = func.group_concat(func.printf("%!.17g", s.cycle_time_s), ",")
    made = [s.plant == plant, s.trial.is_(False), s.cycle_time_s.is_not(None)]
    keys = (s.machine, bucket.label("bucket"), s.die)
    return select(*keys, listed).where(*made, *where).group_by(*keys)


def parse_cycles(text: str | None) -> list[float]:
    """The cycle times `cycle_times` listed ("" none; None: an hour made before they were
    kept, migration 0014)."""
    return [float(x) for x in text.split(",")] if text else []


def _in_order(text: str | None) -> str:
    """A list of `cycle_times` sorted: an hour made again reads the same."""
    return ",".join(sorted(text.split(","), key=float)) if text else ""


def casting_counts(bucket: Any, plant: str, where: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """(machine, bucket, die, castings, good, scrap, first_good, escapes, trials) of the
    plant's shots that `where` selects, a casting a row of the part join."""
    s = t.shots.c
    flags = _dispositions()
    inner = reads.parts(
        s.machine, bucket.label("bucket"), s.die, s.trial,
        *(case((flag, 1), else_=0).label(name) for name, flag in flags.items()),
        where=reads.PartFilter(plant),
    ).where(*where).subquery()  # fmt: skip
    made = not_(inner.c.trial)
    one = literal(1)
    sums = [func.sum(case((made, one), else_=0)).label("castings")]
    sums += [func.sum(case((made, inner.c[name]), else_=0)).label(name) for name in flags]
    sums += [func.sum(case((made, 0), else_=one)).label("trials")]
    keys = (inner.c.machine, inner.c.bucket, inner.c.die)
    return select(*keys, *sums).group_by(*keys)


# --- the store of hours, kept by the line's hourly duty ---


def roll_up(engine: Engine, plant: str | None, start: datetime, end: datetime) -> int:
    """Make the hours [start, end) again (of one plant, or of all): delete, then insert
    the counts of their shots. Returns the rows written."""
    start, end = floor_hour(start), floor_hour(end)
    written = 0
    with engine.begin() as conn:
        for each in [plant] if plant else _plants(conn, start, end):
            span = [t.shots.c.at >= start, t.shots.c.at < end]
            written += _write(
                conn, each, span, [t.shot_hours.c.hour >= start, t.shot_hours.c.hour < end]
            )
    return written


def _plants(conn: Connection, start: datetime, end: datetime) -> list[str]:
    s = t.shots.c
    found = reads.distinct(s.plant)  # a skip scan: the plants, not their shots
    plants = [str(p) for p in conn.execute(found).scalars()]
    stored = select(t.shot_hours.c.plant).where(
        t.shot_hours.c.hour >= start, t.shot_hours.c.hour < end
    )
    return sorted(set(plants) | {str(p) for p in conn.execute(stored.distinct()).scalars()})


def _write(conn: Connection, plant: str, shots_where: list[Any], hours_where: list[Any]) -> int:
    h = t.shot_hours
    conn.execute(h.delete().where(h.c.plant == plant, *hours_where))
    hour = _hour_of(conn)
    listed = conn.execute(cycle_times(conn, hour, plant, shots_where))
    cycles = {(m, as_time(b), d): _in_order(text) for m, b, d, text in listed}
    rows = [
        {"plant": plant, "machine": m, "hour": as_time(b), "die": d}
        | {name: int(n or 0) for name, n in zip(COUNTS, counts, strict=True)}
        | {"cycles": cycles.get((m, as_time(b), d), "")}
        for m, b, d, *counts in conn.execute(casting_counts(hour, plant, shots_where))
    ]
    if rows:
        conn.execute(h.insert(), rows)
    return len(rows)


def keep_rollups(engine: Engine, now: datetime | None = None) -> int:
    """The hourly duty: the closed hours not yet made, and the hours that facts recorded
    since the last run changed. Returns the rows written."""
    now = now or datetime.now(UTC)
    closed = floor_hour(now)
    seen, news = marks(engine), _source_marks(engine, now)  # facts after `news`: next run
    written = 0
    if HOURS_MARK in seen:
        done = datetime.fromtimestamp(seen[HOURS_MARK], UTC)
        for plant, hours in _late_hours(engine, seen, done).items():
            written += _rewrite_hours(engine, plant, hours)
    else:
        done = _first_hour(engine) or closed
    while done < closed:
        upto = min(done + CHUNK, closed)
        written += roll_up(engine, None, done, upto)
        done = upto
    before = {name + BEFORE: seen.get(name, mark) for name, mark in news.items()}
    _save_marks(engine, news | before | {HOURS_MARK: int(closed.timestamp())})
    return written


def _first_hour(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        first = conn.execute(select(func.min(t.shots.c.at))).scalar()
    return floor_hour(as_time(first)) if first is not None else None


def marks(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return marks_of(conn)


def marks_of(conn: Connection) -> dict[str, int]:
    """How far the roll-up has gone: the hours (epoch seconds of the first hour not made),
    the last id seen of each source, and (`BEFORE`) those the run before it saw."""
    m = t.rollup_marks.c
    return {str(n): int(v) for n, v in conn.execute(select(m.name, m.mark))}


def _source_marks(engine: Engine, now: datetime) -> dict[str, int]:
    """The highest id of each source now (taken before the hours are made), and now."""
    out = {_MATCHED: int(now.timestamp())}
    with engine.connect() as conn:
        for name in SOURCES:
            out[name] = int(
                conn.execute(select(func.max(t.metadata.tables[name].c.id))).scalar() or 0
            )
    return out


def _save_marks(engine: Engine, new: dict[str, int]) -> None:
    m = t.rollup_marks
    with engine.begin() as conn:
        conn.execute(m.delete().where(m.c.name.in_(list(new))))
        conn.execute(m.insert(), [{"name": n, "mark": v} for n, v in new.items()])


def _late_hours(engine: Engine, seen: dict[str, int], done: datetime) -> dict[str, set[datetime]]:
    """Per plant, the made hours (before `done`) whose parts have facts recorded since."""
    with engine.connect() as conn:
        return late_hours(conn, seen, [t.shots.c.at < done])


def late_hours(
    conn: Connection, seen: dict[str, int], where: Sequence[ColumnElement[bool]]
) -> dict[str, set[datetime]]:
    """Per plant, the hours of the shots `where` selects whose parts have facts recorded
    after the ids the run before the last saw (less the margin), or downstream results
    matched since."""
    s = t.shots
    out: dict[str, set[datetime]] = {}
    hour = _hour_of(conn)
    for name in SOURCES:
        table = t.metadata.tables[name]
        changed = table.c.id > _looked_from(seen, name) - ID_MARGIN
        if name == "downstream_results":
            after = datetime.fromtimestamp(_looked_from(seen, _MATCHED), UTC)
            changed = or_(changed, table.c.matched_at >= after)
        query = select(s.c.plant, hour).where(changed, *where)
        if table is not s:
            query = query.join_from(s, table, reads.same_part(s, table))
        for plant, at in conn.execute(query.distinct()):
            out.setdefault(str(plant), set()).add(as_time(at))
    return out


def _looked_from(seen: dict[str, int], name: str) -> int:
    return seen.get(name + BEFORE, seen.get(name, 0))


def _rewrite_hours(engine: Engine, plant: str, hours: set[datetime]) -> int:
    written = 0
    with engine.begin() as conn:
        for start in sorted(hours):
            span = [t.shots.c.at >= start, t.shots.c.at < start + HOUR]
            written += _write(conn, plant, span, [t.shot_hours.c.hour == start])
    return written


# --- bounds for the overview's reads ---


def hour_mark(conn: Connection) -> datetime | None:
    """The first hour not counted in `shot_hours` yet (None: never rolled up)."""
    m = t.rollup_marks.c
    mark = conn.execute(select(m.mark).where(m.name == HOURS_MARK)).scalar()
    return None if mark is None else datetime.fromtimestamp(int(mark), UTC)


def month_of(at: datetime | None) -> datetime | None:
    """The first instant of the month of `at`: the start of whole partitions."""
    return None if at is None else datetime(at.year, at.month, 1, tzinfo=UTC)


def newest_bound(
    conn: Connection, plant: str, machines: Sequence[str], mark: datetime | None
) -> datetime | None:
    """A time no machine's newest shot is older than (None: unknown): the oldest of each
    machine's newest counted hour (a probe each, one statement), and the hour mark for a
    machine with none (its shots, if any, all came after it)."""
    if mark is None:
        return None
    h = t.shot_hours.c
    each = [
        select(func.max(h.hour)).where(h.plant == plant, h.machine == m).scalar_subquery()
        for m in machines
    ]
    found = conn.execute(select(*each)).one() if each else ()
    return min([mark, *(as_time(x) for x in found if x is not None)])
