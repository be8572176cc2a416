"""A shot: one cycle of a die-casting machine, and the part key of its castings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from castline.domain.curve import ShotCurve
from castline.domain.envelope import EnvelopeCheck
from castline.domain.units import BY_NAME, NAMES

MAX_CAVITIES = 16  # castings one shot of a die makes at most


@dataclass(frozen=True, slots=True, order=True)
class PartKey:
    """Identifies a casting: the machine, its shot number and the die's cavity.

    A die with several cavities makes several castings per shot, one per cavity (1 to
    MAX_CAVITIES; a single-cavity die's part is cavity 1). A data-matrix code, where the
    plant marks parts, travels with the key but does not take part in equality: the
    machine, shot number and cavity are the identity.
    """

    plant: str
    machine: str
    shot_number: int
    data_matrix: str | None = field(default=None, compare=False)
    cavity: int = 1

    def __str__(self) -> str:
        base = f"{self.plant}/{self.machine}/{self.shot_number}"
        return base if self.cavity == 1 else f"{base}/{self.cavity}"

    @classmethod
    def parse(cls, text: str) -> PartKey:
        """Parse "plant/machine/shot" or "plant/machine/shot/cavity" as `str()` writes."""
        parts = text.split("/")
        numbers = parts[2:]
        if len(parts) not in (3, 4) or not all(n.isdigit() for n in numbers):
            raise ValueError(
                f"part key must look like plant/machine/shot_number[/cavity], got {text!r}"
            )
        cavity = int(parts[3]) if len(parts) == 4 else 1
        if not 1 <= cavity <= MAX_CAVITIES:
            raise ValueError(f"cavity must be 1 to {MAX_CAVITIES}, got {cavity}")
        return cls(parts[0], parts[1], int(parts[2]), cavity=cavity)

    def of_cavity(self, cavity: int, data_matrix: str | None = None) -> PartKey:
        """The casting of another cavity of the same shot."""
        return PartKey(self.plant, self.machine, self.shot_number, data_matrix, cavity)


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
    cavities: int = 1  # castings this shot made, one per cavity of the die
    marks: tuple[str | None, ...] = ()  # data-matrix code of each cavity's casting, if marked
    envelope: EnvelopeCheck | None = None  # the curve against its die's golden envelope

    def parts(self) -> list[PartKey]:
        """The castings of this shot, one per cavity, each with its own mark."""
        return [
            self.key.of_cavity(c, self.marks[c - 1] if c <= len(self.marks) else None)
            for c in range(1, self.cavities + 1)
        ]

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
