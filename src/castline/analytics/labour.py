"""Inspection hours a person logs (the labour log): what the benefit report measures its
labour target on when any are logged in a period.

One entry is a stretch of time (a shift, a day, a week) and the person-hours of
inspection worked in it. Entries of one plant never overlap, so no hour counts twice; an
entry from the same start replaces the one before (a correction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select

from castline.analytics.benefit_measure import INSPECTION
from castline.store import tables as t

WORKS = (INSPECTION,)  # what the benefit report counts; others are refused, not ignored
LONGEST = timedelta(days=31)  # an entry longer than a month is a typing mistake
MOST_PEOPLE = 200  # hours above this many people working the whole stretch are a mistake


@dataclass(frozen=True, slots=True)
class LabourEntry:
    plant: str
    work: str
    started_at: datetime
    ended_at: datetime
    hours: float
    logged_by: str
    note: str

    def __post_init__(self) -> None:
        if self.work not in WORKS:
            raise ValueError(f"work must be one of {', '.join(WORKS)}")
        if self.started_at.tzinfo is None or self.ended_at.tzinfo is None:
            raise ValueError("give the start and end with their zone")
        span = self.ended_at - self.started_at
        if span <= timedelta(0):
            raise ValueError("the end must come after the start")
        if span > LONGEST:
            raise ValueError("one entry covers at most 31 days: log longer stretches in parts")
        if not 0 < self.hours <= span.total_seconds() / 3600 * MOST_PEOPLE:
            raise ValueError(
                f"hours must be above 0 and at most {MOST_PEOPLE} people for the whole stretch"
            )
        if not self.logged_by or len(self.note) > 500:
            raise ValueError("an entry needs who logs it and a note of at most 500 characters")


class Overlap(ValueError):
    """The entry overlaps another of its plant and work (other than a correction)."""


def log(engine: Engine, entry: LabourEntry) -> bool:
    """Record an entry; True when it replaced one of the same start (a correction)."""
    lg = t.labour_log
    same = (lg.c.plant == entry.plant, lg.c.work == entry.work)
    with engine.begin() as conn:
        clash = conn.execute(
            select(lg.c.started_at).where(
                *same,
                lg.c.started_at != entry.started_at,
                lg.c.started_at < entry.ended_at,
                lg.c.ended_at > entry.started_at,
            )
        ).first()
        if clash is not None:
            raise Overlap(f"overlaps the entry logged from {clash.started_at.isoformat()}")
        replaced = conn.execute(delete(lg).where(*same, lg.c.started_at == entry.started_at))
        conn.execute(
            insert(lg).values(
                plant=entry.plant,
                work=entry.work,
                started_at=entry.started_at,
                ended_at=entry.ended_at,
                hours=entry.hours,
                logged_by=entry.logged_by,
                note=entry.note,
            )
        )
    return replaced.rowcount > 0


def entries(engine: Engine, plant: str, since: datetime, until: datetime) -> list[LabourEntry]:
    """A plant's entries that overlap [since, until), newest first."""
    lg = t.labour_log
    with engine.connect() as conn:
        rows = conn.execute(
            select(lg)
            .where(lg.c.plant == plant, lg.c.started_at < until, lg.c.ended_at > since)
            .order_by(lg.c.started_at.desc())
        ).mappings()
        return [LabourEntry(**row) for row in rows]
