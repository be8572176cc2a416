"""Who may speak on castline's NATS: roles, their users and passwords, their subjects.

Every client of the embedded nats-server logs in (there is no anonymous user):

- `line`: castline's own services (line workers, dashboard, bridges it runs itself):
  everything, core NATS connections only.
- `bridge`: a bridge from a plant's MQTT broker: device messages in, verdicts out.
- `device`, one per machine: through the MQTT listener only; it publishes under its own
  `castline/v1/<plant>/<machine>/` and reads its own verdict, nothing else. It can never
  publish a verdict, so only the line speaks for the line.

Secrets live in `<home>/credentials.json` (mode 0600). The server is given only bcrypt
hashes. The plain password is kept only for users castline logs in as itself (line,
bridge, simulated machines); a device added by hand is shown its password once.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import bcrypt

from castline.domain.ids import check_id
from castline.messaging import parking
from castline.settings import TlsFiles

CREDENTIALS_FILE = "credentials.json"
BCRYPT_COST = 10  # nats-server checks the hash on every connect: keep reconnect storms cheap
STREAM_API = "$JS.API.STREAM.{op}.CASTLINE"
PARKING_API = "$JS.API.STREAM.{op}." + parking.STREAM

# Where castline publishes a machine's verdicts: in its own output namespace, and in the
# device namespace where protocol v1 first had them (readable, never writable by a device).
VERDICT_SUBJECTS = (
    "castline.out.v1.{plant}.{machine}.verdict",
    "castline.v1.{plant}.{machine}.verdict",
)
LINE_AVAILABILITY = "castline.out.v1.{plant}.availability"  # castline's own, retained


class Role(StrEnum):
    LINE = "line"
    BRIDGE = "bridge"
    DEVICE = "device"


class CredentialsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Permissions:
    publish_allow: tuple[str, ...]
    publish_deny: tuple[str, ...] = ()
    subscribe_allow: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()
    connection_types: tuple[str, ...] = ("STANDARD",)


@dataclass(frozen=True, slots=True)
class Account:
    """One NATS user. `password` is set only where castline itself logs in with it."""

    user: str
    role: Role
    password_hash: str
    plant: str | None = None
    machine: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class Login:
    user: str
    password: str


def verdict_subjects(plant: str, machine: str = "*") -> tuple[str, ...]:
    return tuple(s.format(plant=plant, machine=machine) for s in VERDICT_SUBJECTS)


def device_user(plant: str, machine: str) -> str:
    """Ids hold no dots, so `<plant>.<machine>` names one machine and no service user."""
    return f"{check_id(plant, 'plant')}.{check_id(machine, 'machine')}"


def permissions(account: Account) -> Permissions:
    """What each role may publish and subscribe: every rule of the broker is here."""
    if account.role is Role.LINE:
        return Permissions(publish_allow=(">",), subscribe_allow=(">",))
    plant = account.plant or "*"
    if account.role is Role.BRIDGE:
        return Permissions(
            publish_allow=(
                f"castline.v1.{plant}.>",
                STREAM_API.format(op="INFO"),
                STREAM_API.format(op="CREATE"),
                # what it can never store, it parks with the reason (mqtt_bridge.py)
                f"{parking.ROOT}.>",
                PARKING_API.format(op="INFO"),
                PARKING_API.format(op="CREATE"),
            ),
            publish_deny=verdict_subjects(plant),
            subscribe_allow=(*verdict_subjects(plant), "_INBOX.>"),
        )
    if account.plant is None or account.machine is None:
        raise CredentialsError(f"device user {account.user!r} has no plant and machine")
    verdicts = verdict_subjects(account.plant, account.machine)
    return Permissions(
        publish_allow=(f"castline.v1.{account.plant}.{account.machine}.>",),
        publish_deny=verdicts,
        subscribe_allow=(*verdicts, LINE_AVAILABILITY.format(plant=account.plant)),
        connection_types=("MQTT",),
    )


def new_account(
    user: str,
    role: Role,
    plant: str | None = None,
    machine: str | None = None,
    keep_password: bool = True,
) -> tuple[Account, Login]:
    password = secrets.token_urlsafe(24)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
    kept = password if keep_password else None
    return Account(user, role, hashed, plant, machine, kept), Login(user, password)


class Registry:
    """The users of one castline home, read from and written to its 0600 credentials file."""

    def __init__(self, path: Path, accounts: dict[str, Account]) -> None:
        self.path = path
        self.accounts = accounts

    @classmethod
    def load(cls, home: Path) -> Registry:
        path = home / CREDENTIALS_FILE
        if not path.exists():
            return cls(path, {})
        try:
            rows = json.loads(path.read_text())["users"]
            accounts = {r["user"]: Account(**{**r, "role": Role(r["role"])}) for r in rows}
        except (ValueError, KeyError, TypeError) as exc:
            raise CredentialsError(f"{path}: not a castline credentials file ({exc})") from None
        return cls(path, accounts)

    def save(self) -> None:
        """Written whole to a 0600 file beside it, then renamed over it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = [asdict(a) for a in sorted(self.accounts.values(), key=lambda a: a.user)]
        temp = self.path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"users": rows}, out, indent=1)
        os.chmod(temp, 0o600)  # an earlier temp file may have had other bits
        os.replace(temp, self.path)

    def service(self, role: Role, plant: str | None = None) -> Login:
        """castline's own login for `line` or `bridge`, created on first use (a bridge of
        one `plant` may forward that plant's machines only)."""
        name = role.value
        account = self.accounts.get(name)
        if account is None or account.password is None:
            account, _ = new_account(name, role, plant)
            self.accounts[name] = account
            self.save()
        assert account.password is not None
        return Login(account.user, account.password)

    def add_device(self, plant: str, machine: str, keep_password: bool = False) -> Login:
        """A new machine, or a new password for a known one (the old one stops working)."""
        user = device_user(plant, machine)
        account, login = new_account(user, Role.DEVICE, plant, machine, keep_password)
        self.accounts[user] = account
        self.save()
        return login

    def device(self, plant: str, machine: str) -> Login:
        """The login of a machine castline plays itself (the simulator): kept, reused."""
        account = self.accounts.get(device_user(plant, machine))
        if account is not None and account.password is not None:
            return Login(account.user, account.password)
        return self.add_device(plant, machine, keep_password=True)

    def remove(self, user: str) -> bool:
        if self.accounts.pop(user, None) is None:
            return False
        self.save()
        return True

    def forget_passwords(self, user: str) -> None:
        """Keep only the hash of `user` (a device that is no longer simulated)."""
        if user in self.accounts:
            self.accounts[user] = replace(self.accounts[user], password=None)
            self.save()

    def authorization(self) -> str:
        """The nats-server `authorization` block: hashes and permissions, no plain secret."""
        return "authorization: " + json.dumps({"users": [_user(a) for a in self.users()]}, indent=1)

    def users(self) -> list[Account]:
        return sorted(self.accounts.values(), key=lambda a: (a.role, a.user))


