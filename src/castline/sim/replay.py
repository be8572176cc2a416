"""Replay of the real KAMP telemetry: every real shot, in its real order, as a machine.

Each die code becomes a machine (`kamp-<die>`). The time between consecutive rows is kept,
except that a gap longer than `max_gap` (nights, holidays: up to weeks in the data)
shrinks to `max_gap`, so a replay does not sit silent for days. The runner then
compresses this time by its speed. The real machine state (`working`) and the real
pass/fail label (as ground truth, with no defect type) travel with each shot; the shot's
real time goes along as the extra field `recorded_at`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from castline.datasets import kamp_process_root
from castline.domain.states import MachineState
from castline.sim import kamp
from castline.sim.fleet import Event, ShotEvent, StateEvent
from castline.sim.rules import Truth


def machine_of(die: str) -> str:
    return f"kamp-{die}"


class Replay:
    def __init__(
        self,
        frame: pd.DataFrame,
        start: datetime,
        first_shot: int,
        max_gap: timedelta = timedelta(minutes=10),
    ) -> None:
        self.frame = frame
        self.start = start
        self.first_shot = first_shot
        self.max_gap = max_gap
        self.machines = [machine_of(d) for d in sorted(frame["die"].unique())]

    @classmethod
    def from_data(cls, data: Path | None, start: datetime, first_shot: int) -> Replay:
        root = kamp_process_root(data) if data is not None else None
        if root is None:
            raise FileNotFoundError(
                f"replay needs the KAMP telemetry (kamp/process) under the data folder {data}: "
                "set CASTLINE_DATA or pass --data"
            )
        return cls(kamp.read(root), start, first_shot)

    def events(self) -> Iterator[Event]:
        at = self.start
        previous: datetime | None = None
        states: dict[str, MachineState] = {}
        numbers: dict[str, int] = {}
        for shot in kamp.shots(self.frame):
            if previous is not None:
                at += min(max(shot.recorded_at - previous, timedelta(0)), self.max_gap)
            previous = shot.recorded_at
            machine = machine_of(shot.die)
            if states.get(machine) is not shot.state:
                states[machine] = shot.state
                yield StateEvent(machine, at, shot.state, shot.die, "KAMP working column")
            number = numbers.get(machine, self.first_shot)
            numbers[machine] = number + 1
            yield ShotEvent(
                machine=machine,
                at=at,
                shot_number=number,
                die=shot.die,
                die_counter=shot.counter,
                params=dict(shot.params),
                trial=shot.trial,
                truth=Truth(shot.defective, None, "KAMP passorfail" if shot.defective else ""),
                recorded_at=shot.recorded_at,
            )
