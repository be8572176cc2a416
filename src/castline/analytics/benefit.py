"""Benefit report: a baseline period against the current one, measured, not claimed.

The plant was sold four targets: inspection labour -15 %, downtime -50 %, quality +5 %
and management efficiency +20 %. Each is measured the same way in both periods:

- inspection labour: manual inspection time per casting x castings a person had to
  decide (all of them without castline; REVIEW, QUARANTINE and undecided ones with it),
  per casting made, so periods of different output compare;
- downtime: share of planned busy time not producing (PBT - APT) / PBT;
- quality: ISO 22400 quality ratio GQ / PQ (scrap ratio shown beside it);
- management efficiency: the inverse of the mean time from an alarm to its
  acknowledgement, when the cause is named. A baseline without castline has no alarm
  records; give its figure with `baseline_response_h` from the plant's own logs.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from castline.analytics import kpis, queries
from castline.analytics.config import AnalyticsConfig
from castline.domain.kpi import Elements
from castline.store import tables as t

TARGETS_PCT = {
    "inspection labour": -15.0,
    "downtime": -50.0,
    "quality ratio": 5.0,
    "management efficiency": 20.0,
}


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime
    until: datetime


def _period_figures(
    engine: Engine, plant: str, period: Period, config: AnalyticsConfig
) -> dict[str, float | None]:
    shots = queries.shots(engine, plant, since=period.since, until=period.until)
    made = shots[~shots["trial"].astype(bool)]
    automatic = made["verdict"].isin(["OK", "NG"]) & made["review"].isna()
    labour = (
        config.manual_inspection_s * float((~automatic).sum()) / len(made) if len(made) else None
    )
    rows = kpis.kpi_table(
        engine, plant, period.since, period.until, by="total", level="plant", config=config
    )
    e = Elements()
    for row in rows:
        e = e + Elements(
            pbt_s=row["pbt_s"], apt_s=row["apt_s"], pq=row["pq"], gq=row["gq"], sq=row["sq"]
        )
    a = t.alarms
    with engine.connect() as conn:
        acks = conn.execute(
            select(a.c.raised_at, a.c.acked_at).where(
                a.c.plant == plant,
                a.c.raised_at >= period.since,
                a.c.raised_at < period.until,
                a.c.acked_at.is_not(None),
            )
        ).fetchall()
    response_h = (
        sum((ack - raised).total_seconds() for raised, ack in acks) / len(acks) / 3600
        if acks
        else None
    )
    return {
        "castings": float(len(made)),
        "labour_s_per_casting": labour,
        "downtime_share": (e.pbt_s - e.apt_s) / e.pbt_s if e.pbt_s else None,
        "quality_ratio": e.gq / e.pq if e.pq else None,
        "scrap_ratio": e.sq / e.pq if e.pq else None,
        "alarm_to_cause_h": response_h,
    }


def _change(base: float | None, current: float | None) -> float | None:
    if base is None or current is None or base == 0:
        return None
    return (current - base) / base * 100


def report(
    engine: Engine,
    plant: str,
    baseline: Period,
    current: Period,
    config: AnalyticsConfig | None = None,
    baseline_response_h: float | None = None,
) -> dict[str, Any]:
    """Each benefit with baseline, current, change and whether its target is met."""
    config = config or AnalyticsConfig()
    b = _period_figures(engine, plant, baseline, config)
    c = _period_figures(engine, plant, current, config)
    if baseline_response_h is not None:
        b["alarm_to_cause_h"] = baseline_response_h
    return {
        "plant": plant,
        "baseline": {**_span(baseline), "castings": b["castings"]},
        "current": {**_span(current), "castings": c["castings"]},
        "rows": _rows(b, c),
    }


def _span(period: Period) -> dict[str, str]:
    return {"since": period.since.isoformat(), "until": period.until.isoformat()}


# (metric, unit, figure) of the benefits with a target; efficiency = 1 / response time
_MEASURES = (
    ("inspection labour", "s per casting", "labour_s_per_casting"),
    ("downtime", "share of PBT", "downtime_share"),
    ("quality ratio", "GQ/PQ", "quality_ratio"),
    ("management efficiency", "h alarm to cause", "alarm_to_cause_h"),
)


def _rows(b: dict[str, float | None], c: dict[str, float | None]) -> list[dict[str, Any]]:
    """One row per benefit against its target, then the scrap ratio (no target)."""
    out = []
    for metric, unit, name in _MEASURES:
        base, cur = b[name], c[name]
        if name == "alarm_to_cause_h":  # faster response is more efficiency
            change = (base / cur - 1) * 100 if base is not None and cur else None
        else:
            change = _change(base, cur)
        target = TARGETS_PCT[metric]
        met = change is not None and (change <= target if target < 0 else change >= target)
        out.append(
            {
                "metric": metric,
                "unit": unit,
                "baseline": base,
                "current": cur,
                "change_pct": change,
                "target_pct": target,
                "met": met,
            }
        )
    scrap_b, scrap_c = b["scrap_ratio"], c["scrap_ratio"]
    out.append(
        {
            "metric": "scrap ratio",
            "unit": "SQ/PQ",
            "baseline": scrap_b,
            "current": scrap_c,
            "change_pct": _change(scrap_b, scrap_c),
            "target_pct": None,
            "met": None,
        }
    )
    return out


def to_csv(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(result["rows"][0]))
    writer.writeheader()
    writer.writerows(result["rows"])
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def to_html(result: dict[str, Any], images: dict[str, bytes]) -> str:
    """One self-contained page: the table and the PNG charts embedded."""
    head = ["metric", "unit", "baseline", "current", "change_pct", "target_pct", "met"]
    rows = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r[k])}</td>" for k in head) + "</tr>" for r in result["rows"]
    )
    figures = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for title, png in images.items()
    )
    b, c = result["baseline"], result["current"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>castline benefit report: {html.escape(result['plant'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
        "border-bottom:1px solid #ccc}</style></head><body>"
        f"<h1>Benefit report: plant {html.escape(result['plant'])}</h1>"
        f"<p>Baseline {b['since']} to {b['until']} ({b['castings']:.0f} castings); "
        f"current {c['since']} to {c['until']} ({c['castings']:.0f} castings).</p>"
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{rows}</table>"
        f"{figures}</body></html>"
    )


def daily_kpis(
    engine: Engine, plant: str, baseline: Period, current: Period, config: AnalyticsConfig
) -> list[dict[str, Any]]:
    """Plant KPIs per day over both periods, for the trend chart."""
    rows = []
    for period in (baseline, current):
        rows += kpis.kpi_table(
            engine, plant, period.since, period.until, by="day", level="plant", config=config
        )
    return sorted(rows, key=lambda r: pd.Timestamp(r["period_start"]))
