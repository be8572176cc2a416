"""The plant calendar in the KPIs: breaks, planned stops, holidays and the time between
shifts are no loss; shifts and days begin in plant time; old UTC shift keys are ignored
with a note saying what they meant."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from castline.analytics import kpis
from castline.analytics.config import AnalyticsConfig, of
from castline.cli import app as cli
from castline.domain.plant_calendar import Break, PlannedStop, PlantCalendar, ShiftPlan
from castline.settings import Settings

from .plant import at, record_shift

UTC_ZONE = ZoneInfo("UTC")


def day_shift(*breaks: Break) -> ShiftPlan:
    return ShiftPlan("D", time(6), 8, breaks)


def total(engine: Engine, calendar: PlantCalendar) -> dict[str, object]:
    config = AnalyticsConfig(planned_cycle_time_s=60, calendar=calendar)
    (row,) = kpis.kpi_table(engine, "p1", at(6), at(14), by="total", config=config)
    return row


def test_standing_in_a_break_is_no_loss_running_through_it_is_production(
    sqlite_engine: Engine,
) -> None:
    """The recorded shift sets up 12:00-12:30 and runs 09:00-12:00 (see plant.py)."""
    record_shift(sqlite_engine)
    plain = total(sqlite_engine, PlantCalendar(UTC_ZONE, (day_shift(),)))
    assert plain["pbt_s"] == pytest.approx(8 * 3600)
    set_up_in_break = total(
        sqlite_engine, PlantCalendar(UTC_ZONE, (day_shift(Break(time(12), 30)),))
    )
    assert set_up_in_break["pbt_s"] == pytest.approx(7.5 * 3600)
    assert set_up_in_break["availability"] == pytest.approx(7 / 7.5)
    assert set_up_in_break["downtime_by"] == {"breakdown": 1800}
    ran_through = total(sqlite_engine, PlantCalendar(UTC_ZONE, (day_shift(Break(time(10), 30)),)))
    assert ran_through["apt_s"] == pytest.approx(7 * 3600)
    assert ran_through["pbt_s"] == pytest.approx(8 * 3600)


def test_planned_stops_holidays_and_gaps_leave_planned_time(sqlite_engine: Engine) -> None:
    record_shift(sqlite_engine)  # breakdown 08:00-08:30
    stop = PlannedStop(at(8), at(8.5), "die trial")
    stopped = total(sqlite_engine, PlantCalendar(UTC_ZONE, (day_shift(),), (stop,)))
    assert stopped["pbt_s"] == pytest.approx(7.5 * 3600)
    assert stopped["downtime_by"] == {"setup": 1800}
    assert stopped["failures"] == 1  # a breakdown in a stop is still a breakdown
    holiday = PlantCalendar(UTC_ZONE, (day_shift(),), holidays=frozenset({date(2026, 3, 2)}))
    off = total(sqlite_engine, holiday)
    assert off["pbt_s"] == pytest.approx(7 * 3600) and off["availability"] == pytest.approx(1)
    short = total(sqlite_engine, PlantCalendar(UTC_ZONE, (ShiftPlan("E", time(6), 4),)))
    assert short["pbt_s"] == pytest.approx((4 + 2 + 1.5) * 3600)  # then it ran on, unplanned


def test_days_and_shifts_begin_in_plant_time() -> None:
    shanghai = AnalyticsConfig()  # the default calendar: Asia/Shanghai, A 08:00, B, C
    edges = kpis.period_edges(at(0), at(48), "day", shanghai)
    assert [e.hour for e in edges] == [0, 16, 16, 0]  # plant midnight is 16:00 UTC
    shifts = kpis.period_edges(at(0), at(12), "shift", shanghai)
    assert [e.hour for e in shifts] == [0, 8, 12]  # A 08:00-16:00 CST, B from 16:00 CST
    weeks = kpis.period_edges(at(0), at(24 * 9), "week", shanghai)
    assert weeks[1] == datetime(2026, 3, 8, 16, tzinfo=UTC)  # Monday 9 March 00:00 CST


def test_an_old_analytics_file_is_read_its_utc_shifts_ignored_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "analytics.toml").write_text(
        "planned_cycle_time_s = 120\nshift_hours = 8\nfirst_shift_starts_h = 6\n"
    )
    settings = Settings(home=tmp_path)
    with caplog.at_level(logging.WARNING):
        config = of(settings)
        of(settings)  # said once, not on every page
    assert config.planned_cycle_time_s == 120
    assert config.calendar == settings.calendar
    (note,) = config.notes
    assert "analytics.toml:2: shift_hours and first_shift_starts_h ignored" in note
    assert "8 h shifts from 14:00, 22:00, 06:00 Asia/Shanghai" in note
    assert "[[castline.shifts]]" in note
    assert [r.getMessage() for r in caplog.records] == [note]


def test_report_kpi_by_shift_in_plant_time(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_shift(sqlite_engine)  # 06:00-14:00 UTC: 14:00-22:00 in Shanghai
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path))
    monkeypatch.setenv("CASTLINE_DATABASE_URL", sqlite_engine.url.render_as_string())
    args = ["report", "kpi", "--plant", "p1", "--by", "shift", "--level", "plant"]
    window = ["--since", at(6).isoformat(), "--until", at(14).isoformat()]
    ran = CliRunner().invoke(cli, [*args, *window])
    assert ran.exit_code == 0, ran.output
    lines = ran.output.splitlines()
    assert lines[0].startswith("p1             2026-03-02 14:00 CST   A  OEE")
    assert lines[1].startswith("p1             2026-03-02 16:00 CST   B  OEE")
