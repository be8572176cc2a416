"""Shifts on the KPI page: KPIs of each shift of today and yesterday in plant time, and
the defect Pareto by the shift that cast the part, as a table and a chart."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from castline.analytics.config import of
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.verdict import PartVerdict, Verdict
from castline.settings import Settings
from castline.store.repository import Store
from castline.web import pareto, shift_report
from castline.web.plant_time import PlantClock

from .conftest import NOW, PLANT_ZONE, Plant, as_user

CALENDAR = Settings(plant_timezone=PLANT_ZONE).calendar  # A 08:00, B 16:00, C 00:00 plant time


def cast_and_confirm_ng(plant: Plant, number: int, cast: datetime) -> None:
    store = Store(plant.engine)
    key = PartKey("p1", "m2", number)
    store.record_shots([Shot(key, "D1", cast, {})])
    store.record_part(key, PartVerdict(Verdict.NG, cast, "", score=0.9))
    store.record_review(key, Verdict.NG, "qe", NOW - timedelta(minutes=1), "cold_shut")


def test_pareto_by_the_shift_that_cast_the_part(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    seeded = plant[1]
    day = CALENDAR.start_of_day(NOW) - timedelta(days=1)  # yesterday 00:00 plant time
    for n, hours in enumerate([9, 10, 11, 17, 17.5, 3, 7.9]):  # A A A B B C C
        cast_and_confirm_ng(seeded, 500 + n, day + timedelta(hours=hours))
    since, until = NOW - timedelta(days=1), NOW + timedelta(minutes=1)
    rows = pareto.of_plant(seeded.engine, "p1", since, until, CALENDAR)["shift"]
    assert [(r.name, r.parts) for r in rows] == [("A", 3), ("B", 2), ("C", 2)]
    assert rows[1].cumulative == 5 / 7
    viewer = as_user(seeded, "viewer")
    html = client.get("/kpi", headers=viewer).text
    table = html[html.index('class="pareto-shift"') :]
    assert "42.9 %" in table and "/api/v1/plants/p1/pareto/shift.png?days=7" in table
    chart = client.get("/api/v1/plants/p1/pareto/shift.png?days=7&lang=zh", headers=viewer)
    assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")
    wrong = client.get("/api/v1/plants/p1/pareto/weekday.png", headers=viewer)
    assert wrong.status_code == 422


def test_kpis_of_each_shift_today_and_yesterday(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    app, seeded = plant
    store = Store(seeded.engine)
    yesterday = CALENDAR.start_of_day(NOW) - timedelta(days=1)
    store.record_state("p1", "m1", MachineState.RUNNING, yesterday, "D1")
    store.record_state("p1", "m1", MachineState.BREAKDOWN, yesterday + timedelta(hours=4), "D1")
    store.record_state("p1", "m1", MachineState.RUNNING, yesterday + timedelta(hours=6), "D1")
    config = of(app.state.settings)
    shifts = shift_report.today_and_yesterday(seeded.engine, "p1", config, NOW)
    names = [(k.today, k.shift) for k in shifts]
    running = CALENDAR.shift_at(NOW)
    assert running is not None and names[0] == (True, running.name) and shifts[0].running
    assert len(shifts) == len(CALENDAR.spans(yesterday, NOW))  # every shift so far counted
    assert names[-1] == (False, "C") and not any(k.running for k in shifts[1:])
    # yesterday's C shift, 00:00-08:00 plant time, broke down 04:00-06:00 on m1
    assert shifts[-1].availability is not None and shifts[-1].availability < 1
    viewer = as_user(seeded, "viewer")
    html = client.get("/kpi", headers=viewer).text
    table = html[html.index('class="kpi-shifts"') :]
    zone = PlantClock(CALENDAR).label(NOW)
    assert "yesterday" in table and "under way" in table and zone in table
    zh = client.get("/kpi?lang=zh", headers=viewer).text
    assert "按班次的 KPI" in zh and "昨天" in zh


def test_the_api_names_each_shift_of_the_kpis(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    seeded = plant[1]
    since = CALENDAR.start_of_day(NOW) - timedelta(days=1)
    query = {"since": since.isoformat(), "until": NOW.isoformat(), "by": "shift", "level": "plant"}
    answer = client.get("/api/v1/plants/p1/kpis", params=query, headers=as_user(seeded, "viewer"))
    assert answer.status_code == 200, answer.text
    running = CALENDAR.shift_at(NOW)
    assert running is not None and answer.json()[-1]["shift"] == running.name
