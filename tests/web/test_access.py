"""Access control: every route declares its minimum role; roles, plants, sessions, CSRF."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Mount

from castline.store import database
from castline.store import tables as t
from castline.web.app import create_app
from castline.web.auth import INITIAL_PASSWORD_FILE, ensure_admin

from .conftest import PASSWORD, ROLES, Plant, as_user, settings_in

Seeded = tuple[FastAPI, Plant]
PUBLIC = {("GET", "/api/v1/health"), ("GET", "/login"), ("POST", "/login")}


def declared_roles(route: APIRoute) -> list[Any]:
    found, todo = [], list(route.dependant.dependencies)
    while todo:
        dependant = todo.pop()
        if hasattr(dependant.call, "minimum_role"):
            found.append(dependant.call.minimum_role)
        todo.extend(dependant.dependencies)
    return found


def all_routes(routes: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Routes with their full paths; newer FastAPI keeps included routers as one entry."""
    out = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            out += all_routes(included.routes, prefix + route.include_context.prefix)
        else:
            out.append((prefix + route.path, route))
    return out


def test_every_route_declares_who_may_call_it(plant: Seeded) -> None:
    undeclared, public, seen = [], set(), 0
    for path, route in all_routes(plant[0].routes):
        if isinstance(route, Mount):
            assert path == "/static", f"unexpected mount {path}"
            continue
        assert isinstance(route, APIRoute), f"{path} is not an APIRoute with a guard"
        seen += 1
        roles = declared_roles(route)
        if not roles:
            undeclared.append(path)
        elif None in roles:
            public |= {(method, path) for method in route.methods}
    assert undeclared == []
    assert public == PUBLIC
    assert seen > 40  # the walk reached the routers' routes


# (method, url, json body, minimum role); url may name seeded ids in braces
MATRIX: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/v1/plants", None, "viewer"),
    ("GET", "/api/v1/reviews/queue", None, "viewer"),
    ("GET", "/api/v1/openapi.json", None, "viewer"),
    ("GET", "/docs", None, "viewer"),
    ("POST", "/api/v1/plants/p1/parts/m1/2/review", {"decision": "OK"}, "operator"),
    ("POST", "/api/v1/alarms/{alarm_p1}/ack", {"cause": "melt", "comment": "ok"}, "operator"),
    ("GET", "/api/v1/dead-letters", None, "engineer"),
    ("POST", "/api/v1/models/{v3}/promote", None, "engineer"),
    ("POST", "/api/v1/models/rollback", {"die": "D1", "view": "front"}, "engineer"),
    ("GET", "/api/v1/users", None, "admin"),
    ("GET", "/api/v1/audit", None, "admin"),
    (
        "POST",
        "/api/v1/users",
        {"username": "new", "password": "0123456789", "role": "viewer"},
        "admin",
    ),
    ("GET", "/api/v1/me/keys", None, "viewer"),
    ("POST", "/api/v1/me/keys", {}, "viewer"),
    ("DELETE", "/api/v1/users/op1/keys", None, "admin"),
]


@pytest.mark.parametrize(("method", "url", "body", "minimum"), MATRIX)
def test_role_matrix(
    client: TestClient, plant: Seeded, method: str, url: str, body: Any, minimum: str
) -> None:
    seeded = plant[1]
    url = url.format(alarm_p1=seeded.alarm_p1, v3=seeded.models["v3"])
    for role in ROLES:
        answer = client.request(method, url, json=body, headers=as_user(seeded, role))
        if ROLES.index(role) < ROLES.index(minimum):
            assert answer.status_code == 403, f"{role} {method} {url}: {answer.status_code}"
        else:
            assert answer.status_code < 300, f"{role} {method} {url}: {answer.text}"
            return  # the first allowed role changed state; higher roles are allowed a fortiori


