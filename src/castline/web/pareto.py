"""Defect Pareto of a period: parts a person confirmed NG, counted by defect type, machine,
die and shift, with each one's share and the running share (the 80 % line of a Pareto).
The shift is the plant calendar's shift in which the part was cast."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from castline.domain.plant_calendar import PlantCalendar
from castline.web import queries

BY = (*queries.PARETO_BY, "shift")


@dataclass(frozen=True, slots=True)
class ParetoRow:
    name: str | None  # None: not named (no defect type given, no shot record)
    parts: int
    share: float
    cumulative: float


def shares(counts: Sequence[tuple[str | None, int]]) -> list[ParetoRow]:
    """Rows in the given order (most frequent first) with their shares of the total."""
    total = sum(n for _, n in counts)
    rows, running = [], 0
    for name, n in counts:
        running += n
        rows.append(ParetoRow(name, n, n / total, running / total))
    return rows


def of_plant(
    engine: Engine, plant: str, since: datetime, until: datetime, calendar: PlantCalendar
) -> dict[str, list[ParetoRow]]:
    """Each grouping of BY; all empty when no part was confirmed NG."""
    return {by: shares(counts(engine, plant, since, until, by, calendar)) for by in BY}


def counts(
    engine: Engine, plant: str, since: datetime, until: datetime, by: str, calendar: PlantCalendar
) -> list[tuple[str | None, int]]:
    """Confirmed NG parts per name of the grouping `by`, most frequent first."""
    if by != "shift":
        return queries.confirmed_defects(engine, plant, since, until, by)
    shifts: Counter[str | None] = Counter()
    for at in queries.confirmed_defect_times(engine, plant, since, until):
        span = calendar.shift_at(at)
        shifts[span.name if span else None] += 1  # None: cast between shifts
    return sorted(shifts.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
