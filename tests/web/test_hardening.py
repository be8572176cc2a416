"""Issue #12, cases 3 to 6: security headers, /metrics behind a token, no parameter
gives a 500, private files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, make_asgi_app

from castline.store import database
from castline.web.app import create_app
from castline.web.auth import INITIAL_PASSWORD_FILE, ensure_admin

from .conftest import Plant, as_user
from .test_access import all_routes

Seeded = tuple[FastAPI, Plant]
TOKEN = "metrics-token-for-the-test"


# --- case 3: headers on every response ---------------------------------------------


def test_every_kind_of_response_carries_the_security_headers(
    client: TestClient, plant: Seeded
) -> None:
    viewer = as_user(plant[1], "viewer")
    answers = {
        "page": client.get("/alarms", headers=viewer),
        "login page": client.get("/login"),
        "api": client.get("/api/v1/plants", headers=viewer),
        "api error": client.get("/api/v1/plants"),
        "png": client.get("/api/v1/dies.png", headers=viewer),
        "static": client.get("/static/page.js"),
        "not found": client.get("/nowhere", headers=viewer),
        "redirect": client.get("/alarms", follow_redirects=False),
    }
    for what, answer in answers.items():
        csp = answer.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "script-src 'self'" in csp, what
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, what
        assert answer.headers.get("x-frame-options") == "DENY", what
        assert answer.headers.get("x-content-type-options") == "nosniff", what
        assert answer.headers.get("referrer-policy") == "same-origin", what


def test_pages_hold_no_inline_code_the_policy_would_block(
    client: TestClient, plant: Seeded
) -> None:
    headers = as_user(plant[1], "admin")
    for url in ("/plants/p1", "/plants/p1/machines/m1", "/plants/p1/parts/m1/3", "/users"):
        html = client.get(url, headers=headers).text
        for attribute in ("onclick=", "onchange=", "onsubmit=", "onload=", "javascript:"):
            assert attribute not in html, (url, attribute)
        for script in html.split("<script")[1:]:
            head = script.split(">", 1)[0]
            assert "src=" in head or 'type="application/json"' in head, (url, head)


# --- case 4: /metrics ----------------------------------------------------------------


def metrics_app(plant: Seeded, token: str | None) -> FastAPI:
    registry = CollectorRegistry()
    Counter("castline_test_parts", "parts counted by the test", registry=registry).inc(3)
    settings = plant[1].settings.model_copy(update={"metrics_token": token})
    return create_app(settings, plant[1].engine, metrics_registry=registry)


def test_metrics_need_the_token(plant: Seeded) -> None:
    with TestClient(metrics_app(plant, TOKEN)) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
        admin = as_user(plant[1], "admin")
        assert client.get("/metrics", headers=admin).status_code == 401  # the token only
        right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200 and "castline_test_parts_total 3.0" in right.text
        assert right.headers["x-content-type-options"] == "nosniff"


def test_without_a_token_metrics_are_for_admins(plant: Seeded) -> None:
    with TestClient(metrics_app(plant, None)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=as_user(plant[1], "engineer")).status_code == 403
        answer = client.get("/metrics", headers=as_user(plant[1], "admin"))
        assert answer.status_code == 200 and "castline_test_parts_total" in answer.text


def test_metrics_mounted_by_the_caller_are_guarded_too(plant: Seeded) -> None:
    """What `castline up` did before create_app took the registry: mount it itself."""
    settings = plant[1].settings.model_copy(update={"metrics_token": TOKEN})
    app = create_app(settings, plant[1].engine)
    app.mount("/metrics", make_asgi_app(CollectorRegistry()))
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics/").status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/metrics", headers=bearer, follow_redirects=True).status_code == 200


# --- case 5: no parameter gives a 500 ----------------------------------------------------

HUGE = "1" + "0" * 23
REPORTED = [  # what the testers saw answer 500
    "/api/v1/plants/p1/kpis?since=2026-01-05T00:00:00Z",
    f"/api/v1/reviews/queue?limit={HUGE}",
    f"/api/v1/plants/p1/parts/m1/{HUGE}",
    "/api/v1/plants/p1/kpi-trend.png?days=-1",
]
HOSTILE = [
    HUGE,
    "-" + HUGE,
    "-1",
    "0",
    "1e400",
    "2026-13-45T25:61:00Z",
    "2026-01-05T00:00:00",  # no zone
    "0001-01-01T00:00:00Z",
    "x" * 5000,
    "\x00",
    "p1\x00",
    "'; DROP TABLE shots; --",
]


@pytest.fixture
def admin_client(seeded_on_both: Seeded) -> Iterator[tuple[TestClient, Plant]]:
    with TestClient(seeded_on_both[0], raise_server_exceptions=False) as client:
        yield client, seeded_on_both[1]


def test_the_reported_500s_are_answered(admin_client: tuple[TestClient, Plant]) -> None:
    client, seeded = admin_client
    headers = as_user(seeded, "admin")
    kpis = client.get(REPORTED[0], headers=headers)
    assert kpis.status_code == 200 and {r["unit"] for r in kpis.json()} == {"m1", "m2"}
    for url in REPORTED[1:]:
        answer = client.get(url, headers=headers)
        assert answer.status_code == 422, (url, answer.text)


def valid_values(seeded: Plant) -> dict[str, str]:
    return {
        "plant": "p1", "machine": "m1", "shot_number": "1", "digest": seeded.image_p1,
        "alarm_id": str(seeded.alarm_p1), "model_id": str(seeded.models["v3"]),
        "username": "viewer", "parameter": "melt_temp_c", "die": "D1", "view": "front",
        "key": "p1/m1/1", "by": "shift", "train_until": "2026-01-01T00:00:00+00:00",
    }  # fmt: skip


def get_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """Every GET route but the event stream (a valid request never ends)."""
    return [
        (path, route)
        for path, route in all_routes(app.routes)
        if isinstance(route, APIRoute) and "GET" in route.methods and path != "/api/v1/live"
    ]


def requests_of(path: str, route: APIRoute, valid: dict[str, str]) -> Iterator[str]:
    """The route with each of its parameters in turn set to each hostile value."""
    path_names = [p.name for p in route.dependant.path_params]
    query = {p.name: p for p in route.dependant.query_params}
    base_query = {n: valid[n] for n, p in query.items() if p.field_info.is_required()}

    def url(path_values: dict[str, str], query_values: dict[str, str]) -> str:
        built = path.format(**{k: quote(v, safe="") for k, v in path_values.items()})
        pairs = "&".join(f"{k}={quote(v, safe='')}" for k, v in query_values.items())
        return built + (f"?{pairs}" if pairs else "")

    base_path = {n: valid[n] for n in path_names}
    for value in HOSTILE:
        for name in path_names:
            yield url(base_path | {name: value}, base_query)
        for name in query:
            yield url(base_path, base_query | {name: value})


def test_no_get_route_answers_hostile_values_with_a_5xx(
    admin_client: tuple[TestClient, Plant],
) -> None:
    client, seeded = admin_client
    headers = as_user(seeded, "admin")
    sent, statuses = 0, set()
    for path, route in get_routes(client.app):  # type: ignore[arg-type]
        for url in requests_of(path, route, valid_values(seeded)):
            answer = client.get(url, headers=headers, follow_redirects=False)
            assert answer.status_code < 500, (url[:200], answer.status_code, answer.text[:300])
            sent += 1
            statuses.add(answer.status_code)
    assert sent > 500 and 422 in statuses and 200 in statuses
    assert client.get("/api/v1/live?plant=%00", headers=headers).status_code == 422


# --- case 6: private files ---------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files readable by everyone (0644)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_database_is_created_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "home" / "castline.db"
    engine = database.open_store(f"sqlite:///{path}")
    engine.dispose()
    assert mode(path) == 0o600


def test_the_initial_admin_password_is_private_even_over_an_old_file(
    tmp_path: Path, open_umask: None
) -> None:
    stale = tmp_path / INITIAL_PASSWORD_FILE
    stale.write_text("left from an earlier install\n")
    stale.chmod(0o644)
    engine = database.open_store(f"sqlite:///{tmp_path / 'castline.db'}")
    password = ensure_admin(engine, tmp_path)
    engine.dispose()
    assert password is not None and stale.read_text().strip() == password
    assert mode(stale) == 0o600


def test_the_settings_take_a_metrics_token(tmp_path: Path) -> None:
    from castline.settings import Settings

    assert Settings(home=tmp_path).metrics_token is None
    with pytest.raises(ValueError, match="metrics_token"):
        Settings(home=tmp_path, metrics_token="short")
