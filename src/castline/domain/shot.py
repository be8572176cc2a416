"""A shot: one cycle of a die-casting machine, and the part key of its castings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from castline.domain.curve import ShotCurve
from castline.domain.units import BY_NAME, NAMES


@dataclass(frozen=True, slots=True, order=True)
class PartKey:
    """Identifies a casting: the machine and its shot number.

    A data-matrix code, where the plant marks parts, travels with the key but does
    not take part in equality: the machine and shot number are the identity.
    """

    plant: str
    machine: str
    shot_number: int
    data_matrix: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.plant}/{self.machine}/{self.shot_number}"

    @classmethod
    def parse(cls, text: str) -> PartKey:
        """Parse "plant/machine/shot" as written by `str()`."""
        parts = text.split("/")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"part key must look like plant/machine/shot_number, got {text!r}")
        return cls(parts[0], parts[1], int(parts[2]))


@dataclass(frozen=True, slots=True)
class CurveLists:
    """A shot curve as protocol v1's JSON lists, kept as sent when it does not map to a
    `ShotCurve` (a trace missing, uneven sampling)."""

    t_s: tuple[float, ...]
    position_mm: tuple[float, ...]
    pressure_bar: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Shot:
    key: PartKey
    die: str
    at: datetime  # UTC
    params: dict[str, float | None]  # standard parameters by name, None = not measured
    extra: dict[str, float | str | None] = field(default_factory=dict)  # plant-specific
    trial: bool = False  # warm-up / try shot: never shipped
    curve: ShotCurve | None = None  # position and pressure at a fixed rate
    curve_lists: CurveLists | None = None  # JSON lists that do not map to one

    def value(self, name: str) -> float | None:
        v = self.params.get(name)
        if v is None:
            x = self.extra.get(name)
            v = x if isinstance(x, int | float) else None
        return None if v is None or math.isnan(v) else float(v)

    def implausible(self) -> list[str]:
        """Names of standard parameters outside their physical range (sensor faults)."""
        bad = []
        for name in NAMES:
            v = self.value(name)
            if v is not None and not (BY_NAME[name].low <= v <= BY_NAME[name].high):
                bad.append(name)
        return bad
