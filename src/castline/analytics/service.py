"""What the web dashboard calls: plain dicts and lists ready for JSON, and PNG bytes.

Every function takes the engine and the plant first; times are aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from castline.analytics import alarms, charts, predict, queries, rootcause, spc
from castline.analytics import benefit as benefit_report
from castline.analytics import kpis as kpi_rows
from castline.analytics import maintenance as maintenance_report
from castline.analytics.config import AnalyticsConfig
from castline.domain.units import BY_NAME


def kpis(
    engine: Engine,
    plant: str,
    since: datetime,
    until: datetime,
    by: str = "day",
    level: str = "machine",
    machine: str | None = None,
    config: AnalyticsConfig | None = None,
) -> list[dict[str, Any]]:
    """ISO 22400 KPI rows: one per unit (machine, line, plant) and period."""
    return kpi_rows.kpi_table(
        engine, plant, since, until, by=by, level=level, machine=machine, config=config
    )


def kpi_trend_png(
    engine: Engine,
    plant: str,
    since: datetime,
    until: datetime,
    by: str = "day",
    level: str = "plant",
    config: AnalyticsConfig | None = None,
) -> bytes:
    return charts.kpi_trend_png(kpis(engine, plant, since, until, by, level, config=config))


def _chart(
    engine: Engine,
    plant: str,
    machine: str,
    parameter: str,
    die: str | None,
    since: datetime | None,
    until: datetime | None,
    baseline_shots: int,
    subgroup: int,
    config: AnalyticsConfig | None,
) -> spc.Chart:
    if parameter not in BY_NAME:
        raise ValueError(f"unknown parameter {parameter!r}; known: {', '.join(BY_NAME)}")
    frame = queries.shots(engine, plant, machine=machine, die=die, since=since, until=until)
    frame = frame[~frame["trial"].astype(bool)]
    if frame.empty:
        raise LookupError(f"no shots of {plant}/{machine} in that range")
    spec = (config or AnalyticsConfig()).spec(die or str(frame["die"].iloc[-1]), parameter)
    return spc.build_chart(
        parameter,
        pd.DatetimeIndex(frame["at"]),
        frame[parameter].to_numpy(dtype=float),
        baseline_shots=baseline_shots,
        subgroup=subgroup,
        lsl=spec.lsl,
        usl=spec.usl,
    )


def control_chart(
    engine: Engine,
    plant: str,
    machine: str,
    parameter: str,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    baseline_shots: int = 200,
    subgroup: int = 1,
    last: int = 500,
    config: AnalyticsConfig | None = None,
) -> dict[str, Any]:
    """Limits, capability, rule summary and the last `last` points with the rules they hit."""
    chart = _chart(
        engine, plant, machine, parameter, die, since, until, baseline_shots, subgroup, config
    )
    n = chart.points.size
    start = max(0, n - last)
    names = list(chart.fired)
    hit = np.stack([chart.fired[r] for r in names])[:, start:]
    points = [
        {
            "at": chart.at[start + i].isoformat(),
            "value": float(chart.points[start + i]),
            "dispersion": None
            if np.isnan(chart.dispersion[start + i])
            else float(chart.dispersion[start + i]),
            "rules": [names[j] for j in np.flatnonzero(hit[:, i])],
        }
        for i in range(n - start)
    ]
    return {"plant": plant, "machine": machine, "die": die, **chart.summary(), "series": points}


def control_chart_png(
    engine: Engine,
    plant: str,
    machine: str,
    parameter: str,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    baseline_shots: int = 200,
    subgroup: int = 1,
    config: AnalyticsConfig | None = None,
) -> bytes:
    chart = _chart(
        engine, plant, machine, parameter, die, since, until, baseline_shots, subgroup, config
    )
    return charts.control_chart_png(chart, title=f"{plant}/{machine}: {BY_NAME[parameter].label}")


def spc_scan(
    engine: Engine,
    plant: str,
    machine: str | None = None,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    baseline_shots: int = 500,
    config: AnalyticsConfig | None = None,
) -> list[dict[str, Any]]:
    """Check every parameter of every machine and die; raises the alarms that fire."""
    return spc.monitor(
        engine,
        plant,
        machine=machine,
        die=die,
        since=since,
        until=until,
        baseline_shots=baseline_shots,
        config=config,
    )


def root_cause(
    engine: Engine,
    plant: str,
    machine: str | None = None,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Parameters ranked by how much they explain NG parts, in plain words."""
    frame = queries.shots(engine, plant, machine=machine, die=die, since=since, until=until)
    frame = frame[~frame["trial"].astype(bool)]
    findings = rootcause.rank(frame)
    return {
        "shots": int(frame["ng"].notna().sum()),
        "ng": int((frame["ng"] == 1).sum()),
        "findings": [f.as_dict() for f in findings],
        "defects": rootcause.defect_links(frame, findings),
    }


def maintenance(
    engine: Engine,
    plant: str,
    since: datetime,
    until: datetime,
    config: AnalyticsConfig | None = None,
) -> dict[str, Any]:
    """Dies due for maintenance with the reason, downtime by cause, MTBF and MTTR."""
    return maintenance_report.report(engine, plant, since, until, config)


def benefit(
    engine: Engine,
    plant: str,
    baseline_since: datetime,
    baseline_until: datetime,
    since: datetime,
    until: datetime,
    config: AnalyticsConfig | None = None,
    baseline_response_h: float | None = None,
) -> dict[str, Any]:
    """Baseline against current period, for the four targets the plant was sold."""
    return benefit_report.report(
        engine,
        plant,
        benefit_report.Period(baseline_since, baseline_until),
        benefit_report.Period(since, until),
        config,
        baseline_response_h,
    )


def scrap_risk(
    engine: Engine, plant: str, die: str, train_until: datetime, until: datetime | None = None
) -> dict[str, Any]:
    """Train the die's quality model on earlier shots; alarm where later risk rises."""
    return predict.watch_scrap_risk(engine, plant, die, train_until, until)


def open_alarms(engine: Engine, plant: str, machine: str | None = None) -> list[dict[str, Any]]:
    return alarms.listing(engine, plant, machine=machine)


def acknowledge_alarm(engine: Engine, alarm_id: int, who: str, comment: str = "") -> bool:
    return alarms.acknowledge(engine, alarm_id, who, comment)


def clear_alarm(engine: Engine, alarm_id: int) -> bool:
    return alarms.clear(engine, alarm_id)
