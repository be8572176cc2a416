"""The benefit report's plan: its periods and method, fixed before any figure is read.

Declared in the analytics file's `[benefit]` table (or given to `castline report
benefit` on the command line, which then wins key by key):

    [benefit]
    baseline_since = 2026-11-01T00:00:00Z   # before castline
    baseline_until = 2026-11-15T00:00:00Z
    since = 2026-11-15T00:00:00Z            # with castline
    until = 2026-11-29T00:00:00Z            # absent: the moment the report is made
    resample_by = "day"                     # "day", "shift" or "hour": the bootstrap's blocks
    resamples = 1000
    seed = 15
    confidence = 0.95
    baseline_inspection_h_per_day = 48      # a declared staffing plan, used only where
    current_inspection_h_per_day = 40       # no inspection hours were logged

The report lists the plan it used, so a reader sees the periods were not chosen after
the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

BLOCKS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}  # "shift": shift_hours


class PlanError(ValueError):
    """A refused value of the `[benefit]` table; `key` is its path below the table."""

    def __init__(self, key: tuple[str, ...], message: str) -> None:
        super().__init__(f"benefit.{'.'.join(key)}: {message}")
        self.key, self.message = key, message


@dataclass(frozen=True, slots=True)
class BenefitPlan:
    baseline_since: datetime | None = None
    baseline_until: datetime | None = None
    since: datetime | None = None
    until: datetime | None = None  # None: when the report is made
    resample_by: str = "day"
    resamples: int = 1000
    seed: int = 15
    confidence: float = 0.95
    baseline_inspection_h_per_day: float | None = None
    current_inspection_h_per_day: float | None = None
    source: str = "analytics file"

    @property
    def declared(self) -> bool:
        return None not in (self.baseline_since, self.baseline_until, self.since)

    def missing(self) -> list[str]:
        names = ("baseline_since", "baseline_until", "since")
        return [n for n in names if getattr(self, n) is None]

    def check(self) -> None:
        """Periods in order and apart: a baseline that overlaps the comparison would
        compare castline with itself."""
        if not self.declared:
            raise PlanError((self.missing()[0],), "not declared")
        assert self.baseline_since and self.baseline_until and self.since
        if self.baseline_until <= self.baseline_since:
            raise PlanError(("baseline_until",), "must lie after baseline_since")
        if self.since < self.baseline_until:
            raise PlanError(("since",), "the comparison period must begin after the baseline")
        if self.until is not None and self.until <= self.since:
            raise PlanError(("until",), "must lie after since")

    def merged(self, **given: Any) -> BenefitPlan:
        """This plan with the values given on the command line (None: keep the file's)."""
        changes = {k: v for k, v in given.items() if v is not None}
        if not changes:
            return self
        return replace(self, **changes, source=f"{self.source}, command line")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> BenefitPlan:
        unknown = sorted(set(table) - set(cls.__dataclass_fields__) - {"source"})
        if unknown:
            known = ", ".join(n for n in cls.__dataclass_fields__ if n != "source")
            raise PlanError((unknown[0],), f"unknown setting; known: {known}")
        given: dict[str, Any] = {}
        for name in ("baseline_since", "baseline_until", "since", "until"):
            if name in table:
                given[name] = when(table[name], (name,))
        if "resample_by" in table:
            given["resample_by"] = resample_unit(table["resample_by"])
        given |= _numbers(table)
        plan = cls(**given)
        if plan.declared:
            plan.check()
        return plan


def when(value: Any, key: tuple[str, ...]) -> datetime:
    """A TOML or ISO date-time with its zone (a date: its midnight UTC is not assumed)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PlanError(key, f"not an ISO date-time: {value!r}") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        raise PlanError(key, f"give a time with its zone, e.g. {value}T00:00:00Z")
    if isinstance(value, time) or not isinstance(value, datetime):
        raise PlanError(key, f"must be a date-time with its zone, got {value!r}")
    if value.tzinfo is None:
        raise PlanError(key, f"{value.isoformat()} has no zone: add Z or +08:00")
    return value


def resample_unit(value: Any) -> str:
    if value not in ("day", "shift", "hour"):
        raise PlanError(("resample_by",), f'must be "day", "shift" or "hour", got {value!r}')
    return str(value)


def _numbers(table: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, low, high in (("resamples", 100, 100_000), ("seed", 0, 2**31 - 1)):
        if name in table:
            value = table[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise PlanError((name,), f"must be a whole number from {low} to {high}")
            out[name] = value
    if "confidence" in table:
        value = table["confidence"]
        if not isinstance(value, float) or not 0.5 <= value < 1:
            raise PlanError(("confidence",), f"must be a number from 0.5 to below 1, got {value!r}")
        out["confidence"] = value
    for name in ("baseline_inspection_h_per_day", "current_inspection_h_per_day"):
        if name in table:
            value = table[name]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise PlanError((name,), f"must be a number of hours >= 0, got {value!r}")
            out[name] = float(value)
    return out
