"""A downstream station of the simulated hall: an X-ray that tests some castings later.

Castings the robot cell sends on reach the X-ray about an hour of simulated time later.
The station tests a share of them (`rate`) and posts each result on its own topic, as a
real station would (castline/v1/<plant>/<station>/downstream), naming the part by its
data-matrix code where parts are marked, else by machine, shot number and cavity. A
defective casting castline passed comes back NG: an escape. The X-ray also sees what no
photograph can: now and then porosity below a good-looking surface (`hidden_rate`), so
a few parts that were good to the eye are NG too; those are escapes of castline's as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from castline.messaging.schema import DownstreamMessage
from castline.sim.cell import Action

STATION = "xray-01"  # the station's id: its topic level and its device login
HIDDEN_DEFECTS = ("gas_porosity", "shrinkage_porosity")  # what an X-ray sees inside


@dataclass(frozen=True, slots=True)
class DownstreamConfig:
    rate: float = 0.0  # share of the castings sent on that the station tests; 0: no station
    delay_s: float = 3600.0  # simulated seconds from the robot cell to the test
    hidden_rate: float = 0.02  # share of good castings with porosity only the X-ray sees
    station: str = STATION
    test: str = "xray"

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1 or not 0 <= self.hidden_rate <= 1:
            raise ValueError("the downstream rates are shares, from 0 to 1")
        if self.delay_s < 0:
            raise ValueError("the downstream delay cannot be negative")

    @property
    def on(self) -> bool:
        return self.rate > 0


@dataclass(frozen=True, slots=True)
class Test:
    """One result the station will post, and when (simulated time)."""

    at: datetime
    payload: bytes
    ng: bool


class Station:
    def __init__(self, config: DownstreamConfig, plant: str, seed: int) -> None:
        self.config = config
        self.plant = plant
        self.rng = np.random.default_rng([seed, 20_000])  # its own: the hall's draws stay
        self.planned = 0
        self.ng = 0

    def test(self, machine: str, done: Action, now: datetime, code: str | None) -> Test | None:
        """The station's result for a casting the cell has just handled, if it tests it."""
        if done.action != "next_station" or self.rng.random() >= self.config.rate:
            return None
        hidden = not done.defective and self.rng.random() < self.config.hidden_rate
        ng = done.defective or hidden
        at = now + timedelta(seconds=self.config.delay_s)
        part: dict[str, object] = {"data_matrix": code}
        if code is None:
            part = {"machine": machine, "shot_number": done.shot_number, "cavity": done.cavity}
        fields: dict[str, object] = {"plant": self.plant, "station": self.config.station}
        fields |= {"part": part, "test": self.config.test, "ts": at}
        fields |= {"result": "NG" if ng else "OK"}
        if hidden:
            fields["defect_type"] = str(self.rng.choice(HIDDEN_DEFECTS))
        self.planned += 1
        self.ng += ng
        return Test(at, DownstreamMessage.model_validate(fields).to_json(), ng)
