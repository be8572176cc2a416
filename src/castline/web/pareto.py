"""Defect Pareto of a period: parts a person confirmed NG, counted by defect type, machine
and die, with each one's share and the running share (the 80 % line of a Pareto)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from castline.web import queries


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
    engine: Engine, plant: str, since: datetime, until: datetime
) -> dict[str, list[ParetoRow]]:
    """Each grouping of queries.PARETO_BY; all empty when no part was confirmed NG."""
    return {
        by: shares(queries.confirmed_defects(engine, plant, since, until, by))
        for by in queries.PARETO_BY
    }
