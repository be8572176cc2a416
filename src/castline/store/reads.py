"""Reads of the record, written once for the line, the dashboard and analytics.

A part is what the record knows under one key (plant, machine, shot number): its shot,
its verdict, its photos, a person's review and the ground truth. `parts` is the one
join of them; the dashboard (`web/queries.py`) and analytics (`analytics/queries.py`)
choose the columns and filters they need from it, and the other shared reads (machine
states, verdict counts, dies) are here too, so no second version of a query can drift.

The select builders return SQLAlchemy selects and run nothing; `Reads` runs them on an
engine and returns rows. `Store` (`repository.py`) is `Reads` plus the writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    FromClause,
    String,
    Table,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.sql import Select

from castline.domain.curve import ShotCurve, unpack
from castline.domain.shot import PartKey
from castline.domain.units import NAMES
from castline.domain.verdict import PartVerdict, Region, Verdict
from castline.store import tables as t

Row = dict[str, Any]
_s, _v, _r, _tr, _img = t.shots, t.verdicts, t.reviews, t.truths, t.images

VERDICT = (_v.c.verdict, _v.c.score, _v.c.model_version)
"""The verdict beside a shot, as the shot lists show it."""
OUTCOME = (
    _v.c.verdict,
    _r.c.decision.label("review"),
    _tr.c.defective.label("truth"),
    _tr.c.defect_type,
)
"""What is known of a part's quality: the verdict, a person's review, the ground truth."""
SHOT_FACTS = (_s.c.plant, _s.c.machine, _s.c.shot_number, _s.c.die, _s.c.at, _s.c.trial)


def same_part(a: FromClause, b: FromClause) -> ColumnElement[bool]:
    """The two tables' rows are about the same part (the same shot, where one of them is
    about a shot and not one casting of it: `shots`, `shot_curves`)."""
    same = and_(
        a.c.plant == b.c.plant, a.c.machine == b.c.machine, a.c.shot_number == b.c.shot_number
    )
    if "cavity" in a.c and "cavity" in b.c:
        return and_(same, a.c.cavity == b.c.cavity)
    return same


def first_image(part: FromClause) -> Any:
    """One photo of the part (the lowest digest, so the same on every read), as a column
    `image` of a query over `part`."""
    return (
        select(func.min(_img.c.blob))
        .where(same_part(_img, part))
        .correlate(part)
        .scalar_subquery()
        .label("image")
    )


@dataclass(frozen=True, slots=True)
class PartFilter:
    """Which parts: of a plant (or some plants), a machine, a die, a time window (the
    shot's time, or the verdict's for parts read from their verdicts), a verdict."""

    plant: str | None = None
    plants: Sequence[str] | None = None
    machine: str | None = None
    die: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    verdict: Verdict | None = None


def parts(*columns: Any, where: PartFilter | None = None, anchor: Table = _s) -> Select[Any]:
    """The part join: one row per row of `anchor` (`shots`: every recorded shot;
    `verdicts`: every decided part, with or without a shot record), with the part's
    shot, verdict, review and truth outer-joined. Without columns: the shot's columns
    with the verdict beside them. Unordered; callers order and limit."""
    joined: Any = anchor
    for other in (_s, _v, _r, _tr):
        if other is anchor:
            continue
        on = same_part(other, anchor)
        if anchor is _s and other is not _v:  # each casting's review and truth by its cavity
            on = and_(on, other.c.cavity == func.coalesce(_v.c.cavity, 1))
        joined = joined.outerjoin(other, on)
    query = select(*(columns or (_s, *VERDICT))).select_from(joined)
    return _filtered(query, where or PartFilter(), anchor)


def _filtered(query: Select[Any], f: PartFilter, anchor: Table) -> Select[Any]:
    moment = _s.c.at if anchor is _s else _v.c.decided_at
    if f.plant is not None:
        query = query.where(anchor.c.plant == f.plant)
    if f.plants is not None:
        query = query.where(anchor.c.plant.in_(list(f.plants)))
    if f.machine:
        query = query.where(anchor.c.machine == f.machine)
    if f.die:
        query = query.where(_s.c.die == f.die)
    if f.since:
        query = query.where(moment >= f.since)
    if f.until:
        query = query.where(moment < f.until)
    if f.verdict:
        query = query.where(_v.c.verdict == f.verdict.value)
    return query


def in_range(
    query: Select[Any], parameter: str, low: float | None, high: float | None
) -> Select[Any]:
    """Only the shots whose `parameter` lies within [low, high] (either bound optional)."""
    if parameter not in NAMES:
        raise ValueError(f"unknown parameter {parameter!r}; known: {', '.join(NAMES)}")
    column = _s.c[parameter]
    if low is not None:
        query = query.where(column >= low)
    if high is not None:
        query = query.where(column <= high)
    return query


def states(
    plant: str,
    machine: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    """Machine state changes, by machine in time order."""
    m = t.machine_states
    query = select(m).where(m.c.plant == plant).order_by(m.c.machine, m.c.at)
    if machine:
        query = query.where(m.c.machine == machine)
    if since:
        query = query.where(m.c.at >= since)
    if until:
        query = query.where(m.c.at < until)
    return query


def latest_states(
    plant: str, before: datetime | None = None, machines: Sequence[str] | None = None
) -> Select[Any]:
    """The newest state of each machine of a plant (of those before `before`): per
    machine, its newest time by index, not a ranking of all the plant's states, which
    grow by the year. `machines`: the plant's machines where the caller knows them
    already (else found in the states)."""
    m = t.machine_states
    each = _machines(m, plant, machines)
    newest = select(func.max(m.c.at)).where(m.c.plant == plant, m.c.machine == each.c.value)
    if before is not None:
        newest = newest.where(m.c.at < before)
    at = newest.correlate(each).scalar_subquery()
    found = _once(select(each.c.value.label("machine"), at.label("at")))
    on = and_(m.c.plant == plant, m.c.machine == found.c.machine, m.c.at == found.c.at)
    # the oldest of those times bounds the search: older partitions are not read at all
    oldest = select(func.min(found.c.at)).scalar_subquery()
    return select(m).join(found, on).where(m.c.at >= oldest)


def newest_part(
    table: Table, plant: str, machines: Sequence[str] | None = None, since: datetime | None = None
) -> Any:
    """Subquery: the row of each machine's highest shot number (the machine's counter),
    each found by its own probe of the (plant, machine, shot_number) index: a grouping
    over the plant's rows would read every shot it ever made. `machines` as in
    `latest_states`; `since` (shots only): no machine's newest shot is older, so only the
    partitions from then on are read."""
    each = _machines(table, plant, machines)
    where = [table.c.plant == plant, table.c.machine == each.c.value]
    highest = (
        select(func.max(table.c.shot_number))
        .where(*where, *(_from(table, since) if table is _s else []))
        .correlate(each)
        .scalar_subquery()
    )
    newest = _once(select(each.c.value.label("machine"), highest.label("shot_number")))
    on = and_(
        table.c.plant == plant,
        table.c.machine == newest.c.machine,
        table.c.shot_number == newest.c.shot_number,
        *(_from(table, since) if table is _s else []),
    )
    return select(table).join(newest, on).subquery()


def _machines(table: Table, plant: str, machines: Sequence[str] | None) -> Any:
    """The machines of the plant as a one-column (`value`) table: those given, else the
    table's own (a skip scan)."""
    if machines is None:
        return distinct(table.c.machine, table.c.plant == plant).subquery()
    given = [select(literal(m, String).label("value")) for m in machines]
    return union_all(*given).subquery() if len(given) > 1 else given[0].subquery()


