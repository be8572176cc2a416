"""ISO 22400-2 KPIs of machines, lines and the plant, per shift, day or week.

Time elements come from the machine state changes (a state lasts until the next one;
its ISO 22400 time category comes from `castline.domain.states`), quantities from
the shots and how each casting was decided. Elements are summed before any ratio is
taken, so a line's OEE weights its machines by their time, as the standard intends.

A casting counts as good or scrap by its final disposition: a person's review, else
the automatic verdict, else (imported history) the recorded truth. REVIEW and
QUARANTINE parts not yet decided are neither. Trial shots are not production.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from castline.analytics import downtime, hourly, queries
from castline.analytics.config import DEFAULT_PLANNED_CYCLE_S, AnalyticsConfig
from castline.domain.kpi import Elements, as_row
from castline.domain.plant_calendar import Span
from castline.domain.states import MachineState, TimeCategory
from castline.domain.stops import StopClass, class_of_state
from castline.store.rollups import COUNTS  # the same counts, per hour, in the store

PERIODS = ("shift", "day", "week", "total")
LEVELS = ("machine", "line", "plant")


def period_edges(
    since: datetime, until: datetime, by: str, config: AnalyticsConfig
) -> pd.DatetimeIndex:
    """Start of each period covering [since, until), and `until` as the last edge.
    Shifts, days and weeks begin when they begin in the plant (its calendar)."""
    since, until = _utc(since), _utc(until)
    calendar = config.calendar
    if by == "total":
        inner: list[datetime] = []
    elif by == "shift":  # a gap between shifts (nights off) is a period of its own
        inner = [edge for span in calendar.spans(since, until) for edge in (span.start, span.end)]
    elif by == "day":
        inner = calendar.day_starts(since, until)
    elif by == "week":
        inner = calendar.day_starts(since, until, step_days=7)
    else:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {by!r}")
    return pd.DatetimeIndex([since, *sorted({e for e in inner if since < e < until}), until])


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


_CATEGORY = {s.value: s.category for s in MachineState}
_PRODUCING = [s.value for s in MachineState if s.category is TimeCategory.APT]
UNPLANNED = "unplanned"  # standing in time the calendar plans no production: no loss
FAILURES, REPAIR = "failures", "repair"  # per period beside the states: breakdowns begun, TTR


def nanoseconds(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC timestamps as int64 nanoseconds, whatever unit pandas chose."""
    return np.asarray(pd.DatetimeIndex(times).as_unit("ns").asi8)


