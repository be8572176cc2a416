"""The review loop, alarms, models and scoping on both databases castline supports."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from castline.store import database
from castline.store import tables as t
from castline.web import queries
from castline.web.app import create_app

from .conftest import as_user, seed, settings_in


def test_dashboard_round_trip(engine: Engine, tmp_path: Path) -> None:
    database.upgrade(engine)
    settings = settings_in(tmp_path)
    app = create_app(settings, engine)
    plant = seed(engine, settings)
    with TestClient(app) as client:
        operator, engineer = as_user(plant, "operator"), as_user(plant, "engineer")
        tiles = client.get("/api/v1/plants/p1/overview", headers=operator).json()
        assert {t["machine"]: t["shots_today"] for t in tiles} == {"m1": 3, "m2": 0}
        queue = client.get("/api/v1/reviews/queue", headers=as_user(plant, "op1")).json()
        assert [(r["machine"], r["shot_number"]) for r in queue] == [("m1", 3), ("m1", 2)]
        assert queue[0]["image"] is not None
        review = {"decision": "NG", "defect_type": "misrun"}
        url = "/api/v1/plants/p1/parts/m1/3/review"
        assert client.post(url, json=review, headers=operator).status_code == 201
        ack = f"/api/v1/alarms/{plant.alarm_p1}/ack"
        assert (
            client.post(
                ack, json={"cause": "die_temperature", "comment": "die heated"}, headers=operator
            ).status_code
            == 200
        )
        promote = f"/api/v1/models/{plant.models['v3']}/promote"
        assert client.post(promote, headers=engineer).status_code == 200
        pareto = client.get("/api/v1/plants/p1/pareto", headers=operator).json()
        assert pareto == [{"defect_type": "misrun", "parts": 1}]
    with engine.connect() as conn:
        active = conn.execute(select(t.models.c.version).where(t.models.c.active)).scalars().all()
        acked = conn.execute(select(t.alarms.c.acked_by).where(t.alarms.c.id == plant.alarm_p1))
        assert (active, acked.scalar_one()) == (["v3"], "operator")
    assert [d["source"] for d in queries.dead_letters(engine, ["p2"])] == ["castline/v1/p2/m9/shot"]
    assert queries.dead_letters(engine, []) == []
