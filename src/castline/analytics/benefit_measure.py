"""What the benefit report measures, block by block (a day, shift or hour) of a period.

Each block keeps sums, never ratios, so a bootstrap can resample whole blocks and take
the ratio of the sums it drew. The definitions (docs/analytics.md, "Benefit report"):

- inspection labour: person-hours of inspection per casting made. Hours come from the
  labour log (`labour_log`, work "inspection") where any were logged in the period, else
  from the declared staffing plan (`[benefit] *_inspection_h_per_day`), else from
  castline's own record: each casting a person had to decide x `manual_inspection_s`;
- downtime: breakdown time per planned busy time (classified stops, `analytics.downtime`);
- quality: castings scrapped or escaped (defective by the ground truth, yet passed) per
  casting made, by die, so the report can standardise the die mix;
- management: time from the start of a breakdown to recovery, and from an alarm to its
  acknowledgement with a named cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from castline.analytics import downtime, kpis
from castline.analytics.config import AnalyticsConfig
from castline.domain.stops import StopClass
from castline.store import reads
from castline.store import tables as t

INSPECTION = "inspection"


@dataclass(slots=True)
class PeriodData:
    """Sums per block of one period; `dies` are the columns of `made` and `bad`."""

    since: datetime
    until: datetime
    edges: pd.DatetimeIndex
    castings: np.ndarray
    labour_h: np.ndarray
    labour_source: str  # "logged", "declared plan", "castline decisions" or "none"
    pbt_s: np.ndarray
    breakdown_s: np.ndarray
    recovery_s: np.ndarray  # durations of breakdowns begun in the block
    recoveries: np.ndarray
    cause_s: np.ndarray  # alarm raised -> acknowledged with a named cause
    causes: np.ndarray
    dies: list[str]
    made: np.ndarray  # blocks x dies
    bad: np.ndarray
    facts: dict[str, float] = field(default_factory=dict)  # counts said on the report

    @property
    def blocks(self) -> int:
        return len(self.edges) - 1

    def active(self) -> np.ndarray:
        """Blocks in which the plant worked: resampling empty nights would only dilute."""
        return (self.castings > 0) | (self.pbt_s > 0)


def block_edges(
    since: datetime, until: datetime, by: str, config: AnalyticsConfig
) -> pd.DatetimeIndex:
    if by == "hour":
        edges = pd.date_range(pd.Timestamp(since), pd.Timestamp(until), freq="1h")
        if edges[-1] < pd.Timestamp(until):
            return pd.DatetimeIndex(edges.append(pd.DatetimeIndex([pd.Timestamp(until)])))
        return edges
    return kpis.period_edges(since, until, by, config)


def _which(edges: pd.DatetimeIndex, at: pd.Series | list[datetime]) -> np.ndarray:
    """The block of each time (-1 or len-1 outside)."""
    if len(at) == 0:
        return np.zeros(0, dtype=int)
    return (
        np.searchsorted(kpis.nanoseconds(edges), kpis.nanoseconds(pd.Series(at)), side="right") - 1
    )


def measure(
    engine: Engine,
    plant: str,
    since: datetime,
    until: datetime,
    by: str,
    config: AnalyticsConfig,
    declared_h_per_day: float | None,
) -> PeriodData:
    edges = block_edges(since, until, by, config)
    nb = len(edges) - 1
    shots = _castings(engine, plant, since, until)
    block = _which(edges, shots["at"])
    dies = sorted(shots["die"].astype(str).unique().tolist())
    made, bad = np.zeros((nb, len(dies))), np.zeros((nb, len(dies)))
    column = {d: i for i, d in enumerate(dies)}
    cols = np.array([column[str(d)] for d in shots["die"]], dtype=int)
    np.add.at(made, (block, cols), 1)
    np.add.at(bad, (block, cols), (shots["scrap"] | shots["escape"]).to_numpy(dtype=float))
    data = PeriodData(
        since, until, edges, made.sum(axis=1), np.zeros(nb), "none",
        np.zeros(nb), np.zeros(nb), np.zeros(nb), np.zeros(nb), np.zeros(nb), np.zeros(nb),
        dies, made, bad,
    )  # fmt: skip
    data.facts = {
        "castings": float(len(shots)),
        "scrap": float(shots["scrap"].sum()),
        "escapes": float(shots["escape"].sum()),
        "castings_with_truth": float(shots["truth_known"].sum()),
    }
    _stops(engine, plant, data)
    _labour(engine, plant, data, shots, block, config, declared_h_per_day)
    _alarms(engine, plant, data)
    return data


def _castings(engine: Engine, plant: str, since: datetime, until: datetime) -> pd.DataFrame:
    """Castings made (trial shots are not production) with scrap, escape and whether a
    person had to decide them."""
    where = reads.PartFilter(plant, since=since, until=until)
    with engine.connect() as conn:
        rows = conn.execute(reads.parts(*reads.SHOT_FACTS, *reads.OUTCOME, where=where)).fetchall()
    frame = pd.DataFrame(
        rows,
        columns=[*(c.name for c in reads.SHOT_FACTS), "verdict", "review", "truth", "defect_type"],
    )
    frame = frame[~frame["trial"].astype(bool)].reset_index(drop=True)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    good, scrap, _ = kpis.dispositions(frame)
    truth = frame["truth"].map({True: True, False: False})
    frame["truth_known"] = truth.notna().to_numpy()
    frame["scrap"] = np.asarray(scrap, dtype=bool)
    frame["escape"] = np.asarray(good, dtype=bool) & truth.fillna(False).astype(bool).to_numpy()
    automatic = frame["verdict"].isin(["OK", "NG"]) & frame["review"].isna()
    frame["by_person"] = (~automatic & frame["verdict"].notna()).to_numpy()
    return frame


def _stops(engine: Engine, plant: str, data: PeriodData) -> None:
    """Planned busy time and breakdown time per block; recovery time of each breakdown
    in the block it began."""
    segs = downtime.segments(engine, plant, data.since, data.until)
    unclassified = 0.0
    for i in range(data.blocks):
        lo, hi = data.edges[i].to_pydatetime(), data.edges[i + 1].to_pydatetime()
        for s in segs:
            seconds = s.seconds_within(lo, hi)
            if seconds <= 0 or s.stop_class is StopClass.PLANNED:
                continue
            data.pbt_s[i] += seconds
            if s.stop_class is StopClass.BREAKDOWN:
                data.breakdown_s[i] += seconds
            elif s.stop_class is StopClass.UNCLASSIFIED:
                unclassified += seconds
    began = downtime.breakdowns_begun(segs, data.since, data.until)
    for s, b in zip(began, _which(data.edges, [s.started_at for s in began]), strict=True):
        end = s.ended_at or data.until
        data.recovery_s[b] += (end - s.started_at).total_seconds()
        data.recoveries[b] += 1
    data.facts["unclassified_h"] = unclassified / 3600
    data.facts["breakdowns"] = float(len(began))


def _labour(
    engine: Engine,
    plant: str,
    data: PeriodData,
    shots: pd.DataFrame,
    block: np.ndarray,
    config: AnalyticsConfig,
    declared_h_per_day: float | None,
) -> None:
    logged = _logged(engine, plant, data)
    if logged is not None:
        data.labour_h, data.labour_source = logged, "logged"
    elif declared_h_per_day is not None:
        hours = np.diff(kpis.nanoseconds(data.edges)) / 3.6e12
        data.labour_h = declared_h_per_day * hours / 24 * (data.castings > 0)
        data.labour_source = "declared plan"
    elif shots["verdict"].notna().any():
        np.add.at(data.labour_h, block, shots["by_person"].to_numpy(dtype=float))
        data.labour_h *= config.manual_inspection_s / 3600
        data.labour_source = "castline decisions"
    else:
        data.labour_h = np.full(data.blocks, np.nan)  # not measurable: no figure, not zero
    data.facts["decided_by_person"] = float(shots["by_person"].sum())


def _logged(engine: Engine, plant: str, data: PeriodData) -> np.ndarray | None:
    """Logged inspection hours spread over the blocks they overlap (None: none logged)."""
    log = t.labour_log
    with engine.connect() as conn:
        rows = conn.execute(
            select(log.c.started_at, log.c.ended_at, log.c.hours).where(
                log.c.plant == plant,
                log.c.work == INSPECTION,
                log.c.started_at < data.until,
                log.c.ended_at > data.since,
            )
        ).fetchall()
    if not rows:
        return None
    out = np.zeros(data.blocks)
    for start, end, hours in rows:
        span = (end - start).total_seconds() or 1.0
        for i in range(data.blocks):
            lo, hi = data.edges[i].to_pydatetime(), data.edges[i + 1].to_pydatetime()
            overlap = (min(end, hi) - max(start, lo)).total_seconds()
            if overlap > 0:
                out[i] += hours * overlap / span
    return out


def _alarms(engine: Engine, plant: str, data: PeriodData) -> None:
    """Alarm -> acknowledgement with a named cause, both inside the period (an alarm
    raised for old shots and acknowledged now is not a response time)."""
    a = t.alarms
    with engine.connect() as conn:
        rows = conn.execute(
            select(a.c.raised_at, a.c.acked_at).where(
                a.c.plant == plant,
                a.c.raised_at >= data.since,
                a.c.acked_at < data.until,
                a.c.acked_at >= a.c.raised_at,
                func.length(func.trim(func.coalesce(a.c.ack_comment, ""))) > 0,
            )
        ).fetchall()
    for raised, acked in rows:
        b = _which(data.edges, [raised])[0]
        data.cause_s[b] += (acked - raised).total_seconds()
        data.causes[b] += 1
    data.facts["alarms_with_cause"] = float(len(rows))


def logged_hours_row(
    plant: str, start: datetime, hours: float, by: str, note: str = ""
) -> dict[str, object]:
    """A labour-log row for one day of inspection (used by the simulated history)."""
    return {
        "plant": plant,
        "work": INSPECTION,
        "started_at": start,
        "ended_at": start + timedelta(days=1),
        "hours": hours,
        "logged_by": by,
        "note": note,
    }
