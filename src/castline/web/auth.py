"""Who may do what: users, roles, plant scoping, API keys, sessions, CSRF, audit log.

Every route declares its minimum role with `Depends(require(Role.X))` (or `public`);
a test walks the application's routes and fails when one declares neither.
Requests carry either an API key (header `X-API-Key`, stored as its SHA-256 only) or a
signed session cookie from the login page. Browser sessions must echo their CSRF token on
every state-changing request; API-key requests cannot be forged by a browser and skip it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from sqlalchemy import Engine, insert, select, update

from castline.store import tables as t

API_KEY_HEADER = "X-API-Key"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
INITIAL_PASSWORD_FILE = "initial-admin-password"
SECRET_FILE = "session-secret"

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


def new_api_key(engine: Engine, username: str, name: str = "") -> str:
    """Create a key for a user and return it; only its SHA-256 is kept."""
    key = "cl_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        user = conn.execute(select(t.users.c.id).where(t.users.c.username == username)).first()
        if user is None:
            raise ValueError(f"no user {username!r}; add one with `castline user add`")
        conn.execute(
            insert(t.api_keys).values(
                user_id=user.id,
                name=name or f"key-{datetime.now(UTC):%Y%m%d%H%M%S}",
                key_hash=key_digest(key),
                created_at=datetime.now(UTC),
            )
        )
    return key


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


def user_by_id(engine: Engine, user_id: int) -> Principal | None:
    with engine.connect() as conn:
        row = conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
    return _principal(row, by_key=False) if row else None


def login(engine: Engine, username: str, password: str) -> Principal | None:
    with engine.connect() as conn:
        row = conn.execute(select(t.users).where(t.users.c.username == username)).first()
    if row is None:
        password_ok(_DUMMY_HASH, password)  # same work as a real check: no user enumeration
        return None
    return _principal(row, by_key=False) if password_ok(row.password_hash, password) else None


_DUMMY_HASH = hash_password(secrets.token_hex(8))


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


# --- audit log -------------------------------------------------------------------


def audit(
    engine: Engine, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> None:
    """Record a state-changing action: who, what, when. Never pass secrets in `detail`."""
    with engine.begin() as conn:
        conn.execute(
            insert(t.audit_log).values(
                at=datetime.now(UTC), actor=actor, action=action, target=target, detail=detail or {}
            )
        )


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
    engine: Engine = request.app.state.engine
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return user_by_key(engine, key)
    user_id = request.session.get("uid")
    return user_by_id(engine, int(user_id)) if user_id is not None else None


Guard = Callable[[Request], Awaitable[Principal | None]]


def require(role: Role) -> Guard:
    """Dependency: the caller has at least `role` and may see the `plant` of the path."""

    async def guard(request: Request) -> Principal:
        principal = principal_of(request)
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
