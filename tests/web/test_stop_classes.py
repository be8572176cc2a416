"""A person classifies a stop (API and page): role, plant scope, audit, and the class
counts in MTBF (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from castline.analytics import downtime
from castline.domain.states import MachineState
from castline.store import tables as t
from castline.store.repository import Store

from .conftest import Plant, as_user

GAP = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=50)


def record_gap(seeded: Plant, plant: str, machine: str) -> None:
    """An import gap (offline) of 20 minutes, then running again."""
    store = Store(seeded.engine)
    store.record_state(plant, machine, MachineState.OFFLINE, GAP, "D1")
    store.record_state(plant, machine, MachineState.RUNNING, GAP + timedelta(minutes=20), "D1")


def body(stop_class: str = "breakdown", reason: str = "hydraulic leak") -> dict[str, str]:
    return {"started_at": GAP.isoformat(), "stop_class": stop_class, "reason": reason}


def test_an_operator_classifies_a_stop_of_its_plant_only(
    seeded_on_both: tuple[FastAPI, Plant],
) -> None:
    app, seeded = seeded_on_both
    record_gap(seeded, "p1", "m1")
    record_gap(seeded, "p2", "m9")
    since, until = GAP - timedelta(hours=1), GAP + timedelta(hours=1)
    segs = downtime.segments(seeded.engine, "p1", since, until, "m1")
    assert downtime.reliability(segs, since, until)[0].breakdowns == 0  # a gap is no failure
    with TestClient(app) as client:
        url = "/api/v1/plants/{}/machines/{}/stops"
        viewer = client.post(url.format("p1", "m1"), json=body(), headers=as_user(seeded, "viewer"))
        assert viewer.status_code == 403
        other = client.post(url.format("p2", "m9"), json=body(), headers=as_user(seeded, "op1"))
        assert other.status_code in (403, 404)  # op1 works in p1 only
        bad = client.post(
            url.format("p1", "m1"), json=body("lunch"), headers=as_user(seeded, "op1")
        )
        assert bad.status_code == 400 and "unknown stop class" in bad.json()["detail"]
        silent = client.post(
            url.format("p1", "m1"), json=body(reason=" "), headers=as_user(seeded, "op1")
        )
        assert silent.status_code == 400
        ok = client.post(url.format("p1", "m1"), json=body(), headers=as_user(seeded, "op1"))
        assert ok.status_code == 200, ok.text
        listed = client.get("/api/v1/plants/p1/stops", headers=as_user(seeded, "viewer")).json()
    gap = next(s for s in listed if s["machine"] == "m1" and s["state"] == "offline")
    assert gap["stop_class"] == "breakdown" and gap["classified_by"] == "op1"
    segs = downtime.segments(seeded.engine, "p1", since, until, "m1")
    (m1,) = downtime.reliability(segs, since, until)
    assert m1.breakdowns == 1 and m1.mttr_min == 20
    with seeded.engine.connect() as conn:
        rows = conn.execute(select(t.audit_log).where(t.audit_log.c.action == "stop.classify"))
        (row,) = rows.fetchall()
    assert row.actor == "op1" and row.detail["class"] == "breakdown"
    still = downtime.segments(seeded.engine, "p2", since, until, "m9")
    assert all(s.classified_by is None for s in still)