def _once(query: Select[Any]) -> Any:
    """The query as a table computed once: PostgreSQL would otherwise push its correlated
    subqueries into the join and run them again for every partition of the other side."""
    return query.cte().prefix_with("MATERIALIZED", dialect="postgresql")


def distinct(column: Any, *where: ColumnElement[bool]) -> Select[Any]:
    """The distinct values of an indexed column (as `value`), found by skipping through
    the index from one value to the next (a recursive query): as many index probes as
    there are values, where `SELECT DISTINCT` reads every row. `where` may only fix the
    columns before `column` in the index."""
    first = select(func.min(column).label("value")).where(*where)
    found = first.cte(recursive=True)
    after = select(func.min(column)).where(*where, column > found.c.value)
    following = select(after.correlate(found).scalar_subquery()).where(found.c.value.is_not(None))
    found = found.union_all(following)
    return select(found.c.value).where(found.c.value.is_not(None))


def verdict_counts(
    plant: str, since: datetime | None = None, until: datetime | None = None
) -> Select[Any]:
    """(machine, verdict, parts) decided in the window."""
    v = _v
    query = (
        select(v.c.machine, v.c.verdict, func.count())
        .where(v.c.plant == plant)
        .group_by(v.c.machine, v.c.verdict)
    )
    if since:
        query = query.where(v.c.decided_at >= since)
    if until:
        query = query.where(v.c.decided_at < until)
    return query


