"""Die and machine maintenance: die life, defect-rate trend, downtime causes, MTBF/MTTR.

Downtime and MTBF/MTTR come from the classified stops of `castline.analytics.downtime`
(breakdowns only; planned stops listed last).

A die is due when it nears its rated life since its last maintenance, or sooner when
its NG rate climbs with every shot (wear shows as defects before the counter says so).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from castline.analytics import downtime as stops
from castline.analytics import kpis, queries
from castline.analytics.config import AnalyticsConfig

DUE_AT = 0.9  # share of rated life at which to plan the next maintenance
MIN_TREND_SHOTS = 200


def ng_trend(ng: np.ndarray) -> tuple[float | None, bool]:
    """Slope of the NG rate in percentage points per 1000 shots, and whether it is
    clearly rising (slope more than two standard errors above zero)."""
    y = ng[~np.isnan(ng)]
    if y.size < MIN_TREND_SHOTS:
        return None, False
    x = np.arange(y.size, dtype=float) / 1000
    x -= x.mean()
    sxx = float(x @ x)
    slope = float(x @ (y - y.mean())) / sxx
    resid = y - y.mean() - slope * x
    se = math.sqrt(float(resid @ resid) / (y.size - 2) / sxx)
    return slope * 100, slope > 2 * se


def recommend(die: str, life_used: float, slope: float | None, rising: bool) -> tuple[str, str]:
    """(action, reason in the maintenance planner's words)."""
    parts = [f"die {die}: {life_used:.0%} of rated life"]
    if slope is not None and rising:
        parts.append(f"NG rate rising {slope:.1f} %/1000 shots")
    if life_used >= 1.0:
        action = "maintain now: rated life exceeded"
    elif life_used >= DUE_AT or rising:
        action = "plan polish at next setup"
    else:
        action = "no action"
    return action, ", ".join(parts) + f": {action}"


DEFAULT_RATED_LIFE = 100_000  # what a die record gets when nobody gave its rated life


def rated_life(code: str, stored: int, config: AnalyticsConfig) -> tuple[int, str]:
    """A die's rated life in shots and where it comes from: the analytics file, the die
    record, or the built-in default (said, so nobody plans on it unknowingly)."""
    if code in config.rated_life_by_die:
        return config.rated_life_by_die[code], "configured"
    if stored and stored != DEFAULT_RATED_LIFE:
        return stored, "die record"
    return DEFAULT_RATED_LIFE, "default"


def dies_report(
    engine: Engine,
    plant: str,
    since: datetime | None = None,
    until: datetime | None = None,
    config: AnalyticsConfig | None = None,
) -> list[dict[str, Any]]:
    """Per die: life used by the shots since its last maintenance (up to `until`); the
    NG trend and rate of the shots in the period [since, until) only."""
    config = config or AnalyticsConfig()
    dies = queries.dies(engine, plant)
    work = queries.die_maintenance(engine)
    if until is not None and not work.empty:
        work = work[work["at"] < pd.Timestamp(until)]
    shots = queries.shots(engine, plant, until=until)
    out = []
    for die in dies.to_dict("records"):
        code = str(die["code"])
        done = work[work["die"] == code]
        last = done["at"].max() if not done.empty else None
        mine = shots[(shots["die"] == code) & ~shots["trial"].astype(bool)]
        if last is not None:
            mine = mine[mine["at"] > last]
        rated, source = rated_life(code, int(die["rated_life_shots"] or 0), config)
        life = len(mine) / rated
        recent = mine if since is None else mine[mine["at"] >= pd.Timestamp(since)]
        slope, rising = ng_trend(recent["ng"].to_numpy(dtype=float))
        action, reason = recommend(code, life, slope, rising)
        if source == "default":
            reason += f" (rated life {rated:,} shots is a default: set rated_life_by_die)"
        out.append(
            {
                "die": code,
                "machine": die["machine"],
                "rated_life_shots": rated,
                "rated_life_source": source,
                "last_maintenance": last.isoformat() if last is not None else None,
                "shots_since_maintenance": len(mine),
                "shots_in_period": len(recent),
                "life_used": life,
                "ng_rate": float(recent["ng"].mean()) if recent["ng"].notna().any() else None,
                "ng_trend_pct_per_1000": slope,
                "ng_rising": rising,
                "action": action,
                "reason": reason,
            }
        )
    return sorted(out, key=lambda r: (r["action"] == "no action", -r["life_used"]))


def downtime(engine: Engine, plant: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Hours and stops per machine, stop class and reason; planned stops last."""
    segs = stops.segments(engine, plant, since, until)
    return [asdict(row) for row in stops.by_cause(segs, since, until)]


def report(
    engine: Engine,
    plant: str,
    since: datetime,
    until: datetime,
    config: AnalyticsConfig | None = None,
) -> dict[str, Any]:
    machines = kpis.kpi_table(engine, plant, since, until, by="total", config=config)
    availability = {r["unit"]: r["availability"] for r in machines}
    segs = stops.segments(engine, plant, since, until)
    return {
        "dies": dies_report(engine, plant, since, until, config),
        "downtime": [asdict(row) for row in stops.by_cause(segs, since, until)],
        "machines": [
            {
                "unit": r.machine,
                "failures": r.breakdowns,
                "mtbf_s": None if r.mtbf_h is None else r.mtbf_h * 3600,
                "mttr_s": None if r.mttr_min is None else r.mttr_min * 60,
                "availability": availability.get(r.machine),
            }
            for r in stops.reliability(segs, since, until)
        ],
    }
