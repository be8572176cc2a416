"""The JSON API on a real SQLite store: what each role may do, and plant scoping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.store import tables as t
from castline.store.repository import Store
from castline.web.auth import new_api_key

from .conftest import Plant, as_user

Seeded = tuple[FastAPI, Plant]


def test_without_credentials_the_api_answers_401(client: TestClient) -> None:
    assert client.get("/api/v1/plants").status_code == 401
    assert client.get("/api/v1/plants", headers={"X-API-Key": "cl_wrong"}).status_code == 401
    assert client.get("/api/v1/health").json() == {"status": "ok", "problems": {}}


def test_overview_has_a_tile_per_machine_with_todays_counts(
    client: TestClient, plant: Seeded
) -> None:
    tiles = client.get("/api/v1/plants/p1/overview", headers=as_user(plant[1], "viewer")).json()
    by_machine = {tile["machine"]: tile for tile in tiles}
    assert set(by_machine) == {"m1", "m2"}
    m1 = by_machine["m1"]
    assert m1["state"] == "running"
    assert m1["shots_today"] == 3
    assert m1["verdicts_today"] == {"OK": 1, "REVIEW": 1, "NG": 1}
    assert m1["yield_today"] == pytest.approx(1 / 3)
    assert m1["last"]["shot_number"] == 3 and m1["last"]["verdict"] == "NG"
    assert m1["alarms_open"] == 1
    assert by_machine["m2"]["shots_today"] == 0 and by_machine["m2"]["yield_today"] is None


def test_part_holds_shot_photo_and_verdict(client: TestClient, plant: Seeded) -> None:
    headers = as_user(plant[1], "viewer")
    found = client.get("/api/v1/plants/p1/parts/m1/3", headers=headers).json()
    assert found["verdict"]["verdict"] == "NG"
    assert found["shot"]["melt_temp_c"] == 663.0
    blob = found["images"][0]["blob"]
    image = client.get(f"/api/v1/blobs/{blob}", headers=headers)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"
    assert client.get("/api/v1/plants/p1/parts/m1/99", headers=headers).status_code == 404


def test_review_queue_lists_unconfirmed_review_and_ng_parts(
    client: TestClient, plant: Seeded
) -> None:
    seeded = plant[1]
    queue = client.get("/api/v1/reviews/queue", headers=as_user(seeded, "viewer")).json()
    assert {(r["plant"], r["machine"], r["shot_number"]) for r in queue} == {
        ("p1", "m1", 2),
        ("p1", "m1", 3),
        ("p2", "m9", 1),
    }
    answer = client.post(
        "/api/v1/plants/p1/parts/m1/3/review",
        json={"decision": "NG", "defect_type": "gas_porosity", "comment": "two pores"},
        headers=as_user(seeded, "operator"),
    )
    assert answer.status_code == 201, answer.text
    queue = client.get("/api/v1/reviews/queue", headers=as_user(seeded, "viewer")).json()
    assert ("p1", "m1", 3) not in {(r["plant"], r["machine"], r["shot_number"]) for r in queue}
    with seeded.engine.connect() as conn:
        review = conn.execute(select(t.reviews)).one()
        audit = conn.execute(select(t.audit_log).where(t.audit_log.c.action == "review")).one()
    assert (review.decision, review.defect_type, review.reviewer) == (
        "NG",
        "gas_porosity",
        "operator",
    )
    assert (audit.actor, audit.target) == ("operator", "p1/m1/3")
    again = client.post(
        "/api/v1/plants/p1/parts/m1/3/review",
        json={"decision": "OK"},
        headers=as_user(seeded, "operator"),
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"decision": "NG"}, "name the defect type"),
        ({"decision": "NG", "defect_type": "rust"}, "unknown defect type"),
        ({"decision": "REVIEW"}, "OK or NG"),
    ],
)
def test_a_review_needs_a_decision_and_a_known_defect(
    client: TestClient, plant: Seeded, body: dict[str, str], why: str
) -> None:
    answer = client.post(
        "/api/v1/plants/p1/parts/m1/2/review", json=body, headers=as_user(plant[1], "operator")
    )
    assert answer.status_code == 400
    assert why in answer.json()["detail"]


def test_acknowledging_an_alarm_records_who_and_why(client: TestClient, plant: Seeded) -> None:
    seeded = plant[1]
    url = f"/api/v1/alarms/{seeded.alarm_p1}/ack"
    answer = client.post(
        url,
        json={"cause": "melt", "comment": "melt furnace reset"},
        headers=as_user(seeded, "operator"),
    )
    assert answer.status_code == 200, answer.text
    alarm = next(
        a
        for a in client.get("/api/v1/alarms", headers=as_user(seeded, "viewer")).json()
        if a["id"] == seeded.alarm_p1
    )
    assert (alarm["acked_by"], alarm["ack_comment"]) == ("operator", "melt furnace reset")
    again = client.post(
        url, json={"cause": "melt", "comment": "again"}, headers=as_user(seeded, "operator")
    )
    assert again.status_code == 409


def test_promote_and_roll_back_keep_one_active_model(client: TestClient, plant: Seeded) -> None:
    seeded = plant[1]
    engineer = as_user(seeded, "engineer")

    def active() -> list[str]:
        models = client.get("/api/v1/models", headers=engineer).json()
        return [m["version"] for m in models if m["active"]]

    assert active() == ["v2"]
    assert (
        client.post(f"/api/v1/models/{seeded.models['v3']}/promote", headers=engineer).json()[
            "version"
        ]
        == "v3"
    )
    assert active() == ["v3"]
    back = client.post(
        "/api/v1/models/rollback", json={"die": "D1", "view": "front"}, headers=engineer
    )
    assert back.json()["version"] == "v2"
    back = client.post(
        "/api/v1/models/rollback", json={"die": "D1", "view": "front"}, headers=engineer
    )
    assert back.json()["version"] == "v1"
    assert active() == ["v1"]
    oldest = client.post(
        "/api/v1/models/rollback", json={"die": "D1", "view": "front"}, headers=engineer
    )
    assert oldest.status_code == 400
    with seeded.engine.connect() as conn:
        actions = (
            conn.execute(select(t.audit_log.c.action).where(t.audit_log.c.action.like("model.%")))
            .scalars()
            .all()
        )
    assert actions == ["model.promote", "model.rollback", "model.rollback"]


def test_admin_adds_a_user_who_then_uses_a_key(client: TestClient, plant: Seeded) -> None:
    admin = as_user(plant[1], "admin")
    answer = client.post(
        "/api/v1/users",
        json={"username": "qe", "password": "long enough pw", "role": "engineer", "plants": ["p2"]},
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    refused = client.post("/api/v1/users/qe/keys", json={"name": "spc script"}, headers=admin)
    assert refused.status_code == 403  # a key is made by its own user, nobody else
    first = new_api_key(plant[1].engine, "qe")  # what `castline user key qe` does
    made = client.post("/api/v1/me/keys", json={"name": "spc script"}, headers={"X-API-Key": first})
    assert made.status_code == 201 and made.json()["name"] == "spc script"
    key = made.json()["key"]
    me = client.get("/api/v1/me", headers={"X-API-Key": key}).json()
    assert me == {"username": "qe", "role": "engineer", "plants": ["p2"]}
    listed = client.get("/api/v1/me/keys", headers={"X-API-Key": key}).json()
    assert [k["name"] for k in listed][-1] == "spc script" and all("key" not in k for k in listed)
    with plant[1].engine.connect() as conn:
        stored = conn.execute(select(t.api_keys.c.key_hash)).scalars().all()
        log = conn.execute(select(t.audit_log.c.detail)).scalars().all()
    assert key not in stored and len(stored[-1]) == 64
    revoked = client.delete("/api/v1/users/qe/keys", headers=admin).json()
    assert revoked == {"username": "qe", "revoked": 2}
    assert client.get("/api/v1/me", headers={"X-API-Key": key}).status_code == 401
    assert all(key not in str(detail) and "long enough pw" not in str(detail) for detail in log)


def test_dead_letters_show_reason_and_payload(client: TestClient, plant: Seeded) -> None:
    letters = client.get("/api/v1/dead-letters", headers=as_user(plant[1], "engineer")).json()
    assert {(d["source"], d["reason"], d["payload"]) for d in letters} == {
        ("castline/v1/p1/m1/shot", "payload is not JSON", "{oops"),
        ("castline/v1/p2/m9/shot", "shot_number: negative", "{}"),
    }


def test_charts_are_png(client: TestClient, plant: Seeded) -> None:
    headers = as_user(plant[1], "viewer")
    for url in (
        "/api/v1/plants/p1/machines/m1/trend.png?parameter=melt_temp_c",
        "/api/v1/plants/p1/pareto.png",
        "/api/v1/dies.png",
    ):
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, url
        assert answer.content[:8] == b"\x89PNG\r\n\x1a\n", url
    trend = client.get(
        "/api/v1/plants/p1/machines/m1/trend?parameter=melt_temp_c", headers=headers
    ).json()
    assert [(r["shot_number"], r["value"], r["verdict"]) for r in trend] == [
        (1, 661.0, "OK"),
        (2, 662.0, "REVIEW"),
        (3, 663.0, "NG"),
    ]
    bad = client.get("/api/v1/plants/p1/machines/m1/trend?parameter=colour", headers=headers)
    assert bad.status_code == 422


def test_plants_and_machines_known_only_from_the_line_are_shown(
    client: TestClient, plant: Seeded
) -> None:
    """A line may record shots of a machine nobody registered: it still gets a tile."""
    store = Store(plant[1].engine)
    at = datetime.now(UTC)
    store.record_shots([Shot(PartKey("p3", "x1", 283921532), "D9", at, {"melt_temp_c": 700.0})])
    store.record_state("p3", "x2", MachineState.BREAKDOWN, at)
    admin = as_user(plant[1], "admin")
    assert [p["id"] for p in client.get("/api/v1/plants", headers=admin).json()] == [
        "p1",
        "p2",
        "p3",
    ]
    tiles = client.get("/api/v1/plants/p3/overview", headers=admin).json()
    assert [(t["machine"], t["name"], t["state"], t["shot_number"]) for t in tiles] == [
        ("x1", "x1", "offline", 283921532),
        ("x2", "x2", "breakdown", None),
    ]


def test_health_answers_503_with_what_is_wrong(plant: Seeded) -> None:
    """The line stopped or its broker died: health says so, not "ok"."""
    from castline.web.app import LineLink, create_app

    problems = {"broker": "embedded NATS down after 5 restarts", "line": None}
    checks = {name: (lambda p=problem: p) for name, problem in problems.items()}
    link = LineLink("nats://127.0.0.1:9", checks=checks)
    app = create_app(plant[1].settings, plant[1].engine, line=link)
    app.state.backlog = None  # no watch started here: only the composition root's checks
    health = TestClient(app).get("/api/v1/health")
    assert health.status_code == 503
    assert health.json() == {
        "status": "degraded",
        "problems": {"broker": "embedded NATS down after 5 restarts"},
    }


def test_every_page_says_what_is_wrong_with_the_line(plant: Seeded) -> None:
    from castline.web.app import LineLink, create_app

    link = LineLink("nats://127.0.0.1:9", checks={"line": lambda: "the line runtime stopped"})
    app = create_app(plant[1].settings, plant[1].engine, line=link)
    app.state.backlog = None
    page = TestClient(app).get("/", headers=as_user(plant[1], "viewer"))
    assert page.status_code == 200
    assert "the line runtime stopped" in page.text and 'role="alert"' in page.text


def test_passing_a_part_castline_judged_ng_needs_a_reason_and_a_second_yes(
    client: TestClient, plant: Seeded
) -> None:
    """One click must not turn a 0.997-score NG into OK."""
    url, operator = "/api/v1/plants/p1/parts/m1/3/review", as_user(plant[1], "operator")
    bare = client.post(url, json={"decision": "OK"}, headers=operator)
    assert bare.status_code == 400 and "say why it is OK" in bare.json()["detail"]
    unconfirmed = client.post(url, json={"decision": "OK", "comment": "sand"}, headers=operator)
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.json()["detail"]
    body = {"decision": "OK", "comment": "sand on the surface, not a pore", "confirmed": True}
    assert client.post(url, json=body, headers=operator).status_code == 201
