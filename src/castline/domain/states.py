"""Machine states and their ISO 22400-2 time categories.

ISO 22400-2 splits a work unit's time: planned busy time (PBT) is the time it is
scheduled to work; actual production time (APT) is when it produces; delays
(ADET unplanned downtime, ADOT operating delays such as setup) fill the rest of PBT.
Planned stops (breaks, planned maintenance) are outside PBT.
"""

from __future__ import annotations

from enum import StrEnum


class TimeCategory(StrEnum):
    APT = "APT"  # actual production time
    ADOT = "ADOT"  # actual delay/operating time: setup, warm-up, waiting
    ADET = "ADET"  # actual unplanned downtime: breakdown
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
    MachineState.IDLE: TimeCategory.ADOT,
    MachineState.SETUP: TimeCategory.ADOT,
    MachineState.PLANNED_STOP: TimeCategory.PDOT,
    MachineState.BREAKDOWN: TimeCategory.ADET,
    MachineState.OFFLINE: TimeCategory.ADET,
}
