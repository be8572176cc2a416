"""The simulated hall's past before castline: a baseline for the benefit report.

Before go-live the simulated plant inspects by hand and repairs when something breaks.
The same hall (same machines, dies and seed) runs for `days` before go-live with:

- reactive maintenance: breakdowns more often and longer (no die-life or NG-trend
  planning), a damaged die runs longer before it is repaired;
- no process monitoring: melt drifts and vacuum losses last longer, more castings
  are defective;
- manual inspection: a person decides every casting; a defective one is missed with
  `miss_rate`, a good one rejected with `false_reject_rate`. Inspectors log their hours
  per day (castings x `manual_inspection_s`, at `utilisation`).

These settings make the baseline worse on purpose: the simulation decides how much
castline gains here; the benefit report only measures it. No curves are drawn (fast).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from castline.sim.fleet import FleetConfig, Hall, ShotEvent, StateEvent

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # shot numbers as `runner.fresh_first_shot`


@dataclass(frozen=True, slots=True)
class BeforeCastline:
    days: int = 7
    mtbf_h: float = 5.0
    mttr_min: float = 50.0
    base_defect_rate: float = 0.02
    melt_drift_min: tuple[float, float] = (40.0, 120.0)
    vacuum_loss_min: tuple[float, float] = (30.0, 90.0)
    maintenance_after_h: float = 8.0
    miss_rate: float = 0.2
    false_reject_rate: float = 0.01
    manual_inspection_s: float = 20.0
    utilisation: float = 0.8

    def fleet(self, live: FleetConfig, first_shot: int) -> FleetConfig:
        return replace(
            live,
            mtbf_h=self.mtbf_h,
            mttr_min=self.mttr_min,
            base_defect_rate=self.base_defect_rate,
            melt_drift_min=self.melt_drift_min,
            vacuum_loss_min=self.vacuum_loss_min,
            maintenance_after_h=self.maintenance_after_h,
            curve_rate_hz=0,
            first_shot=first_shot,
        )


@dataclass(frozen=True, slots=True)
class ManualDecision:
    """What the inspector decided for one casting (true: rejected)."""

    machine: str
    shot_number: int
    at: datetime
    rejected: bool


@dataclass(slots=True)
class Day:
    """One simulated day before go-live, as it would have been recorded."""

    start: datetime
    states: list[StateEvent] = field(default_factory=list)
    shots: list[ShotEvent] = field(default_factory=list)
    decisions: list[ManualDecision] = field(default_factory=list)
    inspection_h: float = 0.0


def days_before(live: FleetConfig, go_live: datetime, before: BeforeCastline) -> Iterator[Day]:
    """The `before.days` days up to go-live, one at a time (each ready to record)."""
    start = go_live - timedelta(days=before.days)
    first = max(1, int((start - _EPOCH).total_seconds() * 10))  # as a fresh run numbers
    hall = Hall(before.fleet(live, first), start)
    rng = np.random.default_rng([live.seed, 15])
    day = Day(start)
    for event in hall.events():
        if event.at >= go_live:
            break
        while event.at >= day.start + timedelta(days=1):
            yield _closed(day, before)
            day = Day(day.start + timedelta(days=1))
        if isinstance(event, StateEvent):
            day.states.append(event)
            continue
        day.shots.append(event)
        if not event.trial:
            day.decisions.append(_inspect(event, before, rng))
    yield _closed(day, before)


def _inspect(shot: ShotEvent, before: BeforeCastline, rng: np.random.Generator) -> ManualDecision:
    draw = float(rng.random())
    miss, reject = before.miss_rate, before.false_reject_rate
    rejected = draw >= miss if shot.truth.defective else draw < reject
    return ManualDecision(shot.machine, shot.shot_number, shot.at, rejected)


def _closed(day: Day, before: BeforeCastline) -> Day:
    castings = len(day.decisions)
    day.inspection_h = castings * before.manual_inspection_s / 3600 / before.utilisation
    return day
