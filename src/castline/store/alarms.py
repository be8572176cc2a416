"""Alarms in the record: raised live in batches, one open alarm per key, closed by a person
who names the cause.

A report of a key with an open alarm adds its count to that alarm and moves its last-seen
time; otherwise it opens a new one. The partial unique index on open keys (migration 0010)
keeps that true with several line workers: a worker that loses the race to open an alarm
retries once and finds the other's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from castline.domain.alarms import CAUSES, Alarm
from castline.domain.live_spc import Baseline
from castline.store import tables as t


@dataclass(frozen=True, slots=True)
class Raised:
    """An alarm as the record has it after a report: its row, whether the report opened
    it, and its count and times so far."""

    id: int
    opened: bool
    alarm: Alarm
    count: int
    raised_at: datetime
    last_seen_at: datetime


def raise_many(engine: Engine, alarms: list[Alarm]) -> list[Raised]:
    """Record reports (any keys) in one transaction; retried once if another worker opened
    one of the same keys meanwhile."""
    try:
        with engine.begin() as conn:
            return [_raise(conn, alarm) for alarm in alarms]
    except IntegrityError:
        with engine.begin() as conn:
            return [_raise(conn, alarm) for alarm in alarms]


def _raise(conn: Connection, alarm: Alarm) -> Raised:
    a = t.alarms
    query = select(a.c.id, a.c.count, a.c.raised_at, a.c.last_seen_at).where(
        a.c.dedup_key == alarm.key, a.c.cleared_at.is_(None)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is not None:
        last = max(row.last_seen_at, alarm.seen_until)
        conn.execute(
            update(a)
            .where(a.c.id == row.id)
            .values(count=a.c.count + alarm.count, last_seen_at=last, message=alarm.message)
        )
        total = int(row._mapping["count"]) + alarm.count
        return Raised(row.id, False, alarm, total, row.raised_at, last)
    result = conn.execute(
        a.insert().values(
            plant=alarm.plant,
            machine=alarm.machine,
            die=alarm.die,
            subject=alarm.chart,
            rule=alarm.kind,
            severity=alarm.severity,
            message=alarm.message,
            dedup_key=alarm.key,
            raised_at=alarm.at,
            last_seen_at=alarm.seen_until,
            count=alarm.count,
        )
    )
    (new_id,) = result.inserted_primary_key or (None,)
    assert new_id is not None
    return Raised(int(new_id), True, alarm, alarm.count, alarm.at, alarm.seen_until)


def close_with_cause(
    engine: Engine, alarm_id: int, who: str, cause: str, text: str, at: datetime | None = None
) -> bool:
    """A person names what caused the alarm: acknowledged and closed in one step, so the
    next report of its key opens a new alarm. False if no such open alarm."""
    if cause not in CAUSES:
        raise ValueError(f"the cause must be one of {', '.join(CAUSES)}")
    if not who or not text.strip():
        raise ValueError("closing an alarm needs who closes it and a sentence on the cause")
    at = at or datetime.now(UTC)
    a = t.alarms
    with engine.begin() as conn:
        done = conn.execute(
            update(a)
            .where(a.c.id == alarm_id, a.c.cleared_at.is_(None))
            .values(
                acked_by=who,
                acked_at=at,
                ack_comment=text.strip(),
                cause_category=cause,
                cleared_at=at,
            )
        )
        return done.rowcount == 1


@dataclass(frozen=True, slots=True)
class StoredBaseline:
    """The baseline a machine's charts of a die use now, and when it was learnt."""

    plant: str
    machine: str
    die: str
    regime: int
    baseline: Baseline
    learnt_at: datetime


def save_baselines(engine: Engine, baselines: list[StoredBaseline]) -> None:
    """Keep each machine and die's newest baseline (a new regime replaces the old)."""
    b = t.chart_baselines
    with engine.begin() as conn:
        for s in baselines:
            where = (b.c.plant == s.plant) & (b.c.machine == s.machine) & (b.c.die == s.die)
            conn.execute(delete(b).where(where))
            conn.execute(
                b.insert().values(
                    plant=s.plant,
                    machine=s.machine,
                    die=s.die,
                    regime=s.regime,
                    shots=s.baseline.shots,
                    limits=s.baseline.as_record(),
                    learnt_at=s.learnt_at,
                )
            )


def load_baselines(engine: Engine, names: tuple[str, ...]) -> list[StoredBaseline]:
    """Every stored baseline, its parameters in the order of `names`."""
    with engine.connect() as conn:
        rows = conn.execute(select(t.chart_baselines)).all()
    return [
        StoredBaseline(
            r.plant,
            r.machine,
            r.die,
            r.regime,
            Baseline.of_record(names, r.limits, r.shots),
            r.learnt_at,
        )
        for r in rows
    ]


def open_count(engine: Engine, plant: str) -> int:
    a = t.alarms
    query = select(func.count()).where(a.c.plant == plant, a.c.cleared_at.is_(None))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
