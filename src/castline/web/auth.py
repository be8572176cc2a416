"""Who may do what: users, roles, plant scoping, API keys, sessions, CSRF, audit log.

Every route declares its minimum role with `Depends(require(Role.X))` (or `public`);
a test walks the application's routes and fails when one declares neither.
Requests carry either an API key (header `X-API-Key`, stored as its SHA-256 only) or a
signed session cookie from the login page that names a server-side session (table
`web_sessions`, so logging out ends it for every copy of the cookie). Browser sessions must
echo their CSRF token on every state-changing request; API-key requests cannot be forged by
a browser and skip it. Password hashing is slow on purpose, so it runs in a worker thread:
the event loop is shared with the line under `castline up`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from starlette.concurrency import run_in_threadpool

from castline.store import tables as t

API_KEY_HEADER = "X-API-Key"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
INITIAL_PASSWORD_FILE = "initial-admin-password"
SECRET_FILE = "session-secret"
SESSION_HOURS = 12
SESSION_KEY = "sid"  # the cookie holds this session id; the store holds its SHA-256
# Login throttling: after FREE_FAILURES failures in a row a name or address is locked,
# for LOCK_FIRST_S doubling with each further failure up to LOCK_MAX_S; a quiet
# FORGET_AFTER since the last failure starts the count again.
FREE_FAILURES = 5
LOCK_FIRST_S = 30.0
LOCK_MAX_S = 3600.0
FORGET_AFTER = timedelta(hours=1)

_hasher = PasswordHasher()


class Role(IntEnum):
    VIEWER = 1  # sees dashboards
    OPERATOR = 2  # reviews parts, acknowledges alarms
    ENGINEER = 3  # promotes and rolls back models, reads dead letters
    ADMIN = 4  # manages users and keys

    @classmethod
    def of(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            known = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {name!r}; roles: {known}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Principal:
    """The person (or machine with a key) behind a request."""

    user_id: int
    username: str
    role: Role
    plants: tuple[str, ...]  # empty: every plant
    by_key: bool = False

    def sees(self, plant: str) -> bool:
        return not self.plants or plant in self.plants

    def visible(self, plants: list[str]) -> list[str]:
        return [p for p in plants if self.sees(p)]

    def covers(self, plants: list[str] | tuple[str, ...]) -> bool:
        """Whether a scope (a user's plants; empty: every plant) lies within this one's."""
        if not self.plants:
            return True
        return bool(plants) and set(plants) <= set(self.plants)


# --- passwords, keys, users ------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_ok(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def add_user(
    engine: Engine, username: str, password: str, role: Role, plants: list[str] | None = None
) -> int:
    if not username or len(username) > 80:
        raise ValueError("a user name needs 1 to 80 characters")
    with engine.begin() as conn:
        exists = conn.execute(select(t.users.c.id).where(t.users.c.username == username)).first()
        if exists:
            raise ValueError(f"user {username!r} exists already")
        result = conn.execute(
            insert(t.users).values(
                username=username,
                password_hash=hash_password(password),
                role=role.label,
                plants=list(plants or []),
                created_at=datetime.now(UTC),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: int
    name: str
    key: str  # shown once; only its SHA-256 is kept


def issue_key(engine: Engine, username: str, name: str = "") -> IssuedKey:
    """Create a key for a user; only its SHA-256 is kept."""
    key = "cl_" + secrets.token_urlsafe(32)
    name = name or f"key-{datetime.now(UTC):%Y%m%d%H%M%S}"
    with engine.begin() as conn:
        user = conn.execute(select(t.users.c.id).where(t.users.c.username == username)).first()
        if user is None:
            raise ValueError(f"no user {username!r}; add one with `castline user add`")
        result = conn.execute(
            insert(t.api_keys).values(
                user_id=user.id, name=name, key_hash=key_digest(key), created_at=datetime.now(UTC)
            )
        )
    return IssuedKey(int(result.inserted_primary_key[0]), name, key)  # type: ignore[index]


def new_api_key(engine: Engine, username: str, name: str = "") -> str:
    """Create a key for a user and return it; only its SHA-256 is kept."""
    return issue_key(engine, username, name).key


def keys_of(engine: Engine, user_id: int) -> list[dict[str, Any]]:
    """A user's keys, without the keys themselves (castline does not have them)."""
    k = t.api_keys
    query = (
        select(k.c.id, k.c.name, k.c.created_at, k.c.revoked_at)
        .where(k.c.user_id == user_id)
        .order_by(k.c.created_at, k.c.id)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def revoke_key(engine: Engine, user_id: int, key_id: int) -> bool:
    """Revoke one live key of a user; False when the user has no such live key."""
    k = t.api_keys
    with engine.begin() as conn:
        result = conn.execute(
            update(k)
            .where(k.c.id == key_id, k.c.user_id == user_id, k.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return bool(result.rowcount)


def revoke_keys(engine: Engine, username: str) -> int:
    """Revoke every live key of a user (a lost laptop, a retired script); returns how many."""
    k, u = t.api_keys, t.users
    with engine.begin() as conn:
        user = conn.execute(select(u.c.id).where(u.c.username == username)).first()
        if user is None:
            raise ValueError(f"no user {username!r}")
        result = conn.execute(
            update(k)
            .where(k.c.user_id == user.id, k.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return int(result.rowcount)


def _principal(row: Any, by_key: bool) -> Principal:
    return Principal(row.id, row.username, Role.of(row.role), tuple(row.plants or ()), by_key)


def user_by_key(engine: Engine, key: str) -> Principal | None:
    k, u = t.api_keys, t.users
    query = (
        select(u)
        .join(k, k.c.user_id == u.c.id)
        .where(k.c.key_hash == key_digest(key), k.c.revoked_at.is_(None))
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return _principal(row, by_key=True) if row else None


def login(engine: Engine, username: str, password: str) -> Principal | None:
    """Check a password (slow on purpose: call it from a worker thread)."""
    with engine.connect() as conn:
        row = conn.execute(select(t.users).where(t.users.c.username == username)).first()
    if row is None:
        password_ok(_DUMMY_HASH, password)  # same work as a real check: no user enumeration
        return None
    return _principal(row, by_key=False) if password_ok(row.password_hash, password) else None


_DUMMY_HASH = hash_password(secrets.token_hex(8))


# --- login throttling ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    principal: Principal | None
    locked_s: float = 0.0  # > 0: refused without checking the password, for this long


def _subjects(username: str, address: str) -> tuple[str, str]:
    return f"user:{username.lower()[:200]}", f"address:{address[:200]}"


def locked_for(engine: Engine, subjects: tuple[str, ...], now: datetime) -> float:
    """Seconds until every subject may try again (0: none is locked)."""
    f = t.login_failures
    with engine.connect() as conn:
        until = conn.execute(
            select(f.c.locked_until).where(f.c.subject.in_(subjects), f.c.locked_until > now)
        ).scalars()
        return max((u - now for u in until), default=timedelta(0)).total_seconds()


def lock_time(failures: int) -> float:
    """How long a subject is locked after `failures` failures in a row."""
    if failures < FREE_FAILURES:
        return 0.0
    return float(min(LOCK_FIRST_S * 2 ** (failures - FREE_FAILURES), LOCK_MAX_S))


def _count_failure(engine: Engine, subject: str, now: datetime) -> int:
    f = t.login_failures
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as conn:
        conn.execute(
            dialect.insert(f)
            .values(subject=subject, failures=0, last_failure_at=now)
            .on_conflict_do_nothing()
        )
        stale = f.c.last_failure_at < now - FORGET_AFTER
        conn.execute(update(f).where(f.c.subject == subject, stale).values(failures=0))
        failures = conn.execute(
            update(f)
            .where(f.c.subject == subject)
            .values(failures=f.c.failures + 1, last_failure_at=now)
            .returning(f.c.failures)
        ).scalar_one()
        lock = lock_time(failures)
        if lock:
            locked_until = now + timedelta(seconds=lock)
            conn.execute(update(f).where(f.c.subject == subject).values(locked_until=locked_until))
        return int(failures)


def attempt_login(engine: Engine, username: str, password: str, address: str) -> LoginOutcome:
    """A login with throttling per user name and per client address, audited either way.

    Blocking (argon2 and the store): the login page runs it in a worker thread."""
    now = datetime.now(UTC)
    subjects = _subjects(username, address)
    locked = locked_for(engine, subjects, now)
    if locked > 0:
        audit(engine, username[:80], "login.locked", username[:300], {"address": address})
        return LoginOutcome(None, locked)
    who = login(engine, username, password)
    if who is None:
        counts = [_count_failure(engine, s, now) for s in subjects]
        detail = {"address": address, "failures": max(counts)}
        audit(
            engine,
            username[:80],
            "login.failed",
            username[:300],
            detail,
            _plants_of(engine, username),
        )
        return LoginOutcome(None)
    with engine.begin() as conn:  # the name's count starts again; the address's does not
        conn.execute(t.login_failures.delete().where(t.login_failures.c.subject == subjects[0]))
    return LoginOutcome(who)


def _plants_of(engine: Engine, username: str) -> list[str]:
    with engine.connect() as conn:
        row = conn.execute(select(t.users.c.plants).where(t.users.c.username == username)).first()
    return list(row.plants or []) if row else []


# --- server-side sessions ------------------------------------------------------------


def open_session(engine: Engine, user_id: int, hours: float = SESSION_HOURS) -> str:
    """A new session for a user; returns its id for the cookie (the store keeps its hash)."""
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(t.web_sessions).values(
                id_hash=key_digest(session_id),
                user_id=user_id,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
        )
    return session_id


def session_user(engine: Engine, session_id: str) -> Principal | None:
    """The user of a live session (not logged out, not expired), or None."""
    s, u = t.web_sessions, t.users
    query = (
        select(u)
        .join(s, s.c.user_id == u.c.id)
        .where(
            s.c.id_hash == key_digest(session_id),
            s.c.revoked_at.is_(None),
            s.c.expires_at > datetime.now(UTC),
        )
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return _principal(row, by_key=False) if row else None


def close_session(engine: Engine, session_id: str) -> None:
    s = t.web_sessions
    with engine.begin() as conn:
        conn.execute(
            update(s)
            .where(s.c.id_hash == key_digest(session_id), s.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )


def ensure_admin(engine: Engine, home: Path) -> str | None:
    """First start: create user "admin" with a random password, written (mode 600) to
    `<home>/initial-admin-password`. Returns the password, or None if an admin exists."""
    with engine.connect() as conn:
        admin = conn.execute(select(t.users.c.id).where(t.users.c.role == Role.ADMIN.label))
        if admin.first() is not None:
            return None
    password = secrets.token_urlsafe(18)
    add_user(engine, "admin", password, Role.ADMIN)
    _write_private(Path(home) / INITIAL_PASSWORD_FILE, password + "\n")
    audit(engine, "castline", "user.add", "admin", {"role": "admin", "first_start": True})
    return password


def session_secret(configured: str, home: Path) -> str:
    """The configured secret, or one generated once and kept (mode 600) in home."""
    if configured:
        return configured
    path = Path(home) / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    _write_private(path, secret + "\n")
    return secret


def _write_private(path: Path, text: str) -> None:
    """Write a secret readable by the owner only: the mode is 0600 before any byte is
    written, also when the file existed with a wider mode; a link is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


# --- audit log -------------------------------------------------------------------


def audit(
    engine: Engine,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    plants: list[str] | tuple[str, ...] = (),
) -> None:
    """Record a state-changing action: who, what, when. Never pass secrets in `detail`.

    `plants`: the plants the action concerns; a plant-scoped admin sees a row only when it
    names plants and all of them are the admin's (none: only admins of every plant)."""
    with engine.begin() as conn:
        result = conn.execute(
            insert(t.audit_log).values(
                at=datetime.now(UTC), actor=actor, action=action, target=target, detail=detail or {}
            )
        )
        row_id = result.inserted_primary_key[0]  # type: ignore[index]
        for plant in sorted(set(plants)):
            conn.execute(insert(t.audit_plants).values(audit_id=row_id, plant=plant))


# --- request guards --------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use), for forms and scripts."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    expected = request.session.get("csrf", "")
    sent = request.headers.get(CSRF_HEADER, "")
    content_type = request.headers.get("content-type", "")
    if not sent and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get(CSRF_FIELD, ""))
    if not expected or not hmac.compare_digest(str(expected), sent):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")


def principal_of(request: Request) -> Principal | None:
    """The caller, from its API key or its live session (blocking: reads the store)."""
    engine: Engine = request.app.state.engine
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return user_by_key(engine, key)
    session_id = request.session.get(SESSION_KEY)
    return session_user(engine, str(session_id)) if session_id else None


Guard = Callable[[Request], Awaitable[Principal | None]]


def require(role: Role) -> Guard:
    """Dependency: the caller has at least `role` and may see the `plant` of the path."""

    async def guard(request: Request) -> Principal:
        principal = await run_in_threadpool(principal_of, request)
        if principal is None:
            raise HTTPException(401, "log in, or send an API key in the X-API-Key header")
        if principal.role < role:
            raise HTTPException(403, f"this needs the {role.label} role or higher")
        plant = request.path_params.get("plant")
        if plant is not None and not principal.sees(plant):
            raise HTTPException(403, f"you have no access to plant {plant!r}")
        if request.method in UNSAFE_METHODS and not principal.by_key:
            await check_csrf(request)
        request.state.principal = principal
        return principal

    guard.minimum_role = role  # type: ignore[attr-defined]
    return guard


async def public(request: Request) -> None:
    """Dependency of the few routes anyone may call (login, health)."""
    request.state.principal = None


public.minimum_role = None  # type: ignore[attr-defined]
