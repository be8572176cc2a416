"""A small recorded plant for analytics tests: states, shots, verdicts, reviews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.verdict import Verdict
from castline.store import database
from castline.store.repository import Store

DAY = datetime(2026, 3, 2, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def record_shift(engine: Engine, machine: str = "m1") -> Store:
    """06:00-14:00: 7 h running, 30 min breakdown, 30 min set-up, then a planned stop.

    Ten castings from 07:00: seven OK, two NG, one REVIEW confirmed OK by a person;
    one trial shot besides.
    """
    database.upgrade(engine)
    store = Store(engine)
    store.ensure_machine("p1", Machine(machine))
    for hour, state in [
        (6, MachineState.RUNNING),
        (8, MachineState.BREAKDOWN),
        (8.5, MachineState.RUNNING),
        (12, MachineState.SETUP),
        (12.5, MachineState.RUNNING),
        (14, MachineState.PLANNED_STOP),
    ]:
        store.record_state("p1", machine, state, at(hour), die="8412")
    verdicts = [Verdict.OK] * 7 + [Verdict.NG] * 2 + [Verdict.REVIEW]
    shots = [
        Shot(PartKey("p1", machine, n), "8412", at(7 + n * 0.1), {"melt_temp_c": 700.0 + n})
        for n in range(1, 11)
    ]
    shots.append(Shot(PartKey("p1", machine, 99), "8412", at(6.5), {}, trial=True))
    store.record_shots(shots)
    for shot, verdict in zip(shots, verdicts, strict=False):
        store.record_verdict(shot.key, verdict, shot.at)
    store.record_review(shots[9].key, Verdict.OK, "ana", at(11))
    return store
