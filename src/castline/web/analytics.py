"""The dashboard's window on castline.analytics: it computes, the dashboard shows.

Every figure is computed with the plant's analytics configuration (`plant_config`: the
settings' analytics_file), the one `castline report` uses, so both give the same numbers.

Analytics raises LookupError or ValueError where there is nothing to compute yet (no
shots in range, too few for a baseline); a page then shows "—" instead of failing. The
configuration is read before that, outside `optional`: a broken file is an error, never
a page of dashes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from time import monotonic as time_now
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy import Engine

from castline.analytics import benefit as benefit_report
from castline.analytics import kpis, spc
from castline.analytics.benefit_plan import PlanError
from castline.analytics.config import AnalyticsConfig, of
from castline.settings import Settings
from castline.web.plant_time import PlantClock

T = TypeVar("T")
WEEK = timedelta(days=7)


def plant_config(request: Request) -> AnalyticsConfig:
    """The plant's analytics configuration: spec limits, planned cycle time, shifts, lines."""
    return of(request.app.state.settings)


def optional(compute: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    try:
        return compute(*args, **kwargs)
    except (LookupError, ValueError):
        return None


def start_of_day(settings: Settings, now: datetime | None = None) -> datetime:
    """The start of the plant's day (midnight in its time zone), as an aware UTC time."""
    return PlantClock.of(settings).start_of_day(now)


class OeeToday:
    """OEE of each machine since the plant's midnight (ISO 22400, from castline.analytics).

    Computing it reads the day's shots; an overview opened on many screens reuses the
    figure for `max_age_s` (the tiles then update live).
    """

    def __init__(self, max_age_s: float = 60.0) -> None:
        self.max_age_s = max_age_s
        self._cache: dict[str, tuple[float, dict[str, float | None]]] = {}

    def __call__(
        self, engine: Engine, plant: str, config: AnalyticsConfig, since: datetime
    ) -> dict[str, float | None]:
        cached = self._cache.get(plant)
        if cached and time_now() - cached[0] < self.max_age_s:
            return cached[1]
        rows = optional(kpis.kpi_table, engine, plant, since, datetime.now(UTC), config=config)
        rows = rows or []
        oee = {row["unit"]: row["oee"] for row in rows}
        self._cache[plant] = (time_now(), oee)
        return oee


def part_limits(
    engine: Engine, shot: dict[str, Any], parameters: list[str], config: AnalyticsConfig
) -> dict[str, Any]:
    """Control limits of each parameter of a shot, from the week of its die before it."""
    limits = {}
    for name in parameters:
        chart = optional(
            spc.control_chart,
            engine,
            shot["plant"],
            shot["machine"],
            name,
            die=shot["die"],
            since=shot["at"] - WEEK,
            until=shot["at"] + timedelta(seconds=1),
            last=1,
            config=config,
        )
        if chart is not None and chart["lcl"] is not None:
            limits[name] = {"lcl": chart["lcl"], "ucl": chart["ucl"], "center": chart["center"]}
    return limits


def benefit(engine: Engine, plant: str, config: AnalyticsConfig) -> dict[str, Any]:
    """The benefit report under the plan the analytics file declares; without a plan (or
    before its comparison period began) no figures, and the reason why."""
    try:
        return {"declared": True, "problem": None} | benefit_report.report(
            engine, plant, config.benefit, config
        )
    except PlanError as exc:
        return {
            "plant": plant,
            "declared": False,
            "problem": str(exc),
            "plan": config.benefit.as_dict(),
            "rows": [],
            "assumptions": [],
        }
