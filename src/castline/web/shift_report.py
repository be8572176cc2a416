"""KPIs by shift for the KPI page: each shift of today and yesterday, plant time.

The shifts are the settings' plant calendar (`AnalyticsConfig.calendar`), the same ones
`castline report kpi --by shift` uses, so the page and the report agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from castline.analytics import kpis
from castline.analytics.config import AnalyticsConfig
from castline.web.analytics import optional


@dataclass(frozen=True, slots=True)
class ShiftKpi:
    """ISO 22400 KPIs of the plant in one shift; `start`/`end` as far as it is counted."""

    day: date  # the plant date the shift began on
    today: bool
    shift: str
    start: datetime
    end: datetime
    running: bool  # the shift now under way: its figures still grow
    oee: float | None
    availability: float | None
    effectiveness: float | None
    quality_ratio: float | None
    produced: int
    good: int
    scrap: int


def today_and_yesterday(
    engine: Engine, plant: str, config: AnalyticsConfig, now: datetime
) -> list[ShiftKpi]:
    """The plant's shifts since yesterday's plant midnight, newest first; shifts without
    any recorded machine state are left out (nothing to count yet)."""
    calendar = config.calendar
    today = calendar.local(now).date()
    since = calendar.midnight(today - timedelta(days=1))
    rows = optional(
        kpis.kpi_table, engine, plant, since, now, by="shift", level="plant", config=config
    )
    out = []
    for row in rows or []:
        start, end = datetime.fromisoformat(row["period_start"]), row["period_end"]
        span = calendar.shift_at(start)
        if span is None:  # between shifts
            continue
        out.append(
            ShiftKpi(
                day=span.day,
                today=span.day == today,
                shift=span.name,
                start=start,
                end=datetime.fromisoformat(end),
                running=span.end > now,
                oee=row["oee"],
                availability=row["availability"],
                effectiveness=row["effectiveness"],
                quality_ratio=row["quality_ratio"],
                produced=row["pq"],
                good=row["gq"],
                scrap=row["sq"],
            )
        )
    return sorted(out, key=lambda k: k.start, reverse=True)
