"""Every read route of the API answers a viewer with the seeded plant's data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from castline.web.analytics import start_of_day

from .conftest import PLANT_ZONE, Plant, as_user
from .test_access import all_routes

Check = Callable[[Any], bool]
M1 = "/api/v1/plants/p1/machines/m1"

READS: dict[str, Check] = {
    "/api/v1/me": lambda j: j["role"] == "viewer",
    "/api/v1/me/keys": lambda j: len(j) == 1 and j[0]["revoked_at"] is None and "key" not in j[0],
    "/api/v1/plants": lambda j: [p["id"] for p in j] == ["p1", "p2"],
    "/api/v1/plants/p1/overview": lambda j: len(j) == 2,
    "/api/v1/plants/p1/line": lambda j: j["level"] == "unknown" and "--nats" in j["text"],
    "/api/v1/plants/p1/shots?machine=m1": lambda j: [s["shot_number"] for s in j] == [3, 2, 1],
    "/api/v1/plants/p1/shots?verdict=NG": lambda j: [s["shot_number"] for s in j] == [3],
    "/api/v1/plants/p1/parts/m1/1": lambda j: j["verdict"]["verdict"] == "OK",
    f"{M1}/trend?parameter=melt_temp_c": lambda j: len(j) == 3,
    f"{M1}/control-chart?parameter=melt_temp_c": lambda j: j["lcl"] < 662.0 < j["ucl"],
    "/api/v1/plants/p1/root-cause": lambda j: (
        (j["shots"], j["ng"]) == (2, 1)  # REVIEW: open
        and j["unit_note"] is None
    ),
    "/api/v1/plants/p1/kpis": lambda j: {r["unit"]: r["pq"] for r in j} == {"m1": 3, "m2": 0},
    "/api/v1/plants/p1/benefit": lambda j: j["declared"] is False and j["rows"] == [],
    "/api/v1/plants/p1/stops": lambda j: all(s["stop_class"] != "running" for s in j),
    "/api/v1/plants/p1/maintenance": lambda j: [d["die"] for d in j["dies"]] == ["D1"],
    "/api/v1/plants/p1/pareto": lambda j: j == [],
    "/api/v1/dies": lambda j: [d["code"] for d in j] == ["D1"],
    "/api/v1/defect-types": lambda j: "cold_shut" in {d["code"] for d in j},
    "/api/v1/reviews": lambda j: j == [],
    "/api/v1/reviews/queue": lambda j: len(j) == 3,
    "/api/v1/alarms?open_only=true": lambda j: len(j) == 2,
    "/api/v1/models": lambda j: sorted(m["version"] for m in j) == ["v1", "v2", "v3"],
}
PNGS = [
    f"{M1}/trend.png?parameter=melt_temp_c",
    f"{M1}/control-chart.png?parameter=melt_temp_c",
    "/api/v1/plants/p1/pareto.png",
    "/api/v1/plants/p1/kpi-trend.png",
    "/api/v1/dies.png",
]
ELSEWHERE = {  # read routes tested in other files
    "/api/v1/health",
    "/api/v1/live",
    "/api/v1/blobs/{digest}",
    "/api/v1/dead-letters",
    "/api/v1/users",
    "/api/v1/audit",
    "/api/v1/openapi.json",
    "/api/v1/plants/{plant}/pareto/{by}.png",  # test_shift_views.py
    "/api/v1/plants/{plant}/labour",  # operators only: test_labour.py
    "/api/v1/plants/{plant}/downstream",  # test_downstream_api.py
    "/api/v1/plants/{plant}/parts/{machine}/{shot_number}/curve.png",  # test_curve_views.py
    "/api/v1/plants/{plant}/machines/{machine}/curve-features.png",  # test_curve_views.py
    "/api/v1/plants/{plant}/scrap-risk",  # test_scrap_risk_api.py
}


@pytest.mark.parametrize("url", list(READS))
def test_read(client: TestClient, plant: tuple[FastAPI, Plant], url: str) -> None:
    answer = client.get(url, headers=as_user(plant[1], "viewer"))
    assert answer.status_code == 200, answer.text
    assert READS[url](answer.json()), answer.json()


@pytest.mark.parametrize("url", PNGS)
def test_chart(client: TestClient, plant: tuple[FastAPI, Plant], url: str) -> None:
    answer = client.get(url, headers=as_user(plant[1], "viewer"))
    assert answer.status_code == 200, answer.text
    assert answer.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_read_route_of_the_api_is_tested(plant: tuple[FastAPI, Plant]) -> None:
    tested = {url.split("?")[0] for url in [*READS, *PNGS]}
    for path, route in all_routes(plant[0].routes):
        if not path.startswith("/api/") or "GET" not in getattr(route, "methods", ()):
            continue
        concrete = (
            path.replace("{plant}", "p1").replace("{machine}", "m1").replace("{shot_number}", "1")
        )
        assert concrete in tested or path in ELSEWHERE, f"GET {path} has no test"


def test_kpis_default_to_the_plants_day(client: TestClient, plant: tuple[FastAPI, Plant]) -> None:
    """Today is the plant's: from midnight in its zone, not UTC's (a run that crossed UTC's
    midnight lost the seeded shots)."""
    answer = client.get("/api/v1/plants/p1/kpis", headers=as_user(plant[1], "viewer"))
    midnight = start_of_day(plant[1].settings)
    assert midnight.astimezone(ZoneInfo(PLANT_ZONE)).time() == time(0, 0)
    starts = {datetime.fromisoformat(row["period_start"]) for row in answer.json()}
    assert starts == {midnight}
