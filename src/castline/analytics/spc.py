"""SPC monitoring of the process parameters, per machine and die, raising alarms.

Phase I finds the set-point regimes of the window (sustained level shifts) and sets
limits per regime from its first shots (the first regime: the baseline asked for),
with sigma never below the measurement resolution. Phase II checks the rules on what
follows each baseline. A rule that fires raises one alarm per machine, die, parameter
and rule, de-duplicated in the alarms table; a rule firing on nearly every point says
the limits are wrong, and raises one "baseline does not fit" alarm instead.
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
from castline.domain.units import BY_NAME, NAMES, fast_shot_doubtful, shown_unit

CRITICAL_RULES = {"nelson1", "we1"}
# Rules that raise alarms by default: a point beyond 3 sigma, the drift detectors, and a
# set-point change. The other Nelson and the Western Electric rules are shown on the chart
# and opt-in for alarms (`monitor(rules=...)`): on autocorrelated process data they fire
# on a good share of all points and bury the few alarms that matter.
DEFAULT_RULES = ("nelson1", "ewma", "cusum_up", "cusum_down", "level_shift")
# EWMA and CUSUM raise one "drift" alarm per chart between them. A baseline that does not
# fit is a finding of the report for the engineer (`misfit`), and silences the chart's
# rule alarms; as an alarm too when asked (rules including "baseline_misfit").
MIN_RUN = 200  # points a set-point must hold to be a regime of its own
MIN_BASE = 20  # fewest points that set a regime's limits
MISFIT_SHARE = 0.8  # a rule firing on this share of the points: the limits are wrong
# Only rule 1 says the limits are wrong: EWMA and CUSUM fire on every point after a real
# sustained shift, which is theirs to report (one drift alarm).
MISFIT_RULES = ("nelson1",)
STABLE_RATIO = 1.5  # overall sigma above this many within sigmas: Cpk would flatter
RESTART_GAP = pd.Timedelta(minutes=30)  # a longer pause between shots: the die cooled
WARMUP_SHOTS = 10  # shots after such a pause that warm the die: charted, not checked
RULE1_BUDGET = 0.01  # share of checked points beyond 3 sigma before rule 1 raises an alarm
DRIFT_RULES = ("ewma", "cusum_up", "cusum_down")  # one drift alarm per chart for these


@dataclass(frozen=True, slots=True)
class Regime:
    """Points [start, stop) at one set-point, limits from its first `baseline` points."""

    start: int
    stop: int
    baseline: int
    limits: spc.Limits
    drift_sigma: float  # sigma for EWMA and CUSUM, widened for the baseline's autocorrelation


@dataclass(slots=True)
class Chart:
    """One control chart: plotted points, limits per regime, and where each rule fired."""

    parameter: str
    kind: str  # "I-MR", "X-bar/R", "X-bar/S"
    at: pd.DatetimeIndex
    points: np.ndarray
    dispersion: np.ndarray  # moving range, range or standard deviation
    regimes: list[Regime]
    monitored: np.ndarray  # True where a point is checked (outside every regime's baseline)
    sigma_floor: float  # of one shot: the measurement resolution
    capability: spc.Capability  # Cp/Cpk, or nothing when subgroups do not allow it
    performance: spc.Capability  # Pp/Ppk in its cp/cpk fields
    capability_note: str
    spec: tuple[float | None, float | None]
    z: np.ndarray  # points in sigmas from their regime's centre line
    cusum_up: np.ndarray
    cusum_down: np.ndarray
    fired: dict[str, np.ndarray] = field(default_factory=dict)  # rule -> flags per point
    misfit: str | None = None  # why the limits do not describe the process, if so
    misfit_start: int = 0  # the first checked point of the regime they do not fit
    unit: str = ""  # as shown, when not the parameter's own (SOURCE_UNITS: a doubtful unit)

    @property
    def shown_unit(self) -> str:
        return self.unit or BY_NAME[self.parameter].unit

    @property
    def limits(self) -> spc.Limits:
        """The limits where the process runs now: those of the last regime."""
        return self.regimes[-1].limits

    @property
    def baseline_points(self) -> int:
        return self.regimes[0].baseline

    def hits(self, rule: str) -> np.ndarray:
        """Indices where a rule fired on a checked point (a level shift: where it began)."""
        if rule == "level_shift":
            return np.array([r.start for r in self.regimes[1:]], dtype=np.int64)
        return np.flatnonzero(self.fired[rule] & self.monitored)

    def summary(self) -> dict[str, Any]:
        rules = {}
        for rule in (*self.fired, "level_shift"):
            hits = self.hits(rule)
            if hits.size:
                began = int(hits[0])
                if rule != "level_shift":
                    began = spc.onset(rule, began, self.cusum_up, self.cusum_down, self.z)
                rules[rule] = self._hit(rule, hits, began)
        if self.misfit is not None:
            at = np.array([self.misfit_start])
            rules["baseline_misfit"] = self._hit("baseline_misfit", at, self.misfit_start)
        lim, (lsl, usl) = self.limits, self.spec
        cpk_ok = self.capability.cpk is not None
        return {
            "parameter": self.parameter,
            "unit": self.shown_unit,
            "chart": self.kind,
            "points": int(self.points.size),
            "baseline_points": self.baseline_points,
            "center": lim.center,
            "lcl": lim.lcl,
            "ucl": lim.ucl,
            "sigma": lim.sigma,
            "sigma_floor": self.sigma_floor,
            "lsl": lsl,
            "usl": usl,
            "cp": self.capability.cp,
            "cpk": self.capability.cpk,
            "pp": self.performance.cp,
            "ppk": self.performance.cpk,
            "capability_index": "Cpk" if cpk_ok else "Ppk",
            "capability_note": self.capability_note,
            "regimes": [self._regime(r) for r in self.regimes],
            "misfit": self.misfit,
            "rules": rules,
        }

    def _hit(self, rule: str, hits: np.ndarray, began: int) -> dict[str, Any]:
        first = int(hits[0]) if hits.size else began
        last = int(hits[-1]) if hits.size else began
        return {
            "count": int(hits.size),
            "onset_at": self.at[min(began, first)].isoformat(),
            "first_at": self.at[first].isoformat(),
            "last_at": self.at[last].isoformat(),
            "meaning": spc.RULE_TEXT[rule],
        }

    def _regime(self, r: Regime) -> dict[str, Any]:
        return {
            "start_at": self.at[r.start].isoformat(),
            "end_at": self.at[r.stop - 1].isoformat(),
            "points": r.stop - r.start,
            "baseline_points": r.baseline,
            "center": r.limits.center,
            "lcl": r.limits.lcl,
            "ucl": r.limits.ucl,
            "sigma": r.limits.sigma,
        }


def warming_up(at: pd.DatetimeIndex) -> np.ndarray:
    """True for the first shots after a pause: a cold die casts its warm-up shots off the
    process's level, every restart, and they say nothing about the process."""
    gap = np.concatenate(([True], np.diff(at.asi8) > RESTART_GAP.value))
    since_restart = np.arange(at.size) - np.maximum.accumulate(np.where(gap, np.arange(at.size), 0))
    return np.asarray(since_restart < WARMUP_SHOTS)