def known_plants() -> Select[Any]:
    """Plants from the master data and from the facts (a line may record shots and
    states of a plant nobody registered), with their names."""
    p, st = t.plants, t.machine_states
    known = union(select(p.c.id), distinct(_s.c.plant), distinct(st.c.plant)).subquery()
    return (
        select(known.c.id, func.coalesce(p.c.name, known.c.id).label("name"))
        .select_from(known.outerjoin(p, p.c.id == known.c.id))
        .order_by(known.c.id)
    )


def known_machines(plant: str, since: datetime | None = None) -> Select[Any]:
    """Machines of a plant from the master data and from the facts, with their names.
    `since` (where the hourly counts `shot_hours` hold every shot before it): the facts
    from then on, and the machines of the hourly counts, so the skip scans read the
    newest partitions only (a machine with only machine states older than `since` and
    no master data is not found: the line registers every machine it records)."""
    m, st, h = t.machines, t.machine_states, t.shot_hours
    facts = [
        distinct(_s.c.machine, _s.c.plant == plant, *_from(_s, since)),
        distinct(st.c.machine, st.c.plant == plant, *_from(st, since)),
    ]
    if since is not None:
        facts.append(distinct(h.c.machine, h.c.plant == plant))
    known = union(select(m.c.id).where(m.c.plant == plant), *facts).subquery()
    return (
        select(known.c.id, func.coalesce(m.c.name, known.c.id).label("name"))
        .select_from(known.outerjoin(m, and_(m.c.plant == plant, m.c.id == known.c.id)))
        .order_by(known.c.id)
    )


def _from(table: Table, since: datetime | None) -> list[ColumnElement[bool]]:
    return [] if since is None else [table.c.at >= since]


def dies(plants: Sequence[str] | None = None) -> Select[Any]:
    """Dies by code: of these plants and those of no plant (None: all of them)."""
    d = t.dies
    query = select(d).order_by(d.c.code)
    if plants is not None:
        query = query.where(or_(d.c.plant.in_(list(plants)), d.c.plant.is_(None)))
    return query


def die_maintenance(die: str | None = None) -> Select[Any]:
    """Maintenance done on dies (or one die), newest first."""
    m = t.die_maintenance
    query = select(m).order_by(m.c.at.desc())
    return query.where(m.c.die == die) if die else query


def good_curves(die: str, before: datetime | None = None) -> Select[Any]:
    """Stored curves of a die's good parts, newest first: production shots whose verdict
    is OK and that no review or ground truth found defective (a golden envelope's
    material)."""
    c = t.shot_curves
    query = (
        parts(c.c.data, where=PartFilter(die=die, until=before, verdict=Verdict.OK))
        .join(c, same_part(c, _s))
        .where(_s.c.trial.is_(False))
        .where(or_(_r.c.decision.is_(None), _r.c.decision == Verdict.OK.value))
        .where(or_(_tr.c.defective.is_(None), _tr.c.defective.is_(False)))
    )
    return query.order_by(_s.c.at.desc())


