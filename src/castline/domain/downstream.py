"""Results of downstream stations (X-ray, leak test, machining, CMM) for a casting.

A station tests a part later, often hours after it was cast, and names it the way it can:
by the data-matrix code it reads, or by the part key (machine and shot number, and the
cavity on a multi-cavity die). An NG result for a part castline passed is an escape: a
defect the line let through, which counts against castline in the KPIs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from castline.domain.shot import MAX_CAVITIES, PartKey

Result = Literal["OK", "NG"]
TESTS = ("xray", "leak", "machining", "cmm")  # the usual ones; a plant may name its own


@dataclass(frozen=True, slots=True)
class PartRef:
    """How a station named the part: by code, by part key, or both (the key then wins)."""

    data_matrix: str | None = None
    machine: str | None = None
    shot_number: int | None = None
    cavity: int | None = None

    def __post_init__(self) -> None:
        by_key = self.machine is not None and self.shot_number is not None
        if not by_key and self.data_matrix is None:
            raise ValueError("name the part by data_matrix, or by machine and shot_number")
        if (self.machine is None) != (self.shot_number is None):
            raise ValueError("machine and shot_number go together")
        if self.cavity is not None and not by_key:
            raise ValueError("a cavity needs the machine and shot_number")
        if self.cavity is not None and not 1 <= self.cavity <= MAX_CAVITIES:
            raise ValueError(f"cavity must be 1 to {MAX_CAVITIES}, got {self.cavity}")

    def key(self, plant: str) -> PartKey | None:
        """The part key it names, if it names one (else only a code); no cavity named is
        cavity 1, as in every part key."""
        if self.machine is None or self.shot_number is None:
            return None
        return PartKey(plant, self.machine, self.shot_number, self.data_matrix, self.cavity or 1)

    def __str__(self) -> str:
        """One text per reference: the natural key of a result in the record."""
        if self.machine is not None:
            cavity = f"/{self.cavity}" if self.cavity is not None else ""
            return f"key:{self.machine}/{self.shot_number}{cavity}"
        return f"dmc:{self.data_matrix}"


@dataclass(frozen=True, slots=True)
class DownstreamResult:
    plant: str
    station: str  # the station's id: its topic level and its login <plant>.<station>
    test: str  # xray, leak, machining, cmm, or the plant's own name
    result: Result
    tested_at: datetime  # UTC
    part: PartRef
    defect_type: str | None = None  # for NG
    values: dict[str, float | None] = field(default_factory=dict)  # leak rate, deviations...
    note: str = ""

    def __post_init__(self) -> None:
        if self.result not in ("OK", "NG"):
            raise ValueError(f"a downstream result is OK or NG, not {self.result!r}")
        if self.defect_type is not None and self.result != "NG":
            raise ValueError("only an NG result names a defect type")


def is_escape(castline_passed: bool, results: list[Result]) -> bool:
    """castline passed the part and a station later found it NG."""
    return castline_passed and "NG" in results
