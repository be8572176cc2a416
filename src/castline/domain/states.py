"""Machine states and their ISO 22400-2 time categories.

ISO 22400-2 splits a work unit's time: planned busy time (PBT) is the time it is
scheduled to work; actual production time (APT) is when it produces; delays
(ADOT actual unit down time: breakdowns; ADET actual unit delay time: setup, waiting)
fill the rest of PBT.
Planned stops (breaks, planned maintenance) are outside PBT.
"""

from __future__ import annotations

from enum import StrEnum


class TimeCategory(StrEnum):
    APT = "APT"  # actual production time
    ADET = "ADET"  # actual unit delay time: setup, warm-up, waiting
    ADOT = "ADOT"  # actual unit down time: breakdown, unknown (offline)
    PDOT = "PDOT"  # planned downtime: outside planned busy time


class MachineState(StrEnum):
    RUNNING = "running"
    IDLE = "idle"  # scheduled, ready, not producing (no material, no operator)
    SETUP = "setup"  # die change, warm-up shots
    PLANNED_STOP = "planned_stop"
    BREAKDOWN = "breakdown"
    OFFLINE = "offline"  # no connection: unknown, counted as downtime until known

    @property
    def category(self) -> TimeCategory:
        return _CATEGORY[self]

    @property
    def in_planned_busy_time(self) -> bool:
        return self.category is not TimeCategory.PDOT


_CATEGORY = {
    MachineState.RUNNING: TimeCategory.APT,
    MachineState.IDLE: TimeCategory.ADET,
    MachineState.SETUP: TimeCategory.ADET,
    MachineState.PLANNED_STOP: TimeCategory.PDOT,
    MachineState.BREAKDOWN: TimeCategory.ADOT,
    MachineState.OFFLINE: TimeCategory.ADOT,
}
