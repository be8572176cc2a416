"""Per-shot scrap risk over the API: JSON and CSV, scoped to the user's plants."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.analytics.test_predict_pooled import START, die_shots, episodes, record

from .conftest import Plant, as_user

URL = "/api/v1/plants/{}/scrap-risk"


def test_scrap_risk_of_each_shot_as_json_and_csv(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    app, seeded = plant
    n = 1000
    record(app.state.engine, die_shots("8412", n, 700, episodes(n, (300, 400), (800, n)), 6))
    query = {"die": "8412", "train_until": (START + timedelta(minutes=800)).isoformat()}
    answer = client.get(URL.format("p1"), params=query, headers=as_user(seeded, "op1"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(body["shots"]) == 200 and body["rises"]
    hot = [row["risk"] for row in body["shots"]]
    assert min(hot) >= 0 and max(hot) <= 1 and sum(hot) / len(hot) > 2 * body["train_ng_rate"]
    csv = client.get(
        URL.format("p1"), params={**query, "format": "csv"}, headers=as_user(seeded, "op1")
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "die,machine,shot_number,at,risk,out_of_window"
    assert len(csv.text.splitlines()) == 201


def test_scrap_risk_refuses_other_plants_and_bad_questions(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    _, seeded = plant
    query = {"die": "8412", "train_until": START.isoformat()}
    other = client.get(URL.format("p2"), params=query, headers=as_user(seeded, "op1"))
    assert other.status_code == 403
    no_time = client.get(URL.format("p1"), params={"die": "8412"}, headers=as_user(seeded, "op1"))
    assert no_time.status_code == 422
    naive = {"die": "8412", "train_until": "2026-03-02T00:00:00"}
    assert (
        client.get(URL.format("p1"), params=naive, headers=as_user(seeded, "op1")).status_code
        == 422
    )
    too_few = client.get(URL.format("p1"), params=query, headers=as_user(seeded, "op1"))
    assert too_few.status_code == 422 and "need 100 shots" in too_few.json()["detail"]
