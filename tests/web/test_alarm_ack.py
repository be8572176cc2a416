"""A live alarm on the dashboard: listed for its plant, closed by a person who names the
cause (audited), refused without one, invisible and untouchable from another plant."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from castline.domain.alarms import DRIFT, Alarm
from castline.store import alarms
from castline.store import tables as t
from castline.web.auth import Role, add_user, new_api_key

from .conftest import PASSWORD, Plant, as_user

AT = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def live_alarm(seeded: Plant) -> int:
    text = (
        "melt_temp_c drifting down, smoothed 655.3, on die D1 (regime 1): "
        "centre 680.1 °C, limits 670.2..690.3"
    )
    drift = Alarm("p1", "m1", "D1", "melt_temp_c", DRIFT, text, AT, count=7)
    (raised,) = alarms.raise_many(seeded.engine, [drift])
    return raised.id


def test_an_alarm_is_closed_only_with_a_named_cause(
    client: TestClient, plant: tuple[object, Plant]
) -> None:
    seeded = plant[1]
    alarm_id = live_alarm(seeded)
    viewer, operator = as_user(seeded, "viewer"), as_user(seeded, "op1")
    listed = {a["id"]: a for a in client.get("/api/v1/alarms", headers=viewer).json()}
    assert listed[alarm_id]["rule"] == DRIFT and listed[alarm_id]["count"] == 7
    page = client.get("/alarms?lang=en", headers=viewer)
    assert "melt_temp_c drifting down" in page.text
    zh = client.get("/alarms?lang=zh", headers=viewer).text
    assert "中心线 680.1 °C" in zh  # the live message's figures, in the reader's language
    client.get("/alarms?lang=en", headers=viewer)

    url = f"/api/v1/alarms/{alarm_id}/ack"
    assert client.post(url, json={"comment": "furnace"}, headers=operator).status_code == 422
    unnamed = client.post(url, json={"cause": "weather", "comment": "x"}, headers=operator)
    assert unnamed.status_code == 400 and "name the cause" in unnamed.json()["detail"]
    empty = client.post(url, json={"cause": "melt", "comment": " "}, headers=operator)
    assert empty.status_code in (400, 422)
    assert (
        client.post(url, json={"cause": "melt", "comment": "x"}, headers=viewer).status_code == 403
    )

    named = {"cause": "melt", "comment": "burner 2 out, relit"}
    assert client.post(url, json=named, headers=operator).status_code == 200
    with seeded.engine.connect() as conn:
        row = conn.execute(select(t.alarms).where(t.alarms.c.id == alarm_id)).one()
        audit = conn.execute(select(t.audit_log).where(t.audit_log.c.action == "alarm.ack")).all()
    assert (row.cause_category, row.acked_by, row.ack_comment) == ("melt", "op1", named["comment"])
    assert row.cleared_at is not None  # closed: the next report opens a new alarm
    (entry,) = [a for a in audit if a.target == f"alarm/{alarm_id}"]
    detail = entry.detail if isinstance(entry.detail, dict) else json.loads(entry.detail)
    assert detail == {"cause": "melt", "comment": named["comment"]}
    assert client.post(url, json=named, headers=operator).status_code == 409
    shown = client.get("/alarms", headers=viewer).text
    assert "melt (furnace, ladle, alloy temperature)" in shown


def test_another_plant_neither_sees_nor_closes_it(
    client: TestClient, plant: tuple[object, Plant]
) -> None:
    seeded = plant[1]
    alarm_id = live_alarm(seeded)
    add_user(seeded.engine, "op2", PASSWORD, Role.OPERATOR, ["p2"])
    other = {"X-API-Key": new_api_key(seeded.engine, "op2")}
    assert alarm_id not in {a["id"] for a in client.get("/api/v1/alarms", headers=other).json()}
    named = {"cause": "melt", "comment": "not mine"}
    ack = client.post(f"/api/v1/alarms/{alarm_id}/ack", json=named, headers=other)
    assert ack.status_code == 404
    assert "melt_temp_c drifting down" not in client.get("/alarms", headers=other).text
    with seeded.engine.connect() as conn:
        row = conn.execute(select(t.alarms).where(t.alarms.c.id == alarm_id)).one()
    assert row.cleared_at is None and row.acked_by is None
