"""Per-die analytics settings: spec limits, planned cycle time, lines, inspection labour.

A small TOML file (or dict) overrides the defaults; a die's table overrides `[default]`.
The plant's file is the setting `analytics_file` (default: analytics.toml in the home),
read by `of(settings)` for the dashboard and `castline report` alike, which also attach
the settings' plant calendar (shifts, breaks, planned stops, holidays in plant time):

    planned_cycle_time_s = 120         # PRI, planned run time per casting (unset: 60, said)
    manual_inspection_s = 20           # time a person needs to inspect one casting
    [lines]
    line1 = ["m1", "m2"]
    [rated_life_by_die]               # shots between die maintenance
    8412 = 80000
    [spec.default.melt_temp_c]
    lsl = 650
    usl = 750
    [spec.8412.die_temp_fixed_c]
    lsl = 120
    [benefit]                         # periods of the benefit report (analytics/benefit_plan.py)
    baseline_since = 2026-11-01T00:00:00Z

Files written before the calendar may still say `shift_hours` and `first_shift_starts_h`
(shifts counted in UTC). They are read, and those two keys are ignored with a warning that
says what they meant in plant time: one shift definition, the settings', counts.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from castline.analytics.benefit_plan import BenefitPlan, PlanError
from castline.domain.plant_calendar import PlantCalendar
from castline.domain.units import BY_NAME
from castline.settings import DEFAULT_SHIFTS, Settings

log = logging.getLogger(__name__)

# Defaults for aluminium HPDC; a plant replaces them with its own process sheet.
DEFAULT_SPECS: dict[str, tuple[float | None, float | None]] = {
    "melt_temp_c": (650.0, 750.0),
    "die_temp_fixed_c": (100.0, 320.0),
    "die_temp_moving_c": (100.0, 320.0),
    "sleeve_temp_c": (None, 550.0),
    "coolant_temp_c": (20.0, 40.0),
    "intensification_pressure_bar": (250.0, None),
    "biscuit_thickness_mm": (30.0, 70.0),
}


@dataclass(frozen=True, slots=True)
class Spec:
    lsl: float | None
    usl: float | None


DEFAULT_PLANNED_CYCLE_S = 60.0  # PRI when the plant has set none: a placeholder, said so
DEFAULT_CALENDAR = PlantCalendar(
    ZoneInfo(str(Settings.model_fields["plant_timezone"].default)),
    tuple(s.plan() for s in DEFAULT_SHIFTS),
)
LEGACY_SHIFT_KEYS = ("shift_hours", "first_shift_starts_h")  # UTC shifts, now the calendar's


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    planned_cycle_time_s: float | None = None  # None: DEFAULT_PLANNED_CYCLE_S, reported
    manual_inspection_s: float = 20.0
    lines: dict[str, list[str]] = field(default_factory=dict)
    planned_cycle_by_die: dict[str, float] = field(default_factory=dict)
    rated_life_by_die: dict[str, int] = field(default_factory=dict)  # shots between polishes
    specs: dict[str, dict[str, Spec]] = field(default_factory=dict)  # die or "default"
    benefit: BenefitPlan = field(default_factory=BenefitPlan)  # the benefit report's periods
    calendar: PlantCalendar = DEFAULT_CALENDAR  # the settings' (`of`): shifts in plant time
    notes: tuple[str, ...] = ()  # what was read but not used, in words

    def spec(self, die: str | None, parameter: str) -> Spec:
        for scope in (die or "", "default"):
            found = self.specs.get(scope, {}).get(parameter)
            if found is not None:
                return found
        lsl, usl = DEFAULT_SPECS.get(parameter, (None, None))
        return Spec(lsl, usl)

    def pri_s(self, die: str) -> float:
        """Planned run time per item (PRI) of a die."""
        default = self.planned_cycle_time_s or DEFAULT_PLANNED_CYCLE_S
        return self.planned_cycle_by_die.get(die, default)

    def pri_defaulted(self, die: str) -> bool:
        """True when a die's PRI is the built-in placeholder, not the plant's figure."""
        return die not in self.planned_cycle_by_die and self.planned_cycle_time_s is None

    def line_of(self, machine: str) -> str:
        for line, machines in self.lines.items():
            if machine in machines:
                return line
        return "line"  # machines not placed on a line form one line

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalyticsConfig:
        """Checked strictly: a wrong name or type is an error naming its key, never a
        default silently used instead."""
        unknown = sorted(set(data) - set(KNOWN))
        if unknown:
            raise BadKey((unknown[0],), f"unknown analytics setting; known: {', '.join(KNOWN)}")
        given = {
            "planned_cycle_time_s": _number(data, ("planned_cycle_time_s",)),
            "manual_inspection_s": _number(data, ("manual_inspection_s",), zero=True),
        }
        return cls(
            **{k: v for k, v in given.items() if v is not None},  # type: ignore[arg-type]
            lines=_lines(_table(data, ("lines",))),
            planned_cycle_by_die=_cycles(_table(data, ("planned_cycle_by_die",))),
            rated_life_by_die=_lives(_table(data, ("rated_life_by_die",))),
            specs=_specs(_table(data, ("spec",))),
            benefit=_benefit(_table(data, ("benefit",))),
        )

    @classmethod
    def load(cls, path: Path | None, zone: ZoneInfo | None = None) -> AnalyticsConfig:
        """The file's configuration (None: the defaults); errors name the file and line.
        Its old UTC shift keys are left out with a note (in plant time, given `zone`)."""
        if path is None:
            return cls()
        try:
            text = path.read_text()
            data = tomllib.loads(text)
            legacy = {k: data.pop(k) for k in LEGACY_SHIFT_KEYS if k in data}
            config = cls.from_dict(data)
            if not legacy:
                return config
            line = _line_of(text, (next(iter(legacy)),))
            note = _legacy_note(f"{path}:{line}" if line else str(path), legacy, zone)
            return replace(config, notes=(note,))
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"analytics config {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"at line (\d+)", str(exc))
            where = f"{path}:{found[1]}" if found else str(path)
            raise ValueError(f"analytics config {where}: not valid TOML: {exc}") from None
        except BadKey as exc:
            line = _line_of(text, exc.key)
            where = f"{path}:{line}" if line else str(path)
            raise ValueError(
                f"analytics config {where} ({'.'.join(exc.key)}): {exc.message}"
            ) from None


def of(settings: Settings, file: Path | None = None) -> AnalyticsConfig:
    """The plant's analytics configuration, from `file` or the settings' `analytics_file`
    (the home's analytics.toml when there is one), else the built-in defaults, with the
    settings' plant calendar. The dashboard and `castline report` both read it here, so
    they compute the same figures."""
    calendar = settings.calendar
    config = AnalyticsConfig.load(file or settings.analytics_file, calendar.zone)
    for note in config.notes:
        if note not in _SAID:  # once per process: the dashboard reads the file per page
            _SAID.add(note)
            log.warning("%s", note)
    return replace(config, calendar=calendar)


_SAID: set[str] = set()


def _legacy_note(where: str, legacy: dict[str, Any], zone: ZoneInfo | None) -> str:
    """Why the file's UTC shifts are not used, and what they were in plant time."""
    hours, first = legacy.get("shift_hours", 8), legacy.get("first_shift_starts_h", 6)
    meant = ""
    if isinstance(hours, int) and isinstance(first, int) and 0 < hours <= 24 and zone:
        starts = [
            (datetime(2026, 1, 5, tzinfo=UTC) + timedelta(hours=first + n * hours))
            .astimezone(zone)
            .strftime("%H:%M")
            for n in range(24 // hours)
        ]
        meant = f" (they meant {hours} h shifts from {', '.join(starts)} {zone.key})"
    return (
        f"analytics config {where}: {' and '.join(legacy)} ignored{meant}: shifts are the"
        " settings' plant calendar in plant time ([[castline.shifts]]); remove them here"
    )


KNOWN = (
    "planned_cycle_time_s",
    "manual_inspection_s",
    "lines",
    "planned_cycle_by_die",
    "rated_life_by_die",
    "spec",
    "benefit",
)


class BadKey(ValueError):
    """A value of the analytics file that is refused; `key` is its path in the file."""

    def __init__(self, key: tuple[str, ...], message: str) -> None:
        super().__init__(f"{'.'.join(key)}: {message}")
        self.key, self.message = key, message


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(table: dict[str, Any], key: tuple[str, ...], zero: bool = False) -> float | None:
    """A time in seconds: a number above 0 (or from 0, with `zero`)."""
    value = table.get(key[-1])
    if value is None:
        return None
    if not _is_number(value) or value < 0 or (value == 0 and not zero):
        raise BadKey(key, f"must be a number {'>=' if zero else '>'} 0, got {value!r}")
    return float(value)


def _table(data: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any]:
    """The table at `key`'s last part of `data` (empty when absent)."""
    value = data.get(key[-1], {})
    if not isinstance(value, dict):
        raise BadKey(key, f"must be a table, got {value!r}")
    return value


def _lines(table: dict[str, Any]) -> dict[str, list[str]]:
    for line, machines in table.items():
        if not isinstance(machines, list) or not all(isinstance(m, str) for m in machines):
            raise BadKey(("lines", line), f"must be a list of machine ids, got {machines!r}")
    return {str(k): list(v) for k, v in table.items()}


def _cycles(table: dict[str, Any]) -> dict[str, float]:
    out = {}
    for die in table:
        seconds = _number(table, ("planned_cycle_by_die", die))
        if seconds is None:  # TOML has no null; kept for a dict given in code
            raise BadKey(("planned_cycle_by_die", die), "must be a number > 0")
        out[str(die)] = seconds
    return out


def _lives(table: dict[str, Any]) -> dict[str, int]:
    out = {}
    for die, shots in table.items():
        if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
            raise BadKey(("rated_life_by_die", die), f"must be a whole number > 0, got {shots!r}")
        out[str(die)] = shots
    return out


def _specs(table: dict[str, Any]) -> dict[str, dict[str, Spec]]:
    specs: dict[str, dict[str, Spec]] = {}
    for scope in table:
        for name, limits in _table(table, ("spec", str(scope))).items():
            key = ("spec", str(scope), name)
            if name not in BY_NAME:
                raise BadKey(key, "unknown parameter; known: " + ", ".join(BY_NAME))
            if not isinstance(limits, dict) or set(limits) - {"lsl", "usl"}:
                raise BadKey(key, f"must be a table of lsl and usl, got {limits!r}")
            for side, value in limits.items():
                if not _is_number(value):
                    raise BadKey((*key, side), f"must be a number, got {value!r}")
            lsl, usl = limits.get("lsl"), limits.get("usl")
            spec = Spec(None if lsl is None else float(lsl), None if usl is None else float(usl))
            if spec.lsl is not None and spec.usl is not None and spec.lsl >= spec.usl:
                raise BadKey(key, f"lsl {spec.lsl} must lie below usl {spec.usl}")
            specs.setdefault(str(scope), {})[name] = spec
    return specs


def _benefit(table: dict[str, Any]) -> BenefitPlan:
    try:
        return BenefitPlan.from_table(table)
    except PlanError as exc:
        raise BadKey(("benefit", *exc.key), exc.message) from None


def _line_of(text: str, key: tuple[str, ...]) -> int | None:
    """The line of `key` in a TOML text: under the longest table header that names a
    prefix of it, else where its last part is assigned; None if not found."""
    lines = text.splitlines()

    def part(name: str) -> str:
        return rf"[\"']?{re.escape(name)}[\"']?"

    for cut in range(len(key), 0, -1):
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(part, key[:cut])) + r"\s*\]")
        for i, line in enumerate(lines):
            if not header.match(line):
                continue
            if cut == len(key):
                return i + 1
            assigned = re.compile(rf"^\s*{part(key[cut])}\s*[=.]")
            for j in range(i + 1, len(lines)):
                if lines[j].lstrip().startswith("["):
                    break
                if assigned.match(lines[j]):
                    return j + 1
            return i + 1
    assigned = re.compile(rf"^\s*{part(key[-1])}\s*=")
    return next((i + 1 for i, line in enumerate(lines) if assigned.match(line)), None)