def provision(home: Path, plant: str, machines: Iterable[str] = ()) -> Registry:
    """castline's own users: the line, and one device per machine it simulates."""
    registry = Registry.load(home)
    registry.service(Role.LINE)
    for machine in machines:
        registry.device(plant, machine)
    return registry


def _user(account: Account) -> dict[str, Any]:
    rules = permissions(account)
    return {
        "user": account.user,
        "password": account.password_hash,
        "permissions": {
            "publish": {"allow": list(rules.publish_allow), "deny": list(rules.publish_deny)},
            "subscribe": {
                "allow": list(rules.subscribe_allow),
                "deny": list(rules.subscribe_deny),
            },
        },
        "allowed_connection_types": list(rules.connection_types),
    }


# --- how a client connects -----------------------------------------------------------


def client_tls(ca: Path | None) -> ssl.SSLContext:
    """A client context that trusts `ca` (a plant's CA), else the system's CAs."""
    return ssl.create_default_context(cafile=str(ca) if ca else None)


def connect_options(login: Login | None, tls: TlsFiles | None = None) -> dict[str, Any]:
    """Keyword arguments for `nats.connect(servers=..., **connect_options(...))`."""
    options: dict[str, Any] = {}
    if login is not None:
        options |= {"user": login.user, "password": login.password}
    if tls is not None:
        options["tls"] = client_tls(tls.ca)
    return options


def service_options(home: Path, tls: TlsFiles | None, role: Role = Role.LINE) -> dict[str, Any]:
    """How castline's own services connect to its embedded broker (user, password, TLS)."""
    return connect_options(Registry.load(home).service(role), tls)


def home_options(home: Path, tls: TlsFiles | None) -> dict[str, Any]:
    """How a command of this home connects to the line's NATS: with the home's line login
    where `castline up` or `castline line broker` made one, else without a login (a
    configured broker has its own security)."""
    account = Registry.load(home).accounts.get(Role.LINE.value)
    login = Login(account.user, account.password) if account and account.password else None
    return connect_options(login, tls)


def url_with_login(url: str, login: Login) -> str:
    """`nats://user:password@host:port` for code that takes only a URL. The URL is then a
    secret: never log or show it (`redact`)."""
    parts = urlsplit(url)
    userinfo = f"{quote(login.user, safe='')}:{quote(login.password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.hostname}:{parts.port}"))


def redact(urls: str) -> str:
    """Comma-separated server URLs without the passwords some of them carry."""
    shown = []
    for url in urls.split(","):
        parts = urlsplit(url)
        if parts.password is not None:
            url = urlunsplit(
                parts._replace(netloc=f"{parts.username}:***@{parts.hostname}:{parts.port}")
            )
        shown.append(url)
    return ",".join(shown)