def test_a_plant_scoped_user_sees_only_its_plant(client: TestClient, plant: Seeded) -> None:
    seeded = plant[1]
    op1 = as_user(seeded, "op1")
    assert [p["id"] for p in client.get("/api/v1/plants", headers=op1).json()] == ["p1"]
    assert {r["plant"] for r in client.get("/api/v1/reviews/queue", headers=op1).json()} == {"p1"}
    assert {a["plant"] for a in client.get("/api/v1/alarms", headers=op1).json()} == {"p1"}
    assert client.get("/api/v1/plants/p2/overview", headers=op1).status_code == 403
    assert client.get("/api/v1/plants/p2/parts/m9/1", headers=op1).status_code == 403
    assert client.get("/api/v1/live?plant=p2", headers=op1).status_code == 403
    review = client.post(
        "/api/v1/plants/p2/parts/m9/1/review", json={"decision": "OK"}, headers=op1
    )
    assert review.status_code == 403
    ack = client.post(
        f"/api/v1/alarms/{seeded.alarm_p2}/ack", json={"cause": "melt", "comment": "x"}, headers=op1
    )
    assert ack.status_code == 404
    assert client.get(f"/api/v1/blobs/{seeded.image_p2}", headers=op1).status_code == 404
    assert client.get(f"/api/v1/blobs/{seeded.image_p1}", headers=op1).status_code == 200
    page = client.get("/plants/p2", headers=op1)
    assert page.status_code == 403 and "no access to plant" in page.text


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page carries no CSRF token"
    return match.group(1)


def test_browser_session_login_csrf_and_logout(client: TestClient, plant: Seeded) -> None:
    seeded = plant[1]
    page = client.get("/alarms", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/alarms"
    token = csrf_of(client.get("/login").text)
    wrong = client.post(
        "/login", data={"username": "operator", "password": "guess", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    login = client.post(
        "/login",
        data={"username": "operator", "password": PASSWORD, "csrf_token": token, "next": "/alarms"},
        follow_redirects=False,
    )
    assert login.status_code == 303 and login.headers["location"] == "/alarms"
    alarms = client.get("/alarms")
    assert alarms.status_code == 200 and "Acknowledge" in alarms.text
    token = csrf_of(alarms.text)  # a new session after login gets a new token
    ack = f"/alarms/{seeded.alarm_p1}/ack"
    assert client.post(ack, data={"comment": "no token"}).status_code == 403
    forged = client.post(ack, data={"comment": "forged", "csrf_token": "guess"})
    assert forged.status_code == 403
    api_without_token = client.post(f"/api/v1/alarms/{seeded.alarm_p1}/ack", json={"comment": "x"})
    assert api_without_token.status_code == 403  # a session cookie alone is not enough
    done = client.post(ack, data={"cause": "melt", "comment": "reset", "csrf_token": token})
    assert done.status_code == 200 and f"Alarm {seeded.alarm_p1} acknowledged" in done.text
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/api/v1/me").status_code == 401
    with seeded.engine.connect() as conn:
        actions = conn.execute(select(t.audit_log.c.action, t.audit_log.c.actor)).all()
    assert [a for a in actions if a.actor == "operator"] == [
        ("login.failed", "operator"),
        ("login", "operator"),
        ("alarm.ack", "operator"),
        ("logout", "operator"),
    ]


def test_login_never_redirects_off_site(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token, "next": "//evil"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_first_start_creates_one_admin_with_a_private_password(tmp_path: Path) -> None:
    engine = database.open_store(f"sqlite:///{tmp_path / 'c.db'}")
    password = ensure_admin(engine, tmp_path)
    assert password is not None
    secret = tmp_path / INITIAL_PASSWORD_FILE
    assert secret.read_text().strip() == password
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert ensure_admin(engine, tmp_path) is None
    with engine.connect() as conn:
        (stored,) = conn.execute(select(t.users.c.password_hash)).one()
    assert stored.startswith("$argon2") and password not in stored
    app = create_app(settings_in(tmp_path), engine)
    with TestClient(app) as client:
        token = csrf_of(client.get("/login").text)
        client.post("/login", data={"username": "admin", "password": password, "csrf_token": token})
        assert client.get("/api/v1/me").json()["role"] == "admin"
    engine.dispose()
