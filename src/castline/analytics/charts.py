"""PNG charts people would rather look at: control charts, KPI trends, benefit bars."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from castline.analytics.spc import DRIFT_RULES, Chart
from castline.domain.units import BY_NAME

# Figures are built without pyplot: no global state, safe in web request threads.


UTC_ZONE = ZoneInfo("UTC")


def _english_label(parameter: str) -> str:
    return BY_NAME[parameter].label


@dataclass(frozen=True)
class ChartWords:
    """What a chart says and in which zone its clock runs. English and UTC by default
    (reports); the dashboard passes the page's language and the plant's zone, since a PNG
    cannot be translated after it is drawn."""

    zone: tzinfo = UTC_ZONE
    zone_name: str = "UTC"
    time: str = "time"
    title: str = "{kind} chart: {parameter}"
    baseline: str = "baseline"
    beyond: str = "beyond 3σ"
    drift: str = "drift"
    ratio: str = "ratio"
    measured: str = "measured change"
    target: str = "target"
    improvement: str = "% improvement against the baseline (line: interval)"
    kpis: Mapping[str, str] = field(default_factory=dict)  # oee -> "OEE"
    parameter: Callable[[str], str] = _english_label

    @property
    def time_axis(self) -> str:
        """`time (Asia/Shanghai)`: every clock on a chart names its zone."""
        return f"{self.time} ({self.zone_name})"


ENGLISH = ChartWords()


def _clock_axis(ax: Any, words: ChartWords) -> None:
    """Dates on the x axis read in the chart's zone, the zone named under them."""
    locator = AutoDateLocator(tz=words.zone)
    ax.xaxis.set_major_locator(locator)
    numeric = ConciseDateFormatter(  # digits only: month names would be English on a zh page
        locator,
        tz=words.zone,
        formats=["%Y", "%m", "%d", "%H:%M", "%H:%M", "%S.%f"],
        zero_formats=["", "%Y", "%m-%d", "%m-%d", "%H:%M", "%H:%M"],
        offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
    )
    ax.xaxis.set_major_formatter(numeric)
    ax.set_xlabel(words.time_axis)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def control_chart_png(
    chart: Chart, title: str = "", last: int | None = None, words: ChartWords = ENGLISH
) -> bytes:
    """The chart's points with each regime's centre line and limits, its baseline shaded,
    the spec limits, rule hits in red, dispersion below. All points unless `last`."""
    n = chart.points.size
    first = 0 if last is None else max(0, n - last)
    x = chart.at[first:]
    fig = Figure(figsize=(11, 5.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(x, chart.points[first:], lw=0.7, marker=".", ms=2, color="#345")
    for r in chart.regimes:
        if r.stop <= first:
            continue
        span = chart.at[max(r.start, first) : r.stop]
        lim = r.limits
        for y, style in ((lim.center, "-"), (lim.lcl, "--"), (lim.ucl, "--")):
            top.plot(span[[0, -1]], [y, y], color="#888", ls=style, lw=0.8)
        if r.start >= first:
            base_end = chart.at[r.start + r.baseline - 1]
            top.axvspan(chart.at[r.start], base_end, color="#2a2", alpha=0.08)
    top.axvspan(x[0], x[0], color="#2a2", alpha=0.08, label=words.baseline)
    for limit, name in zip(chart.spec, ("LSL", "USL"), strict=True):
        if limit is not None:
            top.axhline(limit, color="#b60", ls=":", lw=1.0, label=name)
    # Points beyond 3 sigma in red; a drift (EWMA, CUSUM) marks long stretches, so it is
    # a thin band along the bottom rather than a red carpet over the points.
    beyond = (chart.fired["nelson1"] & chart.monitored)[first:]
    top.plot(x[beyond], chart.points[first:][beyond], "o", ms=3, color="#c22", label=words.beyond)
    drift = np.zeros(n, dtype=bool)
    for rule in DRIFT_RULES:
        drift |= chart.fired[rule]
    drift = (drift & chart.monitored)[first:]
    floor = float(np.nanmin(chart.points[first:]))
    top.plot(x[drift], np.full(int(drift.sum()), floor), "|", ms=4, color="#e90", label=words.drift)
    name = words.parameter(chart.parameter)
    top.set_ylabel(f"{name} [{chart.shown_unit}]")
    top.set_title(title or words.title.format(kind=chart.kind, parameter=name))
    top.legend(loc="upper left", fontsize=8)
    bottom.plot(x, chart.dispersion[first:], lw=0.6, color="#555")
    bottom.axhline(chart.limits.dispersion_center, color="#888", lw=0.8)
    bottom.axhline(chart.limits.dispersion_ucl, color="#888", ls="--", lw=0.8)
    bottom.set_ylabel({"I-MR": "MR", "X-bar/R": "R", "X-bar/S": "S"}[chart.kind])
    _clock_axis(bottom, words)
    return _png(fig)


def machine_chart_png(chart: Chart, plant: str, machine: str, words: ChartWords = ENGLISH) -> bytes:
    """A control chart titled with the machine it watches."""
    title = f"{plant}/{machine}: {words.parameter(chart.parameter)}"
    return control_chart_png(chart, title=title, words=words)


def kpi_trend_png(
    rows: list[dict[str, Any]],
    names: tuple[str, ...] = ("oee", "availability", "quality_ratio"),
    words: ChartWords = ENGLISH,
    span: tuple[datetime, datetime] | None = None,
) -> bytes:
    """KPIs per period, one line per unit and KPI, over `span` when given (one day's
    point would otherwise sit in an axis of years)."""
    frame = pd.DataFrame(rows)
    fig = Figure(figsize=(11, 4))
    ax = fig.subplots()
    if not frame.empty:
        frame["period_start"] = pd.to_datetime(frame["period_start"], utc=True)
        for unit, g in frame.groupby("unit"):
            for name in names:
                label = f"{unit} {words.kpis.get(name, name)}"
                ax.plot(g["period_start"], g[name].astype(float), marker=".", label=label)
        ax.legend(fontsize=7, ncol=3)
    if span is not None:
        ax.set_xlim(date2num(span[0]), date2num(span[1]))
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(words.ratio)
    ax.grid(alpha=0.3)
    _clock_axis(ax, words)
    return _png(fig)


def benefit_png(rows: list[dict[str, Any]], words: ChartWords = ENGLISH) -> bytes:
    """Measured change of each benefit against its target, with its interval."""
    names = [r["metric"] for r in rows]
    change = [r["change_pct"] if r["change_pct"] is not None else 0.0 for r in rows]
    target = [r["target_pct"] for r in rows]
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    y = np.arange(len(rows))
    colors = ["#2a7" if r["met"] else "#c44" for r in rows]
    ax.barh(y, change, color=colors, height=0.5, label=words.measured)
    for i, r in enumerate(rows):
        if r.get("low_pct") is not None and r.get("high_pct") is not None:
            ax.plot([r["low_pct"], r["high_pct"]], [i, i], color="k", lw=2)
    ax.scatter(target, y, marker="|", s=400, color="k", label=words.target)
    ax.set_yticks(y, names)
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_xlabel(words.improvement)
    ax.legend(fontsize=8)
    return _png(fig)
