"""Units as the source gives them: KAMP's velocities, declared mm/s, give fast shots no
HPDC machine runs; the import says so, stored figures stay as converted, and root
cause and SPC show these velocities in source units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from castline.analytics import importer, mapping, queries, rootcause, spc
from castline.domain.units import SOURCE_UNITS, fast_shot_doubtful, shown_unit
from castline.store import database

NOTE = (
    "note: low_section_speed, high_section_speed: declared unit mm/s gives 0.11 m/s fast "
    "shots, implausible for HPDC: read as the source's numbers"
)


def test_fast_shots_far_from_hpdc_make_the_velocity_unit_doubtful() -> None:
    assert fast_shot_doubtful([0.112, 0.113, float("nan"), 0.101]) == 0.112
    assert fast_shot_doubtful([3.5, 4.1, 2.8]) is None  # what HPDC runs at
    assert fast_shot_doubtful([float("nan")]) is None and fast_shot_doubtful(None) is None
    assert shown_unit("fast_shot_velocity_mps", True) == SOURCE_UNITS
    assert shown_unit("slow_shot_velocity_mps", True) == SOURCE_UNITS  # one unit per source
    assert shown_unit("melt_temp_c", True) == "°C"
    assert shown_unit("fast_shot_velocity_mps", False) == "m/s"
    assert mapping.unit_notes(mapping.KAMP, [3.2] * 50) == []


def test_kamp_import_says_so_and_keeps_the_figures(sqlite_engine: Engine, kamp_data: Path) -> None:
    database.upgrade(sqlite_engine)
    source = kamp_data / "process" / "train_group_8722.csv"
    report = importer.import_shots(
        sqlite_engine, source, mapping.KAMP, "kamp", limit=800, progress=False
    )
    assert NOTE in report.lines()
    raw = pd.read_csv(source, nrows=800, encoding="utf-8-sig")["high_section_speed"]
    shots = queries.shots(sqlite_engine, "kamp")
    stored = sorted(shots["fast_shot_velocity_mps"].dropna())
    assert np.allclose(stored, sorted(raw.dropna() / 1000))  # not silently rescaled

    charts = spc.monitor(sqlite_engine, "kamp", baseline_shots=300, raise_alarms=False)
    units = {c["parameter"]: c["unit"] for c in charts}
    assert units["fast_shot_velocity_mps"] == SOURCE_UNITS and units["melt_temp_c"] == "°C"
    chart = spc.stored_chart(
        sqlite_engine, "kamp", "die-8722", "slow_shot_velocity_mps", baseline_shots=300
    )
    assert chart.shown_unit == SOURCE_UNITS
    cause = rootcause.report(sqlite_engine, "kamp")
    assert cause["unit_note"].startswith(
        f"slow_shot_velocity_mps, fast_shot_velocity_mps in {SOURCE_UNITS} for die 8722"
    )


def test_a_velocity_finding_names_source_units() -> None:
    rng = np.random.default_rng(3)
    n = 600
    slow = rng.normal(0.11, 0.01, n)
    ng = (rng.random(n) < np.where(slow < 0.1, 0.5, 0.03)).astype(float)
    frame = pd.DataFrame(
        {"slow_shot_velocity_mps": slow, "fast_shot_velocity_mps": np.full(n, 0.112), "ng": ng}
    )
    (finding,) = rootcause.rank(frame, ("slow_shot_velocity_mps",))
    assert f"{SOURCE_UNITS} (" in finding.text and "m/s" not in finding.text
    plausible = frame.assign(fast_shot_velocity_mps=3.4, slow_shot_velocity_mps=slow * 3)
    (finding,) = rootcause.rank(plausible, ("slow_shot_velocity_mps",))
    assert "m/s (" in finding.text
