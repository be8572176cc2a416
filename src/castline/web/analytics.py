"""The dashboard's window on castline.analytics: it computes, the dashboard shows.

Analytics raises LookupError or ValueError where there is nothing to compute yet (no
shots in range, too few for a baseline); a page then shows "—" instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine

from castline.analytics import service

T = TypeVar("T")
WEEK = timedelta(days=7)


def optional(compute: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    try:
        return compute(*args, **kwargs)
    except (LookupError, ValueError):
        return None


def start_of_day(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return datetime.combine(now.date(), time(0), tzinfo=UTC)


def oee_today(engine: Engine, plant: str) -> dict[str, float | None]:
    """OEE of each machine since midnight UTC (ISO 22400, from castline.analytics)."""
    now = datetime.now(UTC)
    rows = optional(service.kpis, engine, plant, start_of_day(now), now, by="day") or []
    return {row["unit"]: row["oee"] for row in rows}


def part_limits(engine: Engine, shot: dict[str, Any], parameters: list[str]) -> dict[str, Any]:
    """Control limits of each parameter of a shot, from the week of its die before it."""
    limits = {}
    for name in parameters:
        chart = optional(
            service.control_chart,
            engine,
            shot["plant"],
            shot["machine"],
            name,
            die=shot["die"],
            since=shot["at"] - WEEK,
            until=shot["at"] + timedelta(seconds=1),
            last=1,
        )
        if chart is not None and chart["lcl"] is not None:
            limits[name] = {"lcl": chart["lcl"], "ucl": chart["ucl"], "center": chart["center"]}
    return limits


def benefit(engine: Engine, plant: str, days: int) -> dict[str, Any]:
    """The benefit report of the last `days` against the four times longer stretch before."""
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    return service.benefit(engine, plant, since - 4 * timedelta(days=days), since, since, until)
