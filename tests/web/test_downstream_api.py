"""Downstream results over the API: scoped to plant and role, strict, audited."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from castline.store.reads import Reads

from .conftest import Plant, as_user

BODY = {
    "v": 1,
    "plant": "p1",
    "station": "leak1",
    "part": {"machine": "m1", "shot_number": 1},
    "test": "leak",
    "result": "NG",
    "ts": "2026-11-30T07:00:00Z",
}


def test_a_station_posts_a_result_for_its_plant_only(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    app, seeded = plant
    url = "/api/v1/plants/{}/downstream"
    done = client.post(url.format("p1"), json=BODY, headers=as_user(seeded, "op1"))
    assert done.status_code == 201, done.text
    assert done.json() == {"recorded": True, "part": "p1/m1/1"}
    again = client.post(url.format("p1"), json=BODY, headers=as_user(seeded, "op1"))
    assert again.json()["recorded"] is False
    other = {**BODY, "plant": "p2", "part": {"machine": "m9", "shot_number": 1}}
    refused = client.post(url.format("p2"), json=other, headers=as_user(seeded, "op1"))
    assert refused.status_code == 403
    viewer = client.post(url.format("p1"), json=BODY, headers=as_user(seeded, "viewer"))
    assert viewer.status_code == 403
    for bad in ({**BODY, "result": "MAYBE"}, {**BODY, "part": {}}, {**BODY, "plant": "p2"}):
        answer = client.post(url.format("p1"), json=bad, headers=as_user(seeded, "op1"))
        assert answer.status_code == 422, answer.text
    listed = client.get(url.format("p1"), headers=as_user(seeded, "op1")).json()
    assert [(r["station"], r["shot_number"], r["source"]) for r in listed] == [
        ("leak1", 1, "api:op1")
    ]
    part = client.get("/api/v1/plants/p1/parts/m1/1", headers=as_user(seeded, "op1")).json()
    assert part["downstream"][0]["result"] == "NG"
    audit = client.get("/api/v1/audit", headers=as_user(seeded, "admin")).json()
    assert any(a["action"] == "downstream.post" and a["actor"] == "op1" for a in audit)
    assert Reads(app.state.engine).downstream_results("p1", unmatched=True) == []
