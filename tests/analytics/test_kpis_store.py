"""KPIs from recorded states and castings, against the hand-computed shift."""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from castline.analytics import kpis
from castline.analytics.config import AnalyticsConfig
from castline.domain.plant_calendar import PlantCalendar, ShiftPlan
from castline.domain.shot import PartKey, Shot

from .plant import at, record_shift


def test_shift_kpis_from_the_store(engine: Engine) -> None:
    record_shift(engine)
    config = AnalyticsConfig(planned_cycle_time_s=60)
    (row,) = kpis.kpi_table(engine, "p1", at(6), at(14), by="total", config=config)
    assert row["pbt_s"] == pytest.approx(8 * 3600)
    assert row["apt_s"] == pytest.approx(7 * 3600)
    assert row["setup_s"] == pytest.approx(1800)
    assert (row["pq"], row["gq"], row["sq"], row["gpq"]) == (10, 8, 2, 7)
    assert row["trial_shots"] == 1  # not production, but reported apart
    assert row["failures"] == 1 and row["repair_s"] == pytest.approx(1800)
    assert row["availability"] == pytest.approx(7 / 8)
    assert row["effectiveness"] == pytest.approx(600 / 25200)
    assert row["quality_ratio"] == pytest.approx(0.8)
    assert row["oee"] == pytest.approx(7 / 8 * 600 / 25200 * 0.8)
    assert row["first_pass_yield"] == pytest.approx(0.7)
    assert row["mtbf_s"] == pytest.approx(7 * 3600) and row["mttr_s"] == pytest.approx(1800)
    assert row["downtime_by"] == {"breakdown": 1800, "setup": 1800}


def test_periods_split_time_and_parts(sqlite_engine: Engine) -> None:
    record_shift(sqlite_engine, "m1")
    record_shift(sqlite_engine, "m2")
    early, late = ShiftPlan("E", time(6), 4), ShiftPlan("L", time(10), 4)
    config = AnalyticsConfig(calendar=PlantCalendar(ZoneInfo("UTC"), (early, late)))
    rows = kpis.kpi_table(
        sqlite_engine, "p1", at(6), at(14), by="shift", level="plant", config=config
    )
    assert [r["unit"] for r in rows] == ["p1", "p1"]
    assert [r["shift"] for r in rows] == ["E", "L"]
    first, second = rows
    # 06:00-10:00: 3.5 h running of 4 h per machine, all ten castings (07:10-08:00)
    assert first["apt_s"] == pytest.approx(2 * 3.5 * 3600)
    assert first["pq"] == 20 and second["pq"] == 0
    assert second["availability"] == pytest.approx(3.5 / 4)
    assert second["quality_ratio"] is None


def test_a_default_planned_cycle_is_named_with_a_figure_to_set(sqlite_engine: Engine) -> None:
    store = record_shift(sqlite_engine)
    store.record_shots(
        [
            Shot(PartKey("p1", "m1", 200 + n), "8412", at(9 + n * 0.05), {"cycle_time_s": c})
            for n, c in enumerate([118.0, 119.0, 121.0])
        ]
    )
    (row,) = kpis.kpi_table(sqlite_engine, "p1", at(6), at(14), by="total")
    (note,) = row["defaults_used"]
    assert "planned cycle time: default 60 s for die 8412" in note
    assert "set planned_cycle_time_s" in note and "median recorded cycle 119 s" in note
    assert row["suggested_planned_cycle_s"] == pytest.approx(119.0)
    assert row["effectiveness"] == pytest.approx(13 * 60 / (7 * 3600))
    for given in (
        AnalyticsConfig(planned_cycle_time_s=120),
        AnalyticsConfig(planned_cycle_by_die={"8412": 120.0}),
    ):
        (set_row,) = kpis.kpi_table(sqlite_engine, "p1", at(6), at(14), by="total", config=given)
        assert set_row["defaults_used"] == []
        assert set_row["effectiveness"] == pytest.approx(13 * 120 / (7 * 3600))
