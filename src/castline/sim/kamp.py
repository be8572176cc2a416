"""The real KAMP die-casting telemetry: its columns in castline's names and units.

One CSV row is one shot of one die (`mold_code`). The calibration script fits the
simulator to these rows, and replay streams them. Units follow the publisher's
`var_labels.csv`: temperatures in °C, plunger speeds in mm/s (converted to m/s here),
cast pressure in bar, biscuit thickness in mm, cycle times in s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from castline.domain.states import MachineState

# KAMP column -> (castline parameter name, factor to castline's unit).
COLUMNS: dict[str, tuple[str, float]] = {
    "molten_temp": ("melt_temp_c", 1.0),
    "upper_mold_temp1": ("die_temp_fixed_c", 1.0),
    "lower_mold_temp1": ("die_temp_moving_c", 1.0),
    "sleeve_temperature": ("sleeve_temp_c", 1.0),
    "Coolant_temperature": ("coolant_temp_c", 1.0),
    "low_section_speed": ("slow_shot_velocity_mps", 0.001),  # mm/s -> m/s
    "high_section_speed": ("fast_shot_velocity_mps", 0.001),  # mm/s -> m/s
    "cast_pressure": ("intensification_pressure_bar", 1.0),
    "biscuit_thickness": ("biscuit_thickness_mm", 1.0),
    "facility_operation_cycleTime": ("cycle_time_s", 1.0),
    # Not standard parameters: they travel as plant-specific extras.
    "upper_mold_temp2": ("die_temp_fixed_2_c", 1.0),
    "lower_mold_temp2": ("die_temp_moving_2_c", 1.0),
    "production_cycletime": ("production_cycle_time_s", 1.0),
    "physical_strength": ("physical_strength", 1.0),
    "EMS_operation_time": ("ems_operation_time_s", 1.0),
}

RUNNING = "가동"  # the `working` column: running; "정지" is stopped
TRIAL = "D"  # the `tryshot_signal` column: a try shot
LOCAL_OFFSET = timedelta(hours=9)  # timestamps are Korean local time (UTC+9)


@dataclass(frozen=True, slots=True)
class KampShot:
    """One real shot, converted to castline's names and units."""

    die: str
    recorded_at: datetime  # UTC
    counter: int  # the line's daily production number
    state: MachineState
    trial: bool
    defective: bool
    params: dict[str, float | None]


def files(root: Path) -> list[Path]:
    """The train and test files of every die under a `kamp/process` folder."""
    found = sorted(Path(root).glob("*_group_*.csv"))
    if not found:
        raise FileNotFoundError(
            f"no KAMP files (train_group_<die>.csv) under {root}: point CASTLINE_DATA at the data"
        )
    return found


def read(root: Path) -> pd.DataFrame:
    """All rows of every die, in recorded order, with castline column names added."""
    frames = [pd.read_csv(path).assign(source=path.name) for path in files(root)]
    frame = pd.concat(frames, ignore_index=True)
    frame["recorded_at"] = (pd.to_datetime(frame["datetime"]) - LOCAL_OFFSET).dt.tz_localize(UTC)
    for column, (name, factor) in COLUMNS.items():
        frame[name] = frame[column].astype(float) * factor
    frame["die"] = frame["mold_code"].astype(str)
    return frame.sort_values(["recorded_at", "id"], kind="stable").reset_index(drop=True)


def shots(frame: pd.DataFrame) -> Iterator[KampShot]:
    """The rows of `read` as shots, in recorded order."""
    names = [name for name, _ in COLUMNS.values()]
    columns = ["die", "recorded_at", "count", "working", "tryshot_signal", "passorfail", *names]
    # Row by row (not the whole frame at once), so a replay starts at once.
    for row in frame[columns].itertuples(index=False, name=None):
        die, at, count, working, tryshot, fail, *values = row
        yield KampShot(
            die=die,
            recorded_at=at.to_pydatetime(),
            counter=int(count),
            state=MachineState.RUNNING if working == RUNNING else MachineState.IDLE,
            trial=tryshot == TRIAL,
            defective=bool(fail),
            params={name: float(v) for name, v in zip(names, values, strict=True)},
        )