def parts_marked(data_matrix: str, plant: str | None = None) -> Select[Any]:
    """(plant, machine, shot_number, data_matrix, cavity) of the castings that carry a
    code, oldest shot first: cavity 1's code is on its shot, further cavities' in
    `part_marks`. The one join by code that the line, downstream results and trace share."""
    m = t.part_marks
    cavity_1 = select(_s.c.plant, _s.c.machine, _s.c.shot_number, _s.c.data_matrix)
    cavity_1 = cavity_1.add_columns(literal(1).label("cavity"), _s.c.at)
    cavity_1 = cavity_1.where(_s.c.data_matrix == data_matrix)
    others = select(m.c.plant, m.c.machine, m.c.shot_number, m.c.data_matrix, m.c.cavity)
    others = others.add_columns(_s.c.at).join(_s, same_part(_s, m))
    others = others.where(m.c.data_matrix == data_matrix)
    if plant is not None:
        cavity_1, others = cavity_1.where(_s.c.plant == plant), others.where(m.c.plant == plant)
    found = union(cavity_1, others).subquery()
    return select(*(c for c in found.c if c.name != "at")).order_by(found.c.at)


def downstream_outcome() -> Any:
    """Column `downstream` of the part join (`parts` over shots): "NG" if a downstream
    station found the casting NG, "OK" if stations tested it and none did, else null
    ("NG" < "OK": the smallest result is the worst)."""
    d = t.downstream_results
    casting = and_(same_part(d, _s), d.c.cavity == func.coalesce(_v.c.cavity, 1))
    worst = select(func.min(d.c.result)).where(casting).correlate(_s, _v)
    return worst.scalar_subquery().label("downstream")


def downstream_results(
    plant: str, unmatched: bool = False, since: datetime | None = None
) -> Select[Any]:
    """A plant's downstream results, newest first; `unmatched`: only those whose part is
    not known (yet)."""
    d = t.downstream_results
    query = select(d).where(d.c.plant == plant).order_by(d.c.received_at.desc(), d.c.id.desc())
    if unmatched:
        query = query.where(d.c.matched_at.is_(None))
    if since is not None:
        query = query.where(d.c.received_at >= since)
    return query


def downstream_counts(plant: str, since: datetime) -> Select[Any]:
    """How many downstream results the plant received since `since`, how many NG, and how
    many joined no part (a code or key castline does not know: watch for stations
    posting wrong parts)."""
    d = t.downstream_results
    ng = func.sum(case((d.c.result == "NG", 1), else_=0))
    unmatched = func.sum(case((d.c.matched_at.is_(None), 1), else_=0))
    counts = select(func.count().label("results"))
    counts = counts.add_columns(ng.label("ng"), unmatched.label("unmatched"))
    return counts.where(d.c.plant == plant, d.c.received_at >= since)


def downstream_escapes(
    plant: str, since: datetime | None = None, until: datetime | None = None
) -> Select[Any]:
    """Escapes found downstream: NG results for castings castline passed (a person's OK
    review, else the verdict OK), one row per result, by the shot's time; trial shots
    are not production and count not."""
    d = t.downstream_results
    passed = or_(
        _r.c.decision == Verdict.OK.value,
        and_(_r.c.decision.is_(None), _v.c.verdict == Verdict.OK.value),
    )
    joined = d.join(_s, same_part(_s, d)).join(_v, same_part(_v, d)).outerjoin(_r, same_part(_r, d))
    query = select(
        *SHOT_FACTS,
        d.c.cavity,
        _v.c.verdict,
        _r.c.decision.label("review"),
        d.c.station,
        d.c.test,
        d.c.defect_type,
        d.c.tested_at,
    ).select_from(joined)
    query = query.where(d.c.plant == plant, d.c.result == "NG", passed, _s.c.trial.is_(False))
    if since is not None:
        query = query.where(_s.c.at >= since)
    if until is not None:
        query = query.where(_s.c.at < until)
    return query.order_by(_s.c.at, _s.c.machine, _s.c.shot_number, d.c.cavity, d.c.tested_at)


