"""Issue #12, case 1: an admin of some plants stays within them (SQLite and PostgreSQL).

Before the fix an admin of plant p1 could take the global admin's key, make an admin of
every plant, add and delete keys of users of p2, and read every user and audit row."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from castline.store import tables as t
from castline.web.auth import Role, add_user, new_api_key

from .conftest import PASSWORD, Plant

Seeded = tuple[FastAPI, Plant]


def scoped_admin(seeded: Plant) -> dict[str, str]:
    """An admin of plant p1, and a p2 operator beside the seeded p1 operator op1."""
    add_user(seeded.engine, "admin_p1", PASSWORD, Role.ADMIN, ["p1"])
    add_user(seeded.engine, "op2", PASSWORD, Role.OPERATOR, ["p2"])
    seeded.keys["op2"] = new_api_key(seeded.engine, "op2")
    return {"X-API-Key": new_api_key(seeded.engine, "admin_p1")}


def live_keys(seeded: Plant, username: str) -> int:
    k, u = t.api_keys, t.users
    query = (
        select(func.count())
        .select_from(k.join(u, u.c.id == k.c.user_id))
        .where(u.c.username == username, k.c.revoked_at.is_(None))
    )
    with seeded.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_a_scoped_admin_gets_no_key_of_another_user(seeded_on_both: Seeded) -> None:
    app, seeded = seeded_on_both
    headers = scoped_admin(seeded)
    with TestClient(app) as client:
        for user in ("admin", "op1", "op2"):
            before = live_keys(seeded, user)
            answer = client.post(f"/api/v1/users/{user}/keys", json={}, headers=headers)
            assert answer.status_code == 403 and "key" not in answer.json(), user
            assert live_keys(seeded, user) == before, user
        own = client.post("/api/v1/users/admin_p1/keys", json={"name": "mine"}, headers=headers)
        assert own.status_code == 201 and own.json()["key"].startswith("cl_")
        global_admin = {"X-API-Key": seeded.keys["admin"]}
        assert (
            client.post("/api/v1/users/op1/keys", json={}, headers=global_admin).status_code == 403
        )


def test_a_scoped_admin_creates_users_of_its_plants_only(seeded_on_both: Seeded) -> None:
    app, seeded = seeded_on_both
    headers = scoped_admin(seeded)
    user = {"password": "long enough pw", "role": "admin"}
    with TestClient(app) as client:
        for name, plants in (("every", []), ("south", ["p2"]), ("both", ["p1", "p2"])):
            answer = client.post(
                "/api/v1/users", json=user | {"username": name, "plants": plants}, headers=headers
            )
            assert answer.status_code == 403, (name, answer.text)
        made = client.post(
            "/api/v1/users", json=user | {"username": "north", "plants": ["p1"]}, headers=headers
        )
        assert made.status_code == 201, made.text
    with seeded.engine.connect() as conn:
        names = set(conn.execute(select(t.users.c.username)).scalars())
    assert "north" in names and not names & {"every", "south", "both"}


def test_a_scoped_admin_revokes_keys_only_within_its_plants(seeded_on_both: Seeded) -> None:
    app, seeded = seeded_on_both
    headers = scoped_admin(seeded)
    with TestClient(app) as client:
        for user in ("op2", "admin", "viewer"):  # p2's user; users of every plant
            answer = client.delete(f"/api/v1/users/{user}/keys", headers=headers)
            assert answer.status_code == 404, (user, answer.text)
            assert live_keys(seeded, user) == 1, user
        answer = client.delete("/api/v1/users/op1/keys", headers=headers)
        assert answer.json() == {"username": "op1", "revoked": 1}
        assert live_keys(seeded, "op1") == 0
        refused = client.delete(
            "/api/v1/users/viewer/keys", headers={"X-API-Key": seeded.keys["operator"]}
        )
        assert refused.status_code == 403  # not an admin: only its own keys


def test_a_scoped_admin_sees_only_users_and_audit_rows_of_its_plants(
    seeded_on_both: Seeded,
) -> None:
    app, seeded = seeded_on_both
    headers = scoped_admin(seeded)
    operator = {"X-API-Key": seeded.keys["operator"]}
    with TestClient(app) as client:
        for plant, machine in (("p1", "m1"), ("p2", "m9")):
            url = f"/api/v1/plants/{plant}/parts/{machine}/{2 if plant == 'p1' else 1}/review"
            assert client.post(url, json={"decision": "OK"}, headers=operator).status_code == 201
        users = {u["username"] for u in client.get("/api/v1/users", headers=headers).json()}
        audit = client.get("/api/v1/audit", headers=headers).json()
        page = client.get("/users", headers=headers).text
        everything = client.get("/api/v1/audit", headers={"X-API-Key": seeded.keys["admin"]}).json()
    assert users == {"op1", "admin_p1"}
    assert [(a["action"], a["target"]) for a in audit] == [("review", "p1/m1/2")]
    assert "p2/m9/1" not in page and "<tr><td>op2</td>" not in page
    assert "<tr><td>admin</td>" not in page and "<tr><td>op1</td>" in page
    assert {"p1/m1/2", "p2/m9/1"} <= {a["target"] for a in everything}  # the global admin
