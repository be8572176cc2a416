"""Issue #12, case 2: logging in never stalls the line, is throttled, and logging out ends
the session for every copy of its cookie (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from castline.store import tables as t
from castline.web import auth

from .conftest import PASSWORD, Plant

Seeded = tuple[FastAPI, Plant]


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text)
    assert token, "the login page carries no CSRF token"
    form = {"username": name, "password": password, "csrf_token": token.group(1)}
    return client.post("/login", data=form, follow_redirects=False)


def test_a_cookie_stops_working_at_logout(seeded_on_both: Seeded) -> None:
    app, _ = seeded_on_both
    with TestClient(app) as browser, TestClient(app) as thief:
        assert log_in(browser, "viewer").status_code == 303
        cookie = browser.cookies["castline_session"]
        thief.cookies.set("castline_session", cookie)
        assert thief.get("/api/v1/me").json()["username"] == "viewer"  # a copied cookie
        page = browser.get("/alarms").text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token
        browser.post("/logout", data={"csrf_token": token.group(1)})
        assert thief.get("/api/v1/me").status_code == 401
        assert thief.get("/alarms", follow_redirects=False).status_code == 303


def failures(seeded: Plant, action: str) -> list[Any]:
    a = t.audit_log
    with seeded.engine.connect() as conn:
        return list(conn.execute(select(a.c.target, a.c.detail).where(a.c.action == action)))


def test_five_failures_lock_a_name_even_for_the_right_password(seeded_on_both: Seeded) -> None:
    app, seeded = seeded_on_both
    with TestClient(app) as client:
        for _ in range(auth.FREE_FAILURES):
            assert log_in(client, "operator", "guess").status_code == 401
        locked = log_in(client, "operator")
        assert locked.status_code == 429 and "try again in 30 s" in locked.text
        assert client.get("/api/v1/me").status_code == 401
    assert len(failures(seeded, "login.failed")) == auth.FREE_FAILURES
    assert [row.target for row in failures(seeded, "login.locked")] == ["operator"]
    assert all("guess" not in str(row.detail) for row in failures(seeded, "login.failed"))


def test_failures_from_one_address_lock_it_for_every_name(seeded_on_both: Seeded) -> None:
    app, _ = seeded_on_both
    with TestClient(app) as client:
        for name in ("a", "b", "c", "d", "e"):  # names that need not exist
            assert log_in(client, name, "guess").status_code == 401
        assert log_in(client, "engineer").status_code == 429


def test_the_lock_grows_with_each_failure_after_it(seeded_on_both: Seeded) -> None:
    app, seeded = seeded_on_both
    f = t.login_failures
    locks = []
    with TestClient(app) as client:
        for _ in range(auth.FREE_FAILURES + 2):
            log_in(client, "viewer", "guess")
            with seeded.engine.begin() as conn:
                row = conn.execute(select(f).where(f.c.subject == "user:viewer")).one()
                if row.locked_until is not None:
                    locks.append(round((row.locked_until - row.last_failure_at).total_seconds()))
                # time passes: the lock ends, the count stays
                ended = datetime.now(UTC) - timedelta(seconds=1)
                locked = f.c.locked_until.is_not(None)
                conn.execute(update(f).where(locked).values(locked_until=ended))
    assert locks == [30, 60, 120]
    assert auth.lock_time(40) == auth.LOCK_MAX_S


def test_passwords_are_checked_off_the_event_loop(
    seeded_on_both: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 takes tens of milliseconds of CPU per check; on the event loop that
    `castline up` shares with the line it would hold up every verdict meanwhile."""
    on_loop: list[bool] = []
    check = auth.password_ok

    def watched(stored_hash: str, password: str) -> bool:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return check(stored_hash, password)

    monkeypatch.setattr(auth, "password_ok", watched)
    app, _ = seeded_on_both
    with TestClient(app) as client:
        assert log_in(client, "viewer").status_code == 303
        assert log_in(client, "nobody", "guess").status_code == 401
    assert on_loop == [False, False]
