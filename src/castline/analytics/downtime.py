"""Stops of the machines, classified, and the reliability figures that rest on them.

Each machine state other than running begins a stop that lasts until the next state.
Its class comes from the state (`castline.domain.stops.class_of_state`), unless a
person gave one (`stop_classes`, written by `classify`): a person's word wins. MTBF and
MTTR count breakdowns only; an import's gaps (`offline`) are unclassified until a
person says what they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from castline.domain.kpi import mtbf, mttr
from castline.domain.stops import StopClass, class_of_state
from castline.store import reads
from castline.store import tables as t

# Planned stops last: they are outside planned busy time and nobody has to act on them.
_ORDER = {
    StopClass.BREAKDOWN: 0,
    StopClass.UNCLASSIFIED: 1,
    StopClass.SETUP: 2,
    StopClass.NO_ORDER: 3,
    StopClass.PLANNED: 4,
}


@dataclass(frozen=True, slots=True)
class Segment:
    """One machine state from its change until the next (`ended_at` None: still on)."""

    machine: str
    started_at: datetime
    ended_at: datetime | None
    state: str
    reason: str
    stop_class: StopClass | None  # None: running
    class_reason: str = ""  # a person's reason, when a person classified the stop
    classified_by: str | None = None

    def seconds_within(self, since: datetime, until: datetime) -> float:
        end = min(self.ended_at or until, until)
        return max(0.0, (end - max(self.started_at, since)).total_seconds())

    @property
    def said_reason(self) -> str:
        return self.class_reason or self.reason or "(none given)"


@dataclass(frozen=True, slots=True)
class CauseRow:
    machine: str
    stop_class: str
    reason: str
    hours: float
    stops: int


@dataclass(frozen=True, slots=True)
class Reliability:
    machine: str
    breakdowns: int
    running_h: float
    breakdown_h: float
    mtbf_h: float | None
    mttr_min: float | None


def segments(
    engine: Engine, plant: str, since: datetime, until: datetime, machine: str | None = None
) -> list[Segment]:
    """The machines' states overlapping [since, until), each with its stop class."""
    with engine.connect() as conn:
        rows = conn.execute(reads.states(plant, machine, until=until)).fetchall()
        people = _given(conn, plant, until, machine)
    out: list[Segment] = []
    for i, row in enumerate(rows):
        nxt = rows[i + 1] if i + 1 < len(rows) and rows[i + 1].machine == row.machine else None
        start, end = _utc(row.at), _utc(nxt.at) if nxt is not None else None
        if end is not None and end <= since:
            continue
        stop_class = class_of_state(row.state, row.reason or "")
        person = people.get((row.machine, start))
        if person is not None and stop_class is not None:
            out.append(
                Segment(
                    row.machine, start, end, row.state, row.reason or "",
                    StopClass(person.stop_class), person.reason, person.classified_by,
                )
            )  # fmt: skip
        else:
            out.append(Segment(row.machine, start, end, row.state, row.reason or "", stop_class))
    return out


def _given(conn: Connection, plant: str, until: datetime, machine: str | None) -> dict[Any, Row]:
    """The classes people gave, by (machine, start of the stop)."""
    c = t.stop_classes
    given = select(c).where(c.c.plant == plant, c.c.started_at < until)
    if machine:
        given = given.where(c.c.machine == machine)
    return {(r.machine, _utc(r.started_at)): r for r in conn.execute(given)}


def classes_given(
    engine: Engine, plant: str, until: datetime, machine: str | None = None
) -> dict[tuple[str, datetime], StopClass]:
    """A person's class of each stop they classified, by (machine, start, UTC): what the
    KPIs count failures and repair time from, as the downtime page does."""
    with engine.connect() as conn:
        given = _given(conn, plant, until, machine)
    return {key: StopClass(r.stop_class) for key, r in given.items()}


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def by_cause(segs: list[Segment], since: datetime, until: datetime) -> list[CauseRow]:
    """Hours and stops per machine, class and reason; planned stops after the rest."""
    sums: dict[tuple[str, StopClass, str], list[float]] = {}
    for s in segs:
        seconds = s.seconds_within(since, until)
        if s.stop_class is None or seconds <= 0:
            continue
        cell = sums.setdefault((s.machine, s.stop_class, s.said_reason), [0.0, 0])
        cell[0] += seconds / 3600
        cell[1] += 1
    rows = [
        CauseRow(machine, cls.value, reason, hours, int(n))
        for (machine, cls, reason), (hours, n) in sums.items()
    ]
    return sorted(rows, key=lambda r: (_ORDER[StopClass(r.stop_class)], -r.hours))


def breakdowns_begun(segs: list[Segment], since: datetime, until: datetime) -> list[Segment]:
    """Breakdowns that began in [since, until); one that goes on in a second breakdown
    state (a repeated state change) is one failure."""
    out, previous = [], None
    for s in segs:
        continuing = (
            previous is not None
            and previous.machine == s.machine
            and previous.stop_class is StopClass.BREAKDOWN
        )
        if s.stop_class is StopClass.BREAKDOWN and not continuing and since <= s.started_at < until:
            out.append(s)
        previous = s
    return out


def reliability(segs: list[Segment], since: datetime, until: datetime) -> list[Reliability]:
    """MTBF (running time per breakdown) and MTTR (breakdown time per breakdown) of each
    machine, from breakdowns only."""
    machines = sorted({s.machine for s in segs})
    failures = breakdowns_begun(segs, since, until)
    out = []
    for m in machines:
        mine = [s for s in segs if s.machine == m]
        running = sum(s.seconds_within(since, until) for s in mine if s.stop_class is None)
        broken = sum(
            s.seconds_within(since, until) for s in mine if s.stop_class is StopClass.BREAKDOWN
        )
        n = sum(1 for s in failures if s.machine == m)
        up, repair = mtbf(running, n), mttr(broken, n)
        out.append(
            Reliability(
                m,
                n,
                running / 3600,
                broken / 3600,
                None if up is None else up / 3600,
                None if repair is None else repair / 60,
            )
        )
    return out


def classify(
    engine: Engine,
    plant: str,
    machine: str,
    started_at: datetime,
    stop_class: StopClass,
    reason: str,
    by: str,
) -> Segment:
    """A person's class for the stop that began at `started_at` (replacing an earlier
    one). LookupError when the machine has no stop there."""
    m = t.machine_states
    with engine.begin() as conn:
        state = conn.execute(
            select(m.c.state, m.c.reason).where(
                m.c.plant == plant, m.c.machine == machine, m.c.at == started_at
            )
        ).first()
        if state is None or class_of_state(state.state, state.reason or "") is None:
            raise LookupError(f"machine {machine} has no stop beginning at {started_at}")
        c = t.stop_classes
        key = (c.c.plant == plant) & (c.c.machine == machine) & (c.c.started_at == started_at)
        conn.execute(c.delete().where(key))
        conn.execute(
            c.insert().values(
                plant=plant,
                machine=machine,
                started_at=started_at,
                stop_class=stop_class.value,
                reason=reason,
                classified_by=by,
                classified_at=datetime.now(UTC),
            )
        )
    return Segment(
        machine, started_at, None, state.state, state.reason or "", stop_class, reason, by
    )
