"""Declarative mappings from a plant's MES export to castline shots.

A mapping names, for each source column, the castline parameter it feeds and the unit
conversion (value x scale + offset); every other source column goes into `extra`.

KAMP (Korea AI Manufacturing Platform die-casting data): the speeds are documented in
its `var_labels.csv` as mm/s, so slow and fast shot velocity are value / 1000 m/s; that
gives 0.11 m/s fast shots, which no HPDC machine runs, so the import says the unit is
doubtful and reports show these velocities in source units (`unit_notes`). The
clock is Korean local time (UTC+9). `count` is a production counter that restarts every
shift (and after some stops), so it alone does not identify a shot: the shot number is
the local timestamp written as digits followed by the counter (YYMMDDhhmmss x 1000 +
count), which is unique per machine and the same every time the same row is imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from castline.domain.states import MachineState
from castline.domain.units import VELOCITIES, fast_shot_doubtful


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """One source column: the parameter it feeds, the unit the source declares for it,
    and the conversion from that unit to the parameter's (value x scale + offset)."""

    source: str
    parameter: str
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""  # as the source declares it (its documentation, a header)


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
    columns=(  # units as var_labels.csv declares them
        ColumnMap("molten_temp", "melt_temp_c", unit="°C"),
        ColumnMap("upper_mold_temp1", "die_temp_fixed_c", unit="°C"),
        ColumnMap("lower_mold_temp1", "die_temp_moving_c", unit="°C"),
        ColumnMap("sleeve_temperature", "sleeve_temp_c", unit="°C"),
        ColumnMap("Coolant_temperature", "coolant_temp_c", unit="°C"),
        ColumnMap("low_section_speed", "slow_shot_velocity_mps", scale=0.001, unit="mm/s"),
        ColumnMap("high_section_speed", "fast_shot_velocity_mps", scale=0.001, unit="mm/s"),
        ColumnMap("cast_pressure", "intensification_pressure_bar", unit="bar"),
        ColumnMap("biscuit_thickness", "biscuit_thickness_mm", unit="mm"),
        ColumnMap("facility_operation_cycleTime", "cycle_time_s", unit="s"),
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


def unit_notes(mapping: Mapping, fast_shots_mps: Iterable[float]) -> list[str]:
    """What the import says of the units the source declares: fast shots implausible for
    HPDC in the declared unit make the source's velocities (one declared unit) doubtful.
    The figures are stored as converted all the same; reports show them in source units."""
    fast = next((c for c in mapping.columns if c.parameter == "fast_shot_velocity_mps"), None)
    median = fast_shot_doubtful(fast_shots_mps)
    if fast is None or median is None:
        return []
    same = [c.source for c in mapping.columns if c.parameter in VELOCITIES and c.unit == fast.unit]
    return [
        f"{', '.join(same)}: declared unit {fast.unit or '(none)'} gives {median:.2g} m/s fast "
        "shots, implausible for HPDC: read as the source's numbers"
    ]


def get(name: str) -> Mapping:
    try:
        return MAPPINGS[name]
    except KeyError:
        raise ValueError(f"unknown mapping {name!r}; known: {', '.join(MAPPINGS)}") from None
