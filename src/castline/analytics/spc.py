"""SPC monitoring of the process parameters, per machine and die, raising alarms.

Limits come from a baseline (the first shots of the window, or a period given); the
rules are checked on what follows. A rule that fires raises one alarm per machine,
die, parameter and rule, de-duplicated in the alarms table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from castline.analytics import alarms, queries
from castline.analytics.config import AnalyticsConfig
from castline.domain import spc
from castline.domain.units import BY_NAME, NAMES

CRITICAL_RULES = {"nelson1", "we1"}
# Rules that raise alarms by default: Nelson's eight and the drift detectors. The Western
# Electric rules repeat Nelson's 1, 5, 6 and a shorter run, so they are opt-in.
DEFAULT_RULES = (*(f"nelson{i}" for i in range(1, 9)), "ewma", "cusum_up", "cusum_down")


@dataclass(slots=True)
class Chart:
    """One control chart: plotted points, limits, and where each rule fired."""

    parameter: str
    kind: str  # "I-MR", "X-bar/R", "X-bar/S"
    at: pd.DatetimeIndex
    points: np.ndarray
    dispersion: np.ndarray  # moving range, range or standard deviation
    baseline_points: int
    limits: spc.Limits
    capability: spc.Capability
    z: np.ndarray  # points in sigmas from the centre line
    cusum_up: np.ndarray
    cusum_down: np.ndarray
    fired: dict[str, np.ndarray] = field(default_factory=dict)  # rule -> flags per point

    def summary(self) -> dict[str, Any]:
        monitored = slice(self.baseline_points, None)
        rules = {}
        for rule, flags in self.fired.items():
            hits = np.flatnonzero(flags[monitored]) + self.baseline_points
            if hits.size:
                began = spc.onset(rule, int(hits[0]), self.cusum_up, self.cusum_down, self.z)
                rules[rule] = {
                    "count": int(hits.size),
                    "onset_at": self.at[began].isoformat(),
                    "first_at": self.at[hits[0]].isoformat(),
                    "last_at": self.at[hits[-1]].isoformat(),
                    "meaning": spc.RULE_TEXT[rule],
                }
        lim = self.limits
        return {
            "parameter": self.parameter,
            "unit": BY_NAME[self.parameter].unit,
            "chart": self.kind,
            "points": int(self.points.size),
            "baseline_points": self.baseline_points,
            "center": lim.center,
            "lcl": lim.lcl,
            "ucl": lim.ucl,
            "sigma": lim.sigma,
            "cp": self.capability.cp,
            "cpk": self.capability.cpk,
            "rules": rules,
        }


def build_chart(
    parameter: str,
    at: pd.DatetimeIndex,
    values: np.ndarray,
    *,
    baseline_shots: int,
    subgroup: int = 1,
    lsl: float | None = None,
    usl: float | None = None,
) -> Chart:
    """Chart one parameter's measured values (time order) against its baseline."""
    keep = ~np.isnan(values)
    values, at = values[keep], at[keep]
    if values.size < max(2 * subgroup, 2) or baseline_shots < 2 * subgroup:
        raise ValueError(f"{parameter}: too few measured shots for a chart ({values.size})")
    base = values[:baseline_shots]
    if subgroup == 1:
        kind, limits = "I-MR", spc.individuals_limits(base)
        points = values
        dispersion = np.concatenate(([np.nan], np.abs(np.diff(values))))
        point_at = at
        base_points = min(baseline_shots, values.size)
    else:
        kind = "X-bar/R" if subgroup <= 10 else "X-bar/S"
        limits = (spc.xbar_r_limits if subgroup <= 10 else spc.xbar_s_limits)(base, subgroup)
        groups = spc.subgroups(values, subgroup)
        points = groups.mean(axis=1)
        dispersion = np.ptp(groups, axis=1) if subgroup <= 10 else groups.std(axis=1, ddof=1)
        point_at = at[subgroup - 1 :: subgroup][: points.size]
        base_points = base.size // subgroup
    # Capability uses the within sigma of single shots, whatever the chart plots.
    shot_sigma = limits.sigma * np.sqrt(subgroup)
    current = values[baseline_shots:] if values.size > baseline_shots else values
    capability = spc.capability(current, shot_sigma, lsl, usl)
    z = (points - limits.center) / limits.sigma
    fired = spc.nelson(z) | spc.western_electric(z)
    ew_out = spc.ewma(points, limits.center, limits.sigma)[3]
    c_up, c_down, up, down = spc.cusum(points, limits.center, limits.sigma)
    fired |= {"ewma": ew_out, "cusum_up": up, "cusum_down": down}
    return Chart(
        parameter,
        kind,
        point_at,
        points,
        dispersion,
        base_points,
        limits,
        capability,
        z,
        c_up,
        c_down,
        fired,
    )


