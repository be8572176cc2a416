"""PNG charts people would rather look at: control charts, KPI trends, benefit bars."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from castline.analytics.spc import DRIFT_RULES, Chart
from castline.domain.units import BY_NAME

# Figures are built without pyplot: no global state, safe in web request threads.


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def control_chart_png(chart: Chart, title: str = "", last: int | None = None) -> bytes:
    """The chart's points with each regime's centre line and limits, its baseline shaded,
    the spec limits, rule hits in red, dispersion below. All points unless `last`."""
    p = BY_NAME[chart.parameter]
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
    top.axvspan(x[0], x[0], color="#2a2", alpha=0.08, label="baseline")
    for limit, name in zip(chart.spec, ("LSL", "USL"), strict=True):
        if limit is not None:
            top.axhline(limit, color="#b60", ls=":", lw=1.0, label=name)
    # Points beyond 3 sigma in red; a drift (EWMA, CUSUM) marks long stretches, so it is
    # a thin band along the bottom rather than a red carpet over the points.
    beyond = (chart.fired["nelson1"] & chart.monitored)[first:]
    top.plot(x[beyond], chart.points[first:][beyond], "o", ms=3, color="#c22", label="beyond 3σ")
    drift = np.zeros(n, dtype=bool)
    for rule in DRIFT_RULES:
        drift |= chart.fired[rule]
    drift = (drift & chart.monitored)[first:]
    floor = float(np.nanmin(chart.points[first:]))
    top.plot(x[drift], np.full(int(drift.sum()), floor), "|", ms=4, color="#e90", label="drift")
    top.set_ylabel(f"{p.label} [{p.unit}]")
    top.set_title(title or f"{chart.kind} chart: {p.label}")
    top.legend(loc="upper left", fontsize=8)
    bottom.plot(x, chart.dispersion[first:], lw=0.6, color="#555")
    bottom.axhline(chart.limits.dispersion_center, color="#888", lw=0.8)
    bottom.axhline(chart.limits.dispersion_ucl, color="#888", ls="--", lw=0.8)
    bottom.set_ylabel({"I-MR": "MR", "X-bar/R": "R", "X-bar/S": "S"}[chart.kind])
    fig.autofmt_xdate()
    return _png(fig)


def machine_chart_png(chart: Chart, plant: str, machine: str) -> bytes:
    """A control chart titled with the machine it watches."""
    return control_chart_png(chart, title=f"{plant}/{machine}: {BY_NAME[chart.parameter].label}")


def kpi_trend_png(
    rows: list[dict[str, Any]], names: tuple[str, ...] = ("oee", "availability", "quality_ratio")
) -> bytes:
    """KPIs per period, one line per unit and KPI."""
    frame = pd.DataFrame(rows)
    fig = Figure(figsize=(11, 4))
    ax = fig.subplots()
    if not frame.empty:
        frame["period_start"] = pd.to_datetime(frame["period_start"])
        for unit, g in frame.groupby("unit"):
            for name in names:
                ax.plot(
                    g["period_start"], g[name].astype(float), marker=".", label=f"{unit} {name}"
                )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("ratio")
    ax.legend(fontsize=7, ncol=3)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def benefit_png(rows: list[dict[str, Any]]) -> bytes:
    """Measured change of each benefit against its target, with its interval."""
    names = [r["metric"] for r in rows]
    change = [r["change_pct"] if r["change_pct"] is not None else 0.0 for r in rows]
    target = [r["target_pct"] for r in rows]
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    y = np.arange(len(rows))
    colors = ["#2a7" if r["met"] else "#c44" for r in rows]
    ax.barh(y, change, color=colors, height=0.5, label="measured change")
    for i, r in enumerate(rows):
        if r.get("low_pct") is not None and r.get("high_pct") is not None:
            ax.plot([r["low_pct"], r["high_pct"]], [i, i], color="k", lw=2)
    ax.scatter(target, y, marker="|", s=400, color="k", label="target")
    ax.set_yticks(y, names)
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_xlabel("% improvement against the baseline (line: interval)")
    ax.legend(fontsize=8)
    return _png(fig)
