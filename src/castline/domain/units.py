"""Process parameters of a shot, each with its unit.

The standard set covers what every high-pressure die-casting machine reports;
plants add their own parameters by name (kept in `Shot.extra`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    unit: str
    label: str
    low: float  # physically plausible range: outside it a reading is a sensor fault
    high: float


MACHINE_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("melt_temp_c", "°C", "melt temperature", 550.0, 800.0),
    Parameter("die_temp_fixed_c", "°C", "die temperature, fixed half", 20.0, 450.0),
    Parameter("die_temp_moving_c", "°C", "die temperature, moving half", 20.0, 450.0),
    Parameter("sleeve_temp_c", "°C", "shot sleeve temperature", 20.0, 600.0),
    Parameter("coolant_temp_c", "°C", "coolant temperature", 0.0, 100.0),
    Parameter("slow_shot_velocity_mps", "m/s", "slow shot (first phase) velocity", 0.0, 2.0),
    Parameter("fast_shot_velocity_mps", "m/s", "fast shot (second phase) velocity", 0.0, 12.0),
    Parameter("intensification_pressure_bar", "bar", "cast pressure", 0.0, 2000.0),
    Parameter("biscuit_thickness_mm", "mm", "biscuit thickness", 0.0, 150.0),
    Parameter("cycle_time_s", "s", "cycle time", 0.0, 600.0),
    Parameter("vacuum_mbar", "mbar", "die cavity vacuum (absolute)", 0.0, 1100.0),
    Parameter("spray_time_s", "s", "die spray time", 0.0, 60.0),
)

# Measured from the shot curve (`domain.curve_features`) by castline when the machine
# does not report them itself; stored, charted and analysed like the parameters above.
CURVE_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("curve_switchover_mm", "mm", "switch-over position (curve)", 0.0, 5000.0),
    Parameter("curve_fast_velocity_mean_mps", "m/s", "fast shot mean velocity (curve)", 0.0, 20.0),
    Parameter("curve_fast_velocity_min_mps", "m/s", "fast shot lowest velocity (curve)", 0.0, 20.0),
    Parameter("curve_fill_time_ms", "ms", "fill time (curve)", 0.0, 10_000.0),
    Parameter("curve_pressure_rise_ms", "ms", "pressure rise time (curve)", 0.0, 10_000.0),
    Parameter("curve_intensification_bar", "bar", "intensification pressure (curve)", 0.0, 3000.0),
    Parameter("curve_biscuit_mm", "mm", "biscuit thickness (curve)", 0.0, 500.0),
)
MACHINE_NAMES: tuple[str, ...] = tuple(p.name for p in MACHINE_PARAMETERS)
CURVE_NAMES: tuple[str, ...] = tuple(p.name for p in CURVE_PARAMETERS)
PARAMETERS: tuple[Parameter, ...] = MACHINE_PARAMETERS + CURVE_PARAMETERS

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)

# Units as the source gives them. High-pressure die casting fills a die with a fast shot
# of about 2-6 m/s; a source whose fast shots come out below 1 m/s (or above 12) in its
# declared unit cannot mean that unit (KAMP documents mm/s, which gives 0.11 m/s). Its
# velocities (slow and fast: one unit in a source) are then shown in "source units": the
# stored figures, comparable with each other, not a physical speed. Nothing stored changes.
SOURCE_UNITS = "source units"
VELOCITIES: tuple[str, ...] = ("slow_shot_velocity_mps", "fast_shot_velocity_mps")
HPDC_FAST_SHOT_MPS = (1.0, 12.0)


def fast_shot_doubtful(fast_shots_mps: Iterable[float] | None) -> float | None:
    """The median fast shot when it is implausible for HPDC (the unit is doubtful),
    else None (plausible, or no readings)."""
    if fast_shots_mps is None:
        return None
    readings = sorted(float(v) for v in fast_shots_mps if v == v)  # NaN: not measured
    if not readings:
        return None
    median = readings[len(readings) // 2]
    low, high = HPDC_FAST_SHOT_MPS
    return None if low <= median <= high else median


def shown_unit(name: str, doubtful: bool) -> str:
    """A parameter's unit as a report shows it: its own, or SOURCE_UNITS for a velocity
    when the fast shots beside it are implausible (`fast_shot_doubtful`)."""
    if doubtful and name in VELOCITIES:
        return SOURCE_UNITS
    p = BY_NAME.get(name)
    return p.unit if p else ""
