"""Declarative mappings from a plant's MES export to castline shots.

A mapping names, for each source column, the castline parameter it feeds and the unit
conversion (value x scale + offset); every other source column goes into `extra`.

KAMP (Korea AI Manufacturing Platform die-casting data): the speeds are documented in
its `var_labels.csv` as mm/s, so slow and fast shot velocity are value / 1000 m/s. The
clock is Korean local time (UTC+9). `count` is a production counter that restarts every
shift (and after some stops), so it alone does not identify a shot: the shot number is
the local timestamp written as digits followed by the counter (YYMMDDhhmmss x 1000 +
count), which is unique per machine and the same every time the same row is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from castline.domain.states import MachineState


@dataclass(frozen=True, slots=True)
class ColumnMap:
    source: str
    parameter: str
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True, slots=True)
class Mapping:
    name: str
    timestamp: str  # "" when the export has only separate date and time columns
    timezone: str
    die: str
    counter: str
    columns: tuple[ColumnMap, ...]
    state: str | None = None
    states: dict[str, MachineState] = field(default_factory=dict)
    defective: str | None = None  # 1 = NG, 0 = OK
    trial: str | None = None
    trial_values: tuple[str, ...] = ()
    missing: dict[str, float] = field(default_factory=dict)  # sentinel meaning "not measured"
    ignored: tuple[str, ...] = ()  # columns carried elsewhere or redundant
    date_time: tuple[str, str] | None = None  # date and time columns, if no timestamp

    def machine_of(self, die: str) -> str:
        return f"die-{die}"


KAMP = Mapping(
    name="kamp",
    timestamp="datetime",
    timezone="Asia/Seoul",
    die="mold_code",
    counter="count",
    columns=(
        ColumnMap("molten_temp", "melt_temp_c"),
        ColumnMap("upper_mold_temp1", "die_temp_fixed_c"),
        ColumnMap("lower_mold_temp1", "die_temp_moving_c"),
        ColumnMap("sleeve_temperature", "sleeve_temp_c"),
        ColumnMap("Coolant_temperature", "coolant_temp_c"),
        ColumnMap("low_section_speed", "slow_shot_velocity_mps", scale=0.001),  # mm/s
        ColumnMap("high_section_speed", "fast_shot_velocity_mps", scale=0.001),  # mm/s
        ColumnMap("cast_pressure", "intensification_pressure_bar"),
        ColumnMap("biscuit_thickness", "biscuit_thickness_mm"),
        ColumnMap("facility_operation_cycleTime", "cycle_time_s"),
    ),
    state="working",
    states={"가동": MachineState.RUNNING, "정지": MachineState.IDLE},  # running, stopped
    defective="passorfail",
    trial="tryshot_signal",
    trial_values=("D",),
    missing={"molten_volume": -1.0},
    ignored=("date", "time", "datetime", "mold_code", "count", "working", "passorfail"),
    date_time=("date", "time"),
)

MAPPINGS: dict[str, Mapping] = {KAMP.name: KAMP}


def get(name: str) -> Mapping:
    try:
        return MAPPINGS[name]
    except KeyError:
        raise ValueError(f"unknown mapping {name!r}; known: {', '.join(MAPPINGS)}") from None
