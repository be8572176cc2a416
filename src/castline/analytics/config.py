"""Per-die analytics settings: spec limits, planned cycle time, shifts, inspection labour.

A small TOML file (or dict) overrides the defaults; a die's table overrides `[default]`:

    planned_cycle_time_s = 60          # PRI, planned run time per casting
    manual_inspection_s = 20           # time a person needs to inspect one casting
    shift_hours = 8
    first_shift_starts_h = 6           # UTC hour of the first shift of a day
    [lines]
    line1 = ["m1", "m2"]
    [spec.default.melt_temp_c]
    lsl = 650
    usl = 750
    [spec.8412.die_temp_fixed_c]
    lsl = 120
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castline.domain.units import BY_NAME

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


@dataclass(slots=True)
class AnalyticsConfig:
    planned_cycle_time_s: float = 60.0
    manual_inspection_s: float = 20.0
    shift_hours: int = 8
    first_shift_starts_h: int = 6
    lines: dict[str, list[str]] = field(default_factory=dict)
    planned_cycle_by_die: dict[str, float] = field(default_factory=dict)
    specs: dict[str, dict[str, Spec]] = field(default_factory=dict)  # die or "default"

    def spec(self, die: str | None, parameter: str) -> Spec:
        for scope in (die or "", "default"):
            found = self.specs.get(scope, {}).get(parameter)
            if found is not None:
                return found
        lsl, usl = DEFAULT_SPECS.get(parameter, (None, None))
        return Spec(lsl, usl)

    def pri_s(self, die: str) -> float:
        """Planned run time per item (PRI) of a die."""
        return self.planned_cycle_by_die.get(die, self.planned_cycle_time_s)

    def line_of(self, machine: str) -> str:
        for line, machines in self.lines.items():
            if machine in machines:
                return line
        return "line"  # machines not placed on a line form one line

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalyticsConfig:
        specs: dict[str, dict[str, Spec]] = {}
        for scope, params in data.get("spec", {}).items():
            for name, limits in params.items():
                if name not in BY_NAME:
                    raise ValueError(
                        f"spec.{scope}.{name}: unknown parameter; known: " + ", ".join(BY_NAME)
                    )
                specs.setdefault(str(scope), {})[name] = Spec(limits.get("lsl"), limits.get("usl"))
        known = {
            "planned_cycle_time_s",
            "manual_inspection_s",
            "shift_hours",
            "first_shift_starts_h",
            "lines",
            "planned_cycle_by_die",
            "spec",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown analytics setting(s): {', '.join(unknown)}")
        scalars = {
            k: data[k] for k in known - {"spec", "lines", "planned_cycle_by_die"} if k in data
        }
        return cls(
            **scalars,
            lines={k: list(v) for k, v in data.get("lines", {}).items()},
            planned_cycle_by_die={
                str(k): float(v) for k, v in data.get("planned_cycle_by_die", {}).items()
            },
            specs=specs,
        )

    @classmethod
    def load(cls, path: Path | None) -> AnalyticsConfig:
        if path is None:
            return cls()
        try:
            return cls.from_dict(tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
            raise ValueError(f"analytics config {path}: {exc}") from None
