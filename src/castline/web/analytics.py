"""The dashboard's window on castline.analytics: it computes, the dashboard shows.

Analytics raises LookupError or ValueError where there is nothing to compute yet (no
shots in range, too few for a baseline); a page then shows "—" instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from time import monotonic as time_now
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


class OeeToday:
    """OEE of each machine since midnight UTC (ISO 22400, from castline.analytics).

    Computing it reads the day's shots; an overview opened on many screens reuses the
    figure for `max_age_s` (the tiles then update live).
    """

    def __init__(self, max_age_s: float = 60.0) -> None:
        self.max_age_s = max_age_s
        self._cache: dict[str, tuple[float, dict[str, float | None]]] = {}

    def __call__(self, engine: Engine, plant: str) -> dict[str, float | None]:
        cached = self._cache.get(plant)
        if cached and time_now() - cached[0] < self.max_age_s:
            return cached[1]
        now = datetime.now(UTC)
        rows = optional(service.kpis, engine, plant, start_of_day(now), now, by="day") or []
        oee = {row["unit"]: row["oee"] for row in rows}
        self._cache[plant] = (time_now(), oee)
        return oee


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
