"""A recorded plant over two periods, for the benefit and downtime tests.

Each day of a period, machine m1 runs from 06:00 to 22:00 with one breakdown at 10:00
(its length given per period), a planned stop 14:00-14:30 and an import gap (`offline`)
from 22:00 to 06:00. It casts every 15 minutes while running, die A or die B by the mix
given; a casting is defective by a fixed pattern at the die's bad rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.verdict import Verdict
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store, insert_ignore

START = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass(frozen=True)
class Regime:
    days: int
    breakdown_h: float
    share_a: float  # of castings on die A
    bad_a: float
    bad_b: float
    manual: bool  # True: a person inspects every casting (no castline verdicts)
    logged_h_per_day: float | None = None


def day_of(period_start: datetime, day: int) -> datetime:
    return period_start + timedelta(days=day)


def record(engine: Engine, start: datetime, regime: Regime, first_shot: int) -> int:
    """Record `regime.days` days from `start`; returns the next free shot number."""
    database.upgrade(engine)
    store = Store(engine)
    store.ensure_machine("p1", Machine("m1"))
    n = first_shot
    count = {"A": 0, "B": 0, "all": 0}  # over the whole period: rates hold exactly
    for d in range(regime.days):
        day = day_of(start, d)
        _states(store, day, regime.breakdown_h)
        n = _castings(engine, store, day, regime, n, count)
        if regime.logged_h_per_day is not None:
            with engine.begin() as conn:
                insert_ignore(conn, t.labour_log, [{
                    "plant": "p1", "work": "inspection", "started_at": day,
                    "ended_at": day + timedelta(days=1), "hours": regime.logged_h_per_day,
                    "logged_by": "timesheet", "note": "",
                }])  # fmt: skip
    return n


def _states(store: Store, day: datetime, breakdown_h: float) -> None:
    h = lambda x: day + timedelta(hours=x)  # noqa: E731
    plan = [
        (6, MachineState.RUNNING, ""),
        (10, MachineState.BREAKDOWN, "hydraulic leak"),
        (10 + breakdown_h, MachineState.RUNNING, ""),
        (14, MachineState.PLANNED_STOP, "lunch"),
        (14.5, MachineState.RUNNING, ""),
        (22, MachineState.OFFLINE, "gap in the import"),
    ]
    for hour, state, reason in plan:
        store.record_state("p1", "m1", state, h(hour), die="A", reason=reason)


def _castings(
    engine: Engine, store: Store, day: datetime, regime: Regime, n: int, count: dict[str, int]
) -> int:
    shots, truths = [], []
    for q in range(6 * 4, 22 * 4):
        hour = q / 4
        if 10 <= hour < 10 + regime.breakdown_h or 14 <= hour < 14.5:
            continue
        i = count["all"] = count["all"] + 1
        die = "A" if int(i * regime.share_a) > int((i - 1) * regime.share_a) else "B"
        count[die] += 1
        rate = regime.bad_a if die == "A" else regime.bad_b
        bad = int(count[die] * rate) != int((count[die] - 1) * rate)
        key = PartKey("p1", "m1", n)
        shots.append(Shot(key, die, day + timedelta(hours=hour), {}))
        truths.append({"plant": "p1", "machine": "m1", "shot_number": n, "defective": bad,
                       "defect_type": "porosity" if bad else None, "cause": ""})  # fmt: skip
        n += 1
    store.record_shots(shots)
    with engine.begin() as conn:
        insert_ignore(conn, t.truths, truths)
    for shot, truth in zip(shots, truths, strict=True):
        if regime.manual:  # the inspector misses every third defective casting
            missed = truth["defective"] and shot.key.shot_number % 3 == 0
            decision = Verdict.NG if truth["defective"] and not missed else Verdict.OK
            store.record_review(shot.key, decision, "inspector", shot.at)
        else:
            verdict = Verdict.NG if truth["defective"] else Verdict.OK
            store.record_verdict(shot.key, verdict, shot.at)
    return n
