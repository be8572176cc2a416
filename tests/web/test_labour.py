"""Logged inspection hours (API and the benefit page's form): role, plant scope, strict
entries, audit, and the benefit report then measures labour on them."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from castline.analytics import benefit
from castline.analytics.benefit_plan import BenefitPlan
from castline.store import tables as t

from .conftest import NOW, PASSWORD, Plant, as_user
from .test_access import csrf_of

URL = "/api/v1/plants/{}/labour"
DAY = NOW.replace(hour=0, minute=0, second=0) - timedelta(days=1)


def entry(start: datetime, days: float = 1, hours: float = 16, **more: object) -> dict[str, object]:
    end = start + timedelta(days=days)
    return {"started_at": start.isoformat(), "ended_at": end.isoformat(), "hours": hours} | more


def test_an_operator_logs_hours_of_its_plant_and_the_report_uses_them(
    seeded_on_both: tuple[FastAPI, Plant],
) -> None:
    app, seeded = seeded_on_both
    op1 = as_user(seeded, "op1")  # an operator of p1 only
    with TestClient(app) as client:
        viewer = client.post(URL.format("p1"), json=entry(DAY), headers=as_user(seeded, "viewer"))
        assert viewer.status_code == 403
        assert client.get(URL.format("p1"), headers=as_user(seeded, "viewer")).status_code == 403
        other = client.post(URL.format("p2"), json=entry(DAY), headers=op1)
        assert other.status_code in (403, 404)
        assert client.get(URL.format("p2"), headers=op1).status_code in (403, 404)
        refused = [
            entry(DAY, days=-1),  # ends before it starts
            entry(DAY, days=40),  # longer than a month
            entry(DAY, hours=0),
            entry(DAY, hours=24 * 201),  # more than 200 people all day
            entry(DAY, note="x" * 501),
            entry(DAY, work="welding"),
            entry(DAY, extra="field"),
            entry(DAY) | {"started_at": DAY.replace(tzinfo=None).isoformat()},  # no zone
        ]
        for body in refused:
            answer = client.post(URL.format("p1"), json=body, headers=op1)
            assert answer.status_code in (400, 422), (body, answer.text)
        for days_back in (1, 8, 9):
            start = DAY - timedelta(days=days_back - 1)
            ok = client.post(URL.format("p1"), json=entry(start, note="QC bench"), headers=op1)
            assert ok.status_code == 200, ok.text
        overlap = client.post(URL.format("p1"), json=entry(DAY + timedelta(hours=12)), headers=op1)
        assert overlap.status_code == 409 and "overlaps" in overlap.json()["detail"]
        fixed = client.post(URL.format("p1"), json=entry(DAY, hours=12), headers=op1)
        assert fixed.status_code == 200  # the same start again: a correction
        listed = client.get(URL.format("p1"), headers=op1).json()
        assert [e["hours"] for e in listed] == [12, 16, 16]
        assert listed[0]["logged_by"] == "op1" and listed[1]["note"] == "QC bench"
    with seeded.engine.connect() as conn:
        audited = conn.execute(
            select(t.audit_log.c.actor, t.audit_log.c.detail).where(
                t.audit_log.c.action == "labour.log"
            )
        ).all()
    assert len(audited) == 4 and audited[-1].detail["replaced"] is True
    plan = BenefitPlan(DAY - timedelta(days=9), DAY - timedelta(days=6), DAY, resample_by="day")
    report = benefit.report(seeded.engine, "p1", plan)
    assert report["baseline"]["labour_source"] == "logged"
    assert report["current"]["labour_source"] == "logged"
    assert any("the labour log" in a for a in report["assumptions"])
    untouched = benefit.report(seeded.engine, "p2", plan)
    assert untouched["current"]["labour_source"] != "logged"


def test_the_benefit_page_logs_whole_plant_days(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    seeded = plant[1]
    token = csrf_of(client.get("/login").text)
    client.post("/login", data={"username": "op1", "password": PASSWORD, "csrf_token": token})
    page = client.get("/benefit?lang=zh")
    assert page.status_code == 200 and "登记工时" in page.text
    form = {"first_day": "2026-11-02", "last_day": "2026-11-03", "hours": "30", "note": "X-ray"}
    done = client.post("/benefit/p1/labour", data=form | {"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200 and "已登记 30 小时检验工时" in done.text
    bad = client.post(
        "/benefit/p1/labour",
        data=form | {"first_day": "2.11.2026", "csrf_token": csrf_of(done.text)},
    )
    assert "日期格式如 2026-11-30" in bad.text
    with seeded.engine.connect() as conn:
        (row,) = conn.execute(select(t.labour_log)).mappings().all()
    zone = seeded.settings.calendar.zone  # two plant days, midnight to midnight
    assert row["started_at"].astimezone(zone).isoformat()[:19] == "2026-11-02T00:00:00"
    assert row["ended_at"] - row["started_at"] == timedelta(days=2)
    assert row["logged_by"] == "op1" and row["hours"] == 30
