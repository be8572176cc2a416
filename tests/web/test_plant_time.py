"""Plant time and shifts: settings, conversion, and pages that show the plant's clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from castline.cli import app as cli
from castline.settings import Settings, SettingsError, Shift, load
from castline.store import tables as t
from castline.web.plant_time import PlantClock

from .conftest import Plant, as_user

SHANGHAI = PlantClock.of(Settings())


def test_default_zone_and_three_shifts_from_eight() -> None:
    settings = Settings()
    assert settings.plant_timezone == "Asia/Shanghai"
    assert [(s.name, s.start, s.hours) for s in settings.shifts] == [
        ("A", time(8), 8), ("B", time(16), 8), ("C", time(0), 8),
    ]  # fmt: skip


def shift(name: str, start: str, hours: float) -> dict[str, object]:
    return {"name": name, "start": start, "hours": hours}


def test_bad_zone_and_overlapping_shifts_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"CASTLINE_PLANT_TIMEZONE.*not an IANA time zone"):
        load(plant_timezone="Asia/Chongqing-ish")
    with pytest.raises(SettingsError, match="shift A overlaps shift B"):
        load(shifts=[shift("A", "06:00", 12), shift("B", "17:00", 8)])
    with pytest.raises(SettingsError, match="shift names must differ"):
        load(shifts=[shift("A", "06:00", 2), shift("A", "09:00", 2)])
    two = load(shifts=[shift("D", "07:30", 12), shift("N", "19:30", 12)])
    assert two.shifts[1] == Shift(name="N", start=time(19, 30), hours=12)


def test_utc_shown_as_plant_time_with_its_zone() -> None:
    at = datetime(2026, 11, 30, 16, 5, 7, tzinfo=UTC)
    assert SHANGHAI.show(at) == "2026-12-01 00:05 CST"
    assert SHANGHAI.show(at, seconds=True) == "2026-12-01 00:05:07 CST"
    assert SHANGHAI.show(at.replace(tzinfo=None)) == "2026-12-01 00:05 CST"  # SQLite: naive UTC
    kolkata = PlantClock.of(Settings(plant_timezone="Asia/Kolkata"))
    assert kolkata.show(at) == "2026-11-30 21:35 IST"
    assert PlantClock.of(Settings(plant_timezone="America/Sao_Paulo")).label(at) == "-03:00"


def test_today_and_this_shift_begin_in_plant_time() -> None:
    at = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # 07:30 on 1 December in Chongqing
    assert SHANGHAI.start_of_day(at) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    night = SHANGHAI.shift_at(at)
    assert night is not None and night.name == "C"
    assert night.start == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert night.end == datetime(2026, 12, 1, 0, tzinfo=UTC)
    morning = SHANGHAI.shift_at(at + timedelta(hours=1))
    assert morning is not None and morning.name == "A"
    gaps = PlantClock.of(Settings(shifts=(Shift(name="D", start=time(22), hours=4),)))
    late = gaps.shift_at(datetime(2026, 11, 30, 17, 30, tzinfo=UTC))  # 01:30, began yesterday
    assert late is not None and late.start == datetime(2026, 11, 30, 14, tzinfo=UTC)
    assert gaps.shift_at(datetime(2026, 11, 30, 23, tzinfo=UTC)) is None  # 07:00: no shift


def in_zone(app: FastAPI, zone: str) -> None:
    """The seeded plant keeps a zone where the run is about noon; these tests name theirs."""
    app.state.settings = app.state.settings.model_copy(update={"plant_timezone": zone})


def test_a_page_shows_a_known_utc_time_as_plant_time(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    app, seeded = plant
    raised = datetime(2026, 11, 30, 8, 5, tzinfo=UTC)
    with seeded.engine.begin() as conn:
        conn.execute(
            update(t.alarms).where(t.alarms.c.id == seeded.alarm_p1).values(raised_at=raised)
        )
    in_zone(app, "Asia/Shanghai")
    page = client.get("/alarms", headers=as_user(seeded, "viewer")).text
    assert "2026-11-30 16:05 CST" in page
    assert "2026-11-30 08:05" not in page
    in_zone(app, "Europe/Berlin")
    assert "2026-11-30 09:05 CET" in client.get("/alarms", headers=as_user(seeded, "viewer")).text


def test_overview_says_since_when_today_counts_and_the_shift(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    app, seeded = plant
    in_zone(app, "Asia/Shanghai")
    page = client.get("/plants/p1", headers=as_user(seeded, "viewer")).text
    midnight = SHANGHAI.show(SHANGHAI.start_of_day())
    assert f"today since {midnight}, live" in page
    assert midnight.endswith("00:00 CST")
    shift = SHANGHAI.shift_at()
    assert shift is not None and f"Shift {shift.name}:" in page


CALENDAR = """[castline]
holidays = [2026-10-01]
[[castline.shifts]]
name = "A"
start = 08:00:00
hours = 8
breaks = [{start = 12:00:00, minutes = 30}]
[[castline.planned_stops]]
start = 2026-12-03T08:00:00
end = 2026-12-03T12:00:00
reason = "die change"
"""


def test_a_calendar_in_plant_time_from_the_settings_file(tmp_path: Path) -> None:
    file = tmp_path / "castline.toml"
    file.write_text(CALENDAR)
    calendar = load(file).calendar
    (stop,) = calendar.stops
    assert stop.start == datetime(2026, 12, 3, tzinfo=UTC)  # 08:00 CST
    day = datetime(2026, 12, 2, 16, tzinfo=UTC)  # midnight of 3 December, plant time
    # A 08:00-16:00 CST less the stop until 12:00 and the break 12:00-12:30
    assert calendar.planned(day, day + timedelta(days=1)) == [
        (datetime(2026, 12, 3, 4, 30, tzinfo=UTC), datetime(2026, 12, 3, 8, tzinfo=UTC))
    ]
    holiday = datetime(2026, 10, 1, 2, tzinfo=UTC)  # 10:00 CST on 1 October
    assert calendar.shift_at(holiday) is None
    assert calendar.shift_at(holiday + timedelta(days=1)) is not None


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (("minutes = 30", "minutes = 300"), r":3 \(shifts\[0\]\): break at 12:00 .*not within"),
        (("start = 12:00:00", "start = 07:00:00"), r"break at 07:00 .*not within shift A"),
        (("start = 12:00:00", 'start = "noon"'), r"\(shifts\[0\].breaks\[0\].start\)"),
        (("end = 2026-12-03T12", "end = 2026-12-03T07"), r":8 \(planned_stops\): .*ends before"),
        (("[2026-10-01]", "[2026-10-01, 2026-10-01]"), r":2 \(holidays\): 2026-10-01 .*twice"),
        (("[2026-10-01]", "['Oct 1']"), r":2 \(holidays\[0\]\)"),
    ],
)
def test_a_bad_calendar_is_one_line_naming_the_key(
    tmp_path: Path, change: tuple[str, str], said: str
) -> None:
    file = tmp_path / "castline.toml"
    file.write_text(CALENDAR.replace(*change))
    with pytest.raises(SettingsError, match=said) as caught:
        load(file)
    assert len(str(caught.value).splitlines()) == 2  # the heading and one line


def test_overlapping_breaks_and_stops_are_refused() -> None:
    breaks = [{"start": "10:00", "minutes": 30}, {"start": "10:15", "minutes": 10}]
    with pytest.raises(SettingsError, match="breaks of shift A overlap at 10:15"):
        load(shifts=[{"name": "A", "start": "08:00", "hours": 8, "breaks": breaks}])
    stops = [
        {"start": "2026-12-03T08:00", "end": "2026-12-03T12:00"},
        {"start": "2026-12-03T11:00", "end": "2026-12-03T13:00"},
    ]
    with pytest.raises(SettingsError, match=r"CASTLINE_PLANNED_STOPS: .* overlap"):
        load(planned_stops=stops)


def test_castline_config_shows_the_calendar_as_the_environment_takes_it(tmp_path: Path) -> None:
    file = tmp_path / "castline.toml"
    file.write_text(CALENDAR)
    shown = CliRunner().invoke(cli, ["config", "--config", str(file)])
    assert shown.exit_code == 0, shown.output
    (shifts,) = [line for line in shown.output.splitlines() if line.startswith("shifts ")]
    listed = shifts.split("=", 1)[1].rsplit("  #", 1)[0]
    assert json.loads(listed) == [
        {"name": "A", "start": "08:00:00", "hours": 8.0,
         "breaks": [{"start": "12:00:00", "minutes": 30.0}]}
    ]  # fmt: skip
    assert load(shifts=json.loads(listed)).calendar.shifts == load(file).calendar.shifts