def reviewed_photos(die: str, view: str, decision: Verdict, after: int, limit: int) -> Select[Any]:
    """Photos of a die and view that a person reviewed as `decision`, reviews after id
    `after`, oldest first: the review, the photo's blob and what castline decided of that
    view (its own verdict, else the part's). For OK, only photos castline held (NG or
    REVIEW): false rejects. The review loop's input (`vision/review_learning.py`)."""
    decided = func.coalesce(_img.c.verdict, _v.c.verdict)
    joined = (
        _r.join(_img, same_part(_img, _r))
        .join(_s, same_part(_s, _r))
        .outerjoin(_v, same_part(_v, _r))
    )
    query = select(
        *(_r.c.id, _r.c.plant, _r.c.machine, _r.c.shot_number, _r.c.cavity, _r.c.decision),
        *(_r.c.defect_type, _r.c.reviewer, _img.c.blob, decided.label("decided")),
    ).select_from(joined)
    query = query.where(_s.c.die == die, _img.c.view == view, _r.c.id > after)
    query = query.where(_r.c.decision == decision.value)
    if decision is Verdict.OK:
        query = query.where(decided.in_((Verdict.NG.value, Verdict.REVIEW.value)))
    return query.order_by(_r.c.id).limit(limit)


def rows(engine: Engine, query: Select[Any]) -> list[Row]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


