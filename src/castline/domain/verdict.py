"""The decision for a casting: OK, NG, REVIEW or QUARANTINE, and how it is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Verdict(StrEnum):
    OK = "OK"  # goes on to the next station
    NG = "NG"  # reject chute
    REVIEW = "REVIEW"  # uncertain: a person looks at it; held until then
    QUARANTINE = "QUARANTINE"  # no trustworthy decision (fault, deadline, no model)

    @property
    def passes(self) -> bool:
        """Only an OK part may move on: every other verdict holds the part."""
        return self is Verdict.OK


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score thresholds of a model: below `review` OK, from `ng` NG, between REVIEW."""

    review: float
    ng: float

    def __post_init__(self) -> None:
        if not self.review <= self.ng:
            raise ValueError(f"review threshold {self.review} must not exceed NG {self.ng}")


def decide(score: float | None, thresholds: Thresholds | None) -> Verdict:
    """Verdict from an anomaly score; fail safe to QUARANTINE without a usable score."""
    if score is None or thresholds is None or score != score:  # NaN check
        return Verdict.QUARANTINE
    if score >= thresholds.ng:
        return Verdict.NG
    if score >= thresholds.review:
        return Verdict.REVIEW
    return Verdict.OK


def combine(verdicts: list[Verdict]) -> Verdict:
    """A part with several views: the worst view decides; no views -> QUARANTINE."""
    if not verdicts:
        return Verdict.QUARANTINE
    order = [Verdict.OK, Verdict.REVIEW, Verdict.NG, Verdict.QUARANTINE]
    return max(verdicts, key=order.index)


@dataclass(frozen=True, slots=True)
class Region:
    """Where on the photo the model saw a defect, in image pixels."""

    x: int
    y: int
    w: int
    h: int
    area_px: int
    score: float


@dataclass(frozen=True, slots=True)
class PartVerdict:
    """The verdict of one part as the line decided it: what the cell is told and what the
    record keeps. `latency_ms` is from the photo's arrival to the decision."""

    verdict: Verdict
    decided_at: datetime
    reason: str
    score: float | None = None
    model_version: str | None = None
    latency_ms: float | None = None
    regions: tuple[Region, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
