"""Plant, machines, dies, camera views and die maintenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CameraView:
    """One camera position at a robot cell, e.g. "front" or "top"."""

    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class MaintenanceRecord:
    at: datetime
    shot_count: int  # die shot counter when the work was done
    kind: str  # "polish", "repair", "overhaul", ...
    note: str = ""


@dataclass(slots=True)
class Die:
    """A die (mould) with its own shot counter; it moves between machines."""

    code: str
    part_name: str
    rated_life_shots: int = 100_000
    shot_counter: int = 0
    maintenance: list[MaintenanceRecord] = field(default_factory=list)

    def shots_since_maintenance(self) -> int:
        last = max((m.shot_count for m in self.maintenance), default=0)
        return self.shot_counter - last

    def life_used(self) -> float:
        """Fraction of rated life used (can exceed 1.0 on an overrun die)."""
        return self.shot_counter / self.rated_life_shots if self.rated_life_shots else 0.0


@dataclass(frozen=True, slots=True)
class Machine:
    """A die-casting machine with its robot cell and camera views."""

    id: str
    name: str = ""
    clamp_force_t: float | None = None
    views: tuple[CameraView, ...] = (CameraView("front"),)


@dataclass(frozen=True, slots=True)
class Plant:
    id: str
    name: str
    machines: tuple[Machine, ...] = ()

    def machine(self, machine_id: str) -> Machine:
        for m in self.machines:
            if m.id == machine_id:
                return m
        raise KeyError(f"plant {self.id!r} has no machine {machine_id!r}")