def time_elements(
    states: pd.DataFrame, edges: pd.DatetimeIndex, unplanned: Sequence[Span] = ()
) -> dict[tuple[str, int], dict[str, float]]:
    """Seconds in each state per (machine, period index), plus failures (breakdowns begun).
    In `unplanned` time (breaks, planned stops, holidays, between shifts) a machine that
    produces counts its production; any other state counts as UNPLANNED, not as a loss."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    lo, hi = edges[0].value, edges[-1].value
    bounds = nanoseconds(edges)
    off = np.array([[pd.Timestamp(a).value, pd.Timestamp(b).value] for a, b in unplanned])
    off = off.reshape(-1, 2).astype(np.int64)
    for machine, group in states.groupby("machine", sort=False):
        at = nanoseconds(group["at"])
        state = group["state"].to_numpy()
        cuts = np.unique(
            np.concatenate((np.clip(at, lo, hi), bounds, np.clip(off.ravel(), lo, hi)))
        )
        starts, ends = cuts[:-1], cuts[1:]
        which = np.searchsorted(at, starts, side="right") - 1
        known = which >= 0  # before the first state change nothing is known: not counted
        period = np.searchsorted(bounds, starts, side="right") - 1
        seconds = (ends - starts) / 1e9
        held = state[np.maximum(which, 0)]
        span = np.searchsorted(off[:, 0], starts, side="right") - 1
        resting = (span >= 0) & (starts < off[np.maximum(span, 0), 1]) if len(off) else False
        held = np.where(resting & ~np.isin(held, _PRODUCING), UNPLANNED, held)
        piece = pd.DataFrame({"period": period[known], "state": held[known], "s": seconds[known]})
        totals = piece.groupby(["period", "state"])["s"].sum()
        for (p, name), total in zip(totals.index.tolist(), totals.tolist(), strict=True):
            out.setdefault((str(machine), int(p)), {})[str(name)] = float(total)
        broken = _broken(group)
        repairing = broken[np.maximum(which, 0)] & known & (held != UNPLANNED)
        fixes = pd.Series(seconds[repairing]).groupby(period[repairing]).sum()
        for p, total in zip(fixes.index.tolist(), fixes.tolist(), strict=True):
            out.setdefault((str(machine), int(p)), {})[REPAIR] = float(total)
        previous = np.concatenate(([False], broken[:-1]))
        began = broken & ~previous & (at >= lo) & (at < hi)
        for p in np.searchsorted(bounds, at[began], side="right") - 1:
            cell = out.setdefault((str(machine), int(p)), {})
            cell[FAILURES] = cell.get(FAILURES, 0.0) + 1
    return out


def _broken(group: pd.DataFrame) -> np.ndarray:
    """Per state change: a breakdown begins or goes on there (a person's class when given,
    see `with_stop_classes`, else the machine's state)."""
    if "breakdown" in group:
        return np.asarray(group["breakdown"].to_numpy(), dtype=bool)
    return np.asarray(group["state"].to_numpy() == MachineState.BREAKDOWN.value, dtype=bool)


def with_stop_classes(
    states: pd.DataFrame, given: dict[tuple[str, datetime], StopClass]
) -> pd.DataFrame:
    """The states with a `breakdown` column: the stop's class is a breakdown, by a
    person's word where one classified it (`analytics.downtime`), else by the state; so
    failures and repair time agree with the downtime page's MTBF and MTTR."""
    people = {(m, pd.Timestamp(at).value): c for (m, at), c in given.items()}
    out = states.copy()
    rows = zip(
        out["machine"].astype(str),
        nanoseconds(out["at"]),
        out["state"].astype(str),
        out["reason"].fillna("").astype(str),
        strict=True,
    )
    out["breakdown"] = [_breakdown(people.get((m, ns)), s, r) for m, ns, s, r in rows]
    return out


def _breakdown(person: StopClass | None, state: str, reason: str) -> bool:
    own = class_of_state(state, reason)
    if own is None:
        return False  # running: there is no stop a person could classify
    return (person or own) is StopClass.BREAKDOWN


def found_downstream(shots: pd.DataFrame) -> np.ndarray:
    """Per shot: a downstream station (X-ray, leak test...) found the casting NG."""
    if "downstream" not in shots:
        return np.zeros(len(shots), dtype=bool)
    return np.asarray(shots["downstream"].eq("NG").to_numpy(), dtype=bool)


def dispositions(shots: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(good, scrap, good at the first decision) per shot; a casting a downstream station
    found NG is scrap, whatever castline said."""
    review, verdict, truth = shots["review"], shots["verdict"], shots["truth"]
    has_review, has_verdict = review.notna().to_numpy(), verdict.notna().to_numpy()
    known = truth.notna().to_numpy()
    truth_bad = truth.fillna(False).astype(bool).to_numpy()
    first_ok = np.where(has_verdict, verdict.eq("OK").to_numpy(), known & ~truth_bad)
    first_ng = np.where(has_verdict, verdict.eq("NG").to_numpy(), known & truth_bad)
    late_ng = found_downstream(shots)
    good = np.where(has_review, review.eq("OK").to_numpy(), first_ok) & ~late_ng
    scrap = np.where(has_review, review.eq("NG").to_numpy(), first_ng) | late_ng
    return good, scrap, first_ok & ~has_review & ~late_ng


def escapes(shots: pd.DataFrame) -> np.ndarray:
    """Per shot: castline passed the casting (a person's OK, else the verdict OK) and a
    downstream station found it NG."""
    review, verdict = shots["review"], shots["verdict"]
    passed = np.where(review.notna().to_numpy(), review.eq("OK").to_numpy(), verdict.eq("OK"))
    return np.asarray(passed, dtype=bool) & found_downstream(shots)


def elements(
    states: pd.DataFrame,
    counts: pd.DataFrame,
    edges: pd.DatetimeIndex,
    config: AnalyticsConfig,
) -> dict[tuple[str, int], Elements]:
    """The ISO 22400 elements of every machine in every period; quantities from the
    castings' counts (`casting_counts`, or the stored hours of `analytics.hourly`)."""
    out: dict[tuple[str, int], Elements] = {}
    unplanned = config.calendar.unplanned(edges[0].to_pydatetime(), edges[-1].to_pydatetime())
    for key, seconds in time_elements(states, edges, unplanned).items():
        e = out.setdefault(key, Elements())
        for state, s in seconds.items():
            if state == FAILURES:
                e.failures = int(s)
                continue
            if state == REPAIR:
                e.repair_s += s
                continue
            category = _CATEGORY.get(state)
            if category is None or category is TimeCategory.PDOT:
                continue
            e.pbt_s += s
            if category is TimeCategory.APT:
                e.apt_s += s
            else:
                e.downtime_by[state] = e.downtime_by.get(state, 0.0) + s
            if state == MachineState.SETUP.value:
                e.setup_s += s
    _add_counts(out, counts, config)
    return out


def _add_counts(
    out: dict[tuple[str, int], Elements], counts: pd.DataFrame, config: AnalyticsConfig
) -> None:
    """The quantities of `casting_counts` (per machine, period and die) into the elements;
    the planned run time is each die's castings times its planned cycle."""
    if counts.empty:
        return
    pri = counts["die"].map({d: config.pri_s(d) for d in counts["die"].unique()})
    frame = counts.assign(planned=counts["castings"] * pri.to_numpy(dtype=float))
    sums = frame.groupby(["machine", "period"], as_index=False)[[*COUNTS, "planned"]].sum()
    for row in sums.to_dict("records"):
        e = out.setdefault((str(row["machine"]), int(row["period"])), Elements())
        e.trial_shots = int(row["trials"])
        if row["castings"] == 0:
            continue
        e.pq, e.gq, e.sq = int(row["castings"]), int(row["good"]), int(row["scrap"])
        e.gpq, e.escapes = int(row["first_good"]), int(row["escapes"])
        e.planned_run_s = float(row["planned"])


def casting_counts(shots: pd.DataFrame, edges: pd.DatetimeIndex) -> pd.DataFrame:
    """Per machine, period and die: castings (not trials), good, scrap, good at the first
    decision, escapes and trial castings, from the part join's rows (one per casting).
    `analytics.hourly` counts the same in SQL and keeps it per hour."""
    period = np.searchsorted(nanoseconds(edges), nanoseconds(shots["at"]), side="right") - 1
    trial = shots["trial"].astype(bool).to_numpy()
    good, scrap, first_good = dispositions(shots)
    frame = pd.DataFrame(
        {
            "machine": shots["machine"].astype(str).to_numpy(),
            "period": period,
            "die": shots["die"].astype(str).to_numpy(),
            "castings": ~trial,
            "good": good & ~trial,
            "scrap": scrap & ~trial,
            "first_good": first_good & ~trial,
            "escapes": escapes(shots) & ~trial,
            "trials": trial,
        }
    )
    frame = frame[(frame["period"] >= 0) & (frame["period"] < len(edges) - 1)]
    keys = ["machine", "period", "die"]
    return frame.groupby(keys, as_index=False).sum().astype({c: int for c in COUNTS})


def _unit(machine: str, level: str, config: AnalyticsConfig, plant: str) -> str:
    return {"machine": machine, "line": config.line_of(machine), "plant": plant}[level]


def planned_cycle_notes(
    counts: pd.DataFrame,
    medians: dict[tuple[str, int], float],
    level: str,
    config: AnalyticsConfig,
    plant: str,
) -> dict[tuple[str, int], tuple[list[str], float | None]]:
    """Per unit and period with production: the defaults the effectiveness rests on (said
    in words) and the median recorded cycle time of its shots (`hourly.cycle_medians`),
    a figure to set the planned cycle time from."""
    made = counts[counts["castings"] > 0] if not counts.empty else counts
    if made.empty:
        return {}
    units = {m: _unit(str(m), level, config, plant) for m in made["machine"].unique()}
    frame = made.assign(unit=made["machine"].map(units))
    out = {}
    for key, g in frame.groupby(["unit", "period"]):
        unit, p = str(key[0]), int(str(key[1]))
        median = medians.get((unit, p))
        dies = sorted(str(d) for d in g["die"].unique() if config.pri_defaulted(str(d)))
        used = []
        if dies:
            seen = f"; median recorded cycle {median:.0f} s" if median is not None else ""
            used.append(
                f"planned cycle time: default {DEFAULT_PLANNED_CYCLE_S:.0f} s for die "
                f"{', '.join(dies)}{seen} - set planned_cycle_time_s (or planned_cycle_by_die)"
            )
        out[(unit, p)] = (used, median)
    return out


def rollup(
    per_machine: dict[tuple[str, int], Elements],
    edges: pd.DatetimeIndex,
    level: str,
    config: AnalyticsConfig,
    plant: str,
    notes: dict[tuple[str, int], tuple[list[str], float | None]] | None = None,
) -> list[dict[str, Any]]:
    """KPI rows for machines, lines or the plant, period by period."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    groups: dict[tuple[str, int], Elements] = {}
    for (machine, p), e in per_machine.items():
        unit = _unit(machine, level, config, plant)
        groups[(unit, p)] = groups.get((unit, p), Elements()) + e
    rows = []
    for (unit, p), e in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        row: dict[str, Any] = {
            "level": level,
            "unit": unit,
            "period_start": edges[p].isoformat(),
            "period_end": edges[p + 1].isoformat(),
        }
        row.update(as_row(e))
        row["downtime_by"] = dict(e.downtime_by)
        used, median = (notes or {}).get((unit, p), ([], None))
        row["defaults_used"] = used
        row["suggested_planned_cycle_s"] = median
        rows.append(row)
    return rows


def kpi_table(
    engine: Engine,
    plant: str,
    since: datetime,
    until: datetime,
    *,
    by: str = "day",
    level: str = "machine",
    machine: str | None = None,
    config: AnalyticsConfig | None = None,
    from_shots: bool = False,
) -> list[dict[str, Any]]:
    """KPIs from the store: one row per unit (machine, line or plant) and period.
    Quantities from the stored hours (`analytics.hourly`) and the shots of the rest;
    `from_shots`: every shot of the range instead (the reference the hours must equal)."""
    config = config or AnalyticsConfig()
    if until <= since:
        raise ValueError("the time range is empty: --until must be after --since")
    edges = period_edges(since, until, by, config)
    states = queries.states(engine, plant, machine, until=until, since=since)
    states = with_stop_classes(states, downtime.classes_given(engine, plant, until, machine))
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if from_shots:
        shots = queries.shots(
            engine, plant, machine=machine, since=since, until=until, parameters=()
        )
        cycles = hourly.every_cycle(engine, plant, edges, machine)
        found = hourly.Quantities(casting_counts(shots, edges), cycles)
    else:
        found = hourly.read(engine, plant, edges, machine)
    counts = found.counts
    units = {str(m): _unit(str(m), level, config, plant) for m in counts.get("machine", [])}
    medians = hourly.cycle_medians(found.cycles, units)
    notes = planned_cycle_notes(counts, medians, level, config, plant)
    rows = rollup(elements(states, counts, edges, config), edges, level, config, plant, notes)
    if by == "shift":  # the calendar's name of each shift; None between shifts
        for row in rows:
            running = config.calendar.shift_at(datetime.fromisoformat(row["period_start"]))
            row["shift"] = running.name if running else None
    return rows