class Reads:
    """The record's reads on one engine; each opens its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def count(self, table: Table, **where: Any) -> int:
        query = select(func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def shots(
        self,
        plant: str,
        *,
        machine: str | None = None,
        die: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        verdict: Verdict | None = None,
        parameter: str | None = None,
        low: float | None = None,
        high: float | None = None,
        limit: int | None = 1000,
    ) -> list[Row]:
        """Shots with their verdict (if any), newest first, filtered as asked."""
        where = PartFilter(plant, None, machine, die, since, until, verdict)
        query = parts(where=where).order_by(_s.c.at.desc(), _s.c.shot_number.desc())
        if parameter:
            query = in_range(query, parameter, low, high)
        return rows(self.engine, query.limit(limit) if limit else query)

    def verdict_counts(
        self, plant: str, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, dict[str, int]]:
        """Verdicts by machine and kind: {machine: {"OK": n, "NG": n, ...}}."""
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for machine, verdict, n in conn.execute(verdict_counts(plant, since, until)):
                out.setdefault(machine, {})[verdict] = int(n)
        return out

    def states(
        self,
        plant: str,
        machine: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Row]:
        """Machine state changes in time order."""
        return rows(self.engine, states(plant, machine, since, until))

    def part(self, key: PartKey) -> Row | None:
        """Everything recorded about one casting, or None if castline never saw it."""
        with self.engine.connect() as conn:

            def one(table: Table) -> Row | None:
                found = conn.execute(select(table).where(_is(table, key))).first()
                return dict(found._mapping) if found else None

            shot, verdict = one(_s), one(_v)
            photos = select(_img).where(_is(_img, key)).order_by(_img.c.view)
            images = [dict(r._mapping) for r in conn.execute(photos)]
            if shot is None and verdict is None and not images:
                return None
            review, truth = one(_r), one(_tr)
        return {
            "key": str(key),
            "shot": shot,
            "images": images,
            "verdict": verdict,
            "review": review,
            "truth": truth,
            "downstream": self.downstream(key),
        }

    def shot_die(self, key: PartKey) -> tuple[str, bool] | None:
        """The die that made a part and whether it was a trial shot, from its shot record."""
        with self.engine.connect() as conn:
            found = conn.execute(select(_s.c.die, _s.c.trial).where(_is(_s, key))).first()
        return (found.die, bool(found.trial)) if found else None

    def mounted_die(self, plant: str, machine: str) -> str | None:
        """The die on a machine as last recorded: of its newest shot, or of a newer state
        message that names one (a die change announced before its first shot)."""
        st = t.machine_states
        newest_shot = (
            select(_s.c.at, _s.c.die)
            .where(_s.c.plant == plant, _s.c.machine == machine)
            .order_by(_s.c.at.desc())
            .limit(1)
        )
        newest_state = (
            select(st.c.at, st.c.die)
            .where(st.c.plant == plant, st.c.machine == machine, st.c.die.is_not(None))
            .order_by(st.c.at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            found = [row for q in (newest_shot, newest_state) if (row := conn.execute(q).first())]
        return str(max(found, key=lambda row: row.at).die) if found else None

    def verdict(self, key: PartKey) -> Row | None:
        """The verdict of one part, or None if it has none yet."""
        with self.engine.connect() as conn:
            found = conn.execute(select(_v).where(_is(_v, key))).first()
        return dict(found._mapping) if found else None

    def part_verdict(self, key: PartKey) -> PartVerdict | None:
        """The verdict a part was told, as recorded, or None."""
        row = self.verdict(key)
        if row is None:
            return None
        return PartVerdict(
            verdict=Verdict(row["verdict"]),
            decided_at=row["decided_at"],
            reason=row["reason"],
            score=row["score"],
            model_version=row["model_version"],
            latency_ms=row["latency_ms"],
            regions=tuple(Region(**r) for r in row["regions"] or []),
            timings=row["timings"] or {},
        )

    def parts_marked(self, data_matrix: str) -> list[PartKey]:
        """The parts whose shot carries this data-matrix code (one, where codes are unique)."""
        with self.engine.connect() as conn:
            return [PartKey(*row) for row in conn.execute(parts_marked(data_matrix))]

    def alarms_open_at(self, plant: str, machine: str, at: datetime) -> list[Row]:
        """Alarms of the plant (the machine's or plant-wide) raised by `at` and not
        cleared by then, oldest first."""
        a = t.alarms
        query = (
            select(a)
            .where(a.c.plant == plant, or_(a.c.machine.is_(None), a.c.machine == machine))
            .where(a.c.raised_at <= at, or_(a.c.cleared_at.is_(None), a.c.cleared_at > at))
            .order_by(a.c.raised_at, a.c.id)
        )
        return rows(self.engine, query)

    def shot_curve(self, key: PartKey) -> ShotCurve | None:
        """The part's shot curve, or None if none was recorded."""
        c = t.shot_curves
        with self.engine.connect() as conn:
            data = conn.execute(select(c.c.data).where(_is(c, key))).scalar_one_or_none()
        return None if data is None else unpack(data)

    def good_curves(
        self, die: str, before: datetime | None = None, limit: int = 200
    ) -> list[ShotCurve]:
        """Up to `limit` curves of the die's good parts, newest first (`good_curves`)."""
        with self.engine.connect() as conn:
            found = conn.execute(good_curves(die, before).limit(limit)).scalars()
            return [unpack(data) for data in found]

    def downstream(self, key: PartKey) -> list[Row]:
        """The downstream results joined to one part, in test order."""
        d = t.downstream_results
        query = select(d).where(_is(d, key)).order_by(d.c.tested_at, d.c.id)
        return rows(self.engine, query)

    def downstream_results(
        self, plant: str, unmatched: bool = False, limit: int = 200
    ) -> list[Row]:
        """A plant's downstream results, newest first (only unmatched ones if asked)."""
        return rows(self.engine, downstream_results(plant, unmatched).limit(limit))

    def downstream_counts(self, plant: str, since: datetime) -> dict[str, int]:
        """{"results", "ng", "unmatched"} of the results received since `since`."""
        with self.engine.connect() as conn:
            found = conn.execute(downstream_counts(plant, since)).one()._mapping
        return {name: int(found[name] or 0) for name in ("results", "ng", "unmatched")}

    def downstream_escapes(
        self, plant: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[Row]:
        """Castings castline passed that a downstream station found NG, one row per NG
        result (plant, machine, shot_number, die, at, trial, cavity, verdict, review,
        station, test, defect_type, tested_at), by shot time in [since, until). Count
        distinct (machine, shot_number, cavity) for the number of escaped parts."""
        return rows(self.engine, downstream_escapes(plant, since, until))

    def dead_letters(self, limit: int = 100) -> list[Row]:
        d = t.dead_letters
        query = select(d).order_by(d.c.received_at.desc(), d.c.id.desc()).limit(limit)
        return rows(self.engine, query)


def _is(table: Table, key: PartKey) -> ColumnElement[bool]:
    """The rows of `table` about the part (or its shot, in a table of shots)."""
    same = and_(
        table.c.plant == key.plant,
        table.c.machine == key.machine,
        table.c.shot_number == key.shot_number,
    )
    return and_(same, table.c.cavity == key.cavity) if "cavity" in table.c else same