def _limits(kind: str, values: np.ndarray, subgroup: int, floor: float) -> spc.Limits:
    if kind == "I-MR":
        return spc.individuals_limits(values, floor)
    if kind == "X-bar/R":
        return spc.xbar_r_limits(values, subgroup, floor)
    return spc.xbar_s_limits(values, subgroup, floor)


def _regimes(
    kind: str, values: np.ndarray, points: np.ndarray, subgroup: int, first_base: int, floor: float
) -> list[Regime]:
    """Set-point regimes of the points, each with limits from its own first points."""
    spans = spc.regimes(
        points, min_run=max(MIN_BASE, MIN_RUN // subgroup), floor=floor / np.sqrt(subgroup)
    )
    out = []
    for i, (a, b) in enumerate(spans):
        base = first_base if i == 0 else min(first_base, max(MIN_BASE, (b - a) // 2))
        base = max(2, min(base, b - a))
        shots = values[a * subgroup : (a + base) * subgroup]
        # Process data wander (temperatures follow the ladle and the die's heat): the
        # moving range sees only shot-to-shot noise. The baseline's own robust spread
        # is the least sigma that does not flag its ordinary wander.
        spread = max(floor, 1.4826 * float(np.median(np.abs(shots - np.median(shots)))))
        limits = _limits(kind, shots, subgroup, spread)
        r = spc.lag1(points[a : a + base])
        out.append(Regime(a, b, base, limits, spc.drift_sigma(limits.sigma, r)))
    return out


def _walks(points: np.ndarray, regimes: list[Regime]) -> tuple[np.ndarray, ...]:
    """z, EWMA alarm, CUSUM up and down, each started afresh in every regime."""
    parts = []
    for r in regimes:
        x, lim = points[r.start : r.stop], r.limits
        z = (x - lim.center) / lim.sigma
        ew = spc.ewma(x, lim.center, r.drift_sigma)[3]
        parts.append((z, ew, *spc.cusum(x, lim.center, r.drift_sigma)))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _misfit(chart: Chart) -> tuple[str, int] | None:
    """A rule firing on nearly every checked point of a regime says the limits are wrong."""
    for r in chart.regimes:
        checked = chart.monitored[r.start : r.stop]
        if checked.sum() < MIN_BASE:
            continue
        for rule in MISFIT_RULES:
            share = float(chart.fired[rule][r.start : r.stop][checked].mean())
            if share >= MISFIT_SHARE:
                text = (
                    f"{rule} fires on {share:.0%} of the points after the baseline of the "
                    f"regime from {chart.at[r.start].isoformat()}: the limits "
                    f"({r.limits.lcl:.4g}..{r.limits.ucl:.4g}) do not describe this process"
                )
                return text, r.start + r.baseline
    return None


def _capability(
    values: np.ndarray, within: float, subgroup: int, spec: tuple[float | None, float | None]
) -> tuple[spc.Capability, spc.Capability, str]:
    """Cp/Cpk only where rational subgroups hold the process's variation; Pp/Ppk always."""
    overall = spc.performance(values, *spec)
    if subgroup == 1:
        note = "Ppk (overall sigma): single shots form no rational subgroups for Cpk"
    elif overall.sigma > STABLE_RATIO * within:
        note = (
            f"Ppk (overall sigma): the within-subgroup sigma {within:.3g} is far below the "
            f"overall {overall.sigma:.3g}, so Cpk would flatter an unstable process"
        )
    else:
        return spc.capability(values, within, *spec), overall, "Cpk (within-subgroup sigma)"
    return spc.Capability(None, None, overall.mean, within), overall, note


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
    """Chart one parameter's measured values (time order): limits per set-point regime,
    the first from the first `baseline_shots`, then rules on what follows each baseline."""
    keep = ~np.isnan(values)
    values, at = values[keep], at[keep]
    if values.size < max(2 * subgroup, 2) or baseline_shots < 2 * subgroup:
        raise ValueError(f"{parameter}: too few measured shots for a chart ({values.size})")
    floor = spc.resolution(values)
    if subgroup == 1:
        kind, points, point_at = "I-MR", values, at
        dispersion = np.concatenate(([np.nan], np.abs(np.diff(values))))
    else:
        kind = "X-bar/R" if subgroup <= 10 else "X-bar/S"
        groups = spc.subgroups(values, subgroup)
        points = groups.mean(axis=1)
        dispersion = np.ptp(groups, axis=1) if subgroup <= 10 else groups.std(axis=1, ddof=1)
        point_at = at[subgroup - 1 :: subgroup][: points.size]
    first_base = min(baseline_shots // subgroup, points.size)
    regimes = _regimes(kind, values, points, subgroup, first_base, floor)
    monitored = ~warming_up(point_at)
    for r in regimes:
        monitored[r.start : r.start + r.baseline] = False
    z, ew_out, c_up, c_down, up, down = _walks(points, regimes)
    fired = spc.nelson(z) | spc.western_electric(z)
    fired |= {"ewma": ew_out, "cusum_up": up, "cusum_down": down}
    # Capability of the process as it runs now: the last regime's shots.
    now = values[regimes[-1].start * subgroup :]
    spec = (lsl, usl)
    within = spc.within_sigma(now, subgroup, floor) if subgroup > 1 else 0.0
    cap, perf, note = _capability(now, within, subgroup, spec)
    chart = Chart(
        parameter, kind, point_at, points, dispersion, regimes, monitored, floor,
        cap, perf, note, spec, z, c_up, c_down, fired,
    )  # fmt: skip
    found = _misfit(chart)
    if found is not None:
        chart.misfit, chart.misfit_start = found
    return chart


def _message(chart: Chart, rule: str, where: str, info: dict[str, Any]) -> str:
    p, lim, unit = BY_NAME[chart.parameter], chart.limits, chart.shown_unit
    if rule == "level_shift":
        steps = [
            f"{chart.at[b.start].isoformat()}: {a.limits.center:.4g} -> {b.limits.center:.4g}"
            for a, b in zip(chart.regimes, chart.regimes[1:], strict=False)
        ]
        return f"{p.label} on {where}: level shift ({unit}) at " + "; ".join(steps)
    if rule == "drift":
        return (
            f"{p.label} on {where}: {info['meaning']} (began about {info['onset_at']}, "
            f"last {info['last_at']}); centre {lim.center:.4g} {unit}"
        )
    if rule == "baseline_misfit":
        return f"{p.label} on {where}: the baseline does not fit: {chart.misfit}"
    return (
        f"{p.label} on {where}: {spc.RULE_TEXT[rule]} ({info['count']}x, began about "
        f"{info['onset_at']}, last {info['last_at']}); "
        f"centre {lim.center:.4g} {unit}, limits {lim.lcl:.4g}..{lim.ucl:.4g}"
    )


def _outside_spec(chart: Chart, values: np.ndarray) -> bool:
    lsl, usl = chart.spec
    return bool(
        (lsl is not None and np.any(values < lsl)) or (usl is not None and np.any(values > usl))
    )


def severity(chart: Chart, rule: str) -> str:
    """Critical when product is at risk: points beyond 3 sigma that also lie outside the
    spec limits, or a set-point moved outside them; else a warning (a process signal
    inside the spec)."""
    if rule in CRITICAL_RULES:
        hits = chart.points[chart.hits(rule)]
        return "critical" if _outside_spec(chart, hits) else "warning"
    if rule == "level_shift":
        return "critical" if _outside_spec(chart, np.array([chart.limits.center])) else "warning"
    return "warning"


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
    chart = build_chart(
        parameter,
        pd.DatetimeIndex(frame["at"]),
        frame[parameter].to_numpy(dtype=float),
        baseline_shots=baseline_shots,
        subgroup=subgroup,
        lsl=spec.lsl,
        usl=spec.usl,
    )
    fast = frame.get("fast_shot_velocity_mps")
    chart.unit = shown_unit(parameter, fast_shot_doubtful(fast) is not None)
    return chart


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
    hit = (np.stack([chart.fired[r] for r in names]) & chart.monitored)[:, start:]
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
    out: list[dict[str, Any]] = []
    shifted: list[tuple[Chart, dict[str, Any]]] = []
    findings: list[tuple[Chart, dict[str, Any], str]] = []
    for (m, d), group in frame.groupby(["machine", "die"], sort=True):
        at = pd.DatetimeIndex(group["at"])
        doubtful = fast_shot_doubtful(group.get("fast_shot_velocity_mps")) is not None
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
            chart.unit = shown_unit(name, doubtful)
            summary = {"machine": m, "die": d, **chart.summary(), "alarms": []}
            findings += [
                (chart, summary, rule) for rule in _process_findings(chart, summary, rules)
            ]
            if "level_shift" in summary["rules"]:
                shifted.append((chart, summary))
            out.append(summary)
        if raise_alarms and findings:
            _raise_process(engine, plant, str(m), str(d), findings)
        if raise_alarms and shifted and "level_shift" in rules:
            _raise_set_points(engine, plant, str(m), str(d), shifted)
        shifted, findings = [], []
    return out


def _raise_set_points(
    engine: Engine, plant: str, machine: str, die: str, shifted: list[tuple[Chart, dict[str, Any]]]
) -> None:
    """One alarm per die for its set-point changes (a recipe change moves several
    parameters at once): each parameter's steps in the message, critical when a new
    level lies outside the spec limits."""
    where = f"{machine}/{die}"
    lines = [
        _message(chart, "level_shift", where, s["rules"]["level_shift"]) for chart, s in shifted
    ]
    level = max((severity(c, "level_shift") for c, _ in shifted), key=alarms.SEVERITIES.index)
    first = min(s["rules"]["level_shift"]["first_at"] for _, s in shifted)
    last = max(s["rules"]["level_shift"]["last_at"] for _, s in shifted)
    alarm_id, _ = alarms.raise_alarm(
        engine, plant, machine, die, "set_points", "level_shift",
        f"set-point changes of die {die} (limits set again after each): " + " | ".join(lines),
        severity=level,
        at=datetime.fromisoformat(first),
        seen_until=datetime.fromisoformat(last),
    )  # fmt: skip
    for _, s in shifted:
        s["alarms"].append({"id": alarm_id, "rule": "level_shift", "severity": level, "at": first})
        s["alarms"].sort(key=rank)


def _process_findings(chart: Chart, summary: dict[str, Any], rules: tuple[str, ...]) -> list[str]:
    """The chart's process finding, if any: rule 1 beyond chance, else a drift (EWMA or
    CUSUM). Limits that do not fit silence both (the `misfit` finding says why, and is
    raised too when "baseline_misfit" is among `rules`)."""
    skip = (*DRIFT_RULES, "level_shift")  # drift: one finding below; shifts: one per die
    chosen = [r for r in summary["rules"] if r in rules and r not in skip]
    if chart.misfit is not None:
        chosen = [r for r in chosen if r == "baseline_misfit"]
    if "nelson1" in chosen and not beyond_chance(chart):
        chosen.remove("nelson1")  # shown on the chart; as many as an in-control process gives
    drift = [r for r in DRIFT_RULES if r in summary["rules"] and r in rules]
    if drift and chart.misfit is None and "nelson1" not in chosen:
        summary["rules"]["drift"] = _drift(summary["rules"], drift)
        chosen.append("drift")
    return chosen


def _raise_process(
    engine: Engine,
    plant: str,
    machine: str,
    die: str,
    findings: list[tuple[Chart, dict[str, Any], str]],
) -> None:
    """One alarm per die for what its charts found (a cold die, a new ladle or a restart
    moves several readings at once: one event, one alarm a person can act on); each
    chart's finding is a line of the message, earliest first; critical when any is."""
    where = f"{machine}/{die}"
    findings = sorted(findings, key=lambda f: f[1]["rules"][f[2]]["first_at"])
    lines = [_message(c, rule, where, s["rules"][rule]) for c, s, rule in findings]
    level = max((severity(c, rule) for c, _, rule in findings), key=alarms.SEVERITIES.index)
    first = findings[0][1]["rules"][findings[0][2]]["first_at"]
    last = max(s["rules"][rule]["last_at"] for _, s, rule in findings)
    names = sorted({c.parameter for c, _, _ in findings})
    alarm_id, _ = alarms.raise_alarm(
        engine, plant, machine, die, "process", "out_of_control",
        f"die {die}: {len(names)} reading(s) out of control ({', '.join(names)}): "
        + " | ".join(lines),
        severity=level,
        at=datetime.fromisoformat(first),
        seen_until=datetime.fromisoformat(last),
    )  # fmt: skip
    for chart, summary, rule in findings:
        info = summary["rules"][rule]
        level = severity(chart, rule)
        summary["alarms"].append(
            {"id": alarm_id, "rule": rule, "severity": level, "at": info["first_at"]}
        )
        summary["alarms"].sort(key=rank)


def beyond_chance(chart: Chart) -> bool:
    """The alarm budget of rule 1: more points beyond 3 sigma than RULE1_BUDGET of the
    checked points (about 4x what chance gives an in-control normal process, 0.27 %:
    real readings have heavier tails, and a scan over weeks always finds a few)."""
    return chart.hits("nelson1").size > RULE1_BUDGET * int(chart.monitored.sum()) + 3


def _drift(fired: dict[str, Any], rules: list[str]) -> dict[str, Any]:
    """The drift detectors that fired, as one finding: earliest onset, first and last."""
    infos = [fired[r] for r in rules]
    return {
        "count": sum(i["count"] for i in infos),
        "onset_at": min(i["onset_at"] for i in infos),
        "first_at": min(i["first_at"] for i in infos),
        "last_at": max(i["last_at"] for i in infos),
        "meaning": "slow drift: " + ", ".join(rules),
    }


def rank(alarm: dict[str, Any]) -> tuple[int, str]:
    """Worst first, then earliest."""
    return (-alarms.SEVERITIES.index(alarm["severity"]), alarm["at"])
