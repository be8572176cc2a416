"""Process parameters of a shot, each with its unit.

The standard set covers what every high-pressure die-casting machine reports;
plants add their own parameters by name (kept in `Shot.extra`).
"""

from __future__ import annotations

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