def _message(chart: Chart, rule: str, where: str, info: dict[str, Any]) -> str:
    p, lim = BY_NAME[chart.parameter], chart.limits
    return (
        f"{p.label} on {where}: {spc.RULE_TEXT[rule]} ({info['count']}x, began about "
        f"{info['onset_at']}, last {info['last_at']}); "
        f"centre {lim.center:.4g} {p.unit}, limits {lim.lcl:.4g}..{lim.ucl:.4g}"
    )


def stored_chart(
    engine: Engine,
    plant: str,
    machine: str,
    parameter: str,
    *,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    baseline_shots: int = 200,
    subgroup: int = 1,
    config: AnalyticsConfig | None = None,
) -> Chart:
    """The control chart of one parameter of a machine's recorded shots (trial shots
    left out), with the spec limits of the die (the newest shot's, if none is given)."""
    if parameter not in BY_NAME:
        raise ValueError(f"unknown parameter {parameter!r}; known: {', '.join(BY_NAME)}")
    frame = queries.shots(engine, plant, machine=machine, die=die, since=since, until=until)
    frame = frame[~frame["trial"].astype(bool)]
    if frame.empty:
        raise LookupError(f"no shots of {plant}/{machine} in that range")
    spec = (config or AnalyticsConfig()).spec(die or str(frame["die"].iloc[-1]), parameter)
    return build_chart(
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
    *,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    baseline_shots: int = 200,
    subgroup: int = 1,
    last: int = 500,
    config: AnalyticsConfig | None = None,
) -> dict[str, Any]:
    """`stored_chart` for JSON: limits, capability, rule summary and the last `last`
    points with the rules they hit."""
    chart = stored_chart(
        engine, plant, machine, parameter, die=die, since=since, until=until,
        baseline_shots=baseline_shots, subgroup=subgroup, config=config,
    )  # fmt: skip
    n = chart.points.size
    start = max(0, n - last)
    names = list(chart.fired)
    hit = np.stack([chart.fired[r] for r in names])[:, start:]
    spread = chart.dispersion
    points = [
        {
            "at": chart.at[start + i].isoformat(),
            "value": float(chart.points[start + i]),
            "dispersion": None if np.isnan(spread[start + i]) else float(spread[start + i]),
            "rules": [names[j] for j in np.flatnonzero(hit[:, i])],
        }
        for i in range(n - start)
    ]
    return {"plant": plant, "machine": machine, "die": die, **chart.summary(), "series": points}


def monitor(
    engine: Engine,
    plant: str,
    *,
    machine: str | None = None,
    die: str | None = None,
    parameters: tuple[str, ...] = NAMES,
    since: datetime | None = None,
    until: datetime | None = None,
    baseline_shots: int = 500,
    subgroup: int = 1,
    config: AnalyticsConfig | None = None,
    raise_alarms: bool = True,
    rules: tuple[str, ...] = DEFAULT_RULES,
) -> list[dict[str, Any]]:
    """Chart every parameter of every machine and die in the window; raise what fires."""
    config = config or AnalyticsConfig()
    frame = queries.shots(engine, plant, machine=machine, die=die, since=since, until=until)
    frame = frame[~frame["trial"].astype(bool)]
    out = []
    for (m, d), group in frame.groupby(["machine", "die"], sort=True):
        at = pd.DatetimeIndex(group["at"])
        for name in parameters:
            values = group[name].to_numpy(dtype=float)
            if np.count_nonzero(~np.isnan(values)) < baseline_shots + subgroup:
                continue  # not measured here, or nothing after the baseline
            spec = config.spec(str(d), name)
            chart = build_chart(
                name,
                at,
                values,
                baseline_shots=baseline_shots,
                subgroup=subgroup,
                lsl=spec.lsl,
                usl=spec.usl,
            )
            summary = {"machine": m, "die": d, **chart.summary(), "alarms": []}
            if raise_alarms:
                for rule, info in summary["rules"].items():
                    if rule not in rules:
                        continue
                    alarm_id, _ = alarms.raise_alarm(
                        engine,
                        plant,
                        str(m),
                        str(d),
                        name,
                        rule,
                        _message(chart, rule, f"{m}/{d}", info),
                        severity="critical" if rule in CRITICAL_RULES else "warning",
                        at=datetime.fromisoformat(info["first_at"]),
                        seen_until=datetime.fromisoformat(info["last_at"]),
                    )
                    summary["alarms"].append(alarm_id)
            out.append(summary)
    return out
