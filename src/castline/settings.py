"""One settings object for castline, from environment variables and an optional TOML file.

Precedence: explicit overrides > environment (`CASTLINE_*`) > TOML file > defaults.
Errors name the setting, and the line of the TOML file when it came from there.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from castline.domain import plant_calendar as cal
from castline.domain.envelope_rule import DEFAULT_ACTION, EnvelopeAction
from castline.domain.ids import check_id
from castline.domain.shot import MAX_CAVITIES


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The server's certificate and key; `ca` the CA clients check it against."""

    cert: Path
    key: Path
    ca: Path | None = None


class Break(BaseModel):
    """A break of a shift, in plant time: start and length in minutes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    minutes: float = Field(gt=0, le=480)


class Shift(BaseModel):
    """One shift of the plant's day, in plant time: name, start, length in hours, breaks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=16)
    start: time
    hours: float = Field(gt=0, le=24)
    breaks: tuple[Break, ...] = Field(default=(), max_length=8)

    @model_validator(mode="after")
    def _breaks_inside(self) -> Shift:
        """Each break lies within its shift, and breaks do not overlap."""
        plan = self.plan()
        spans = sorted((plan.minutes_in(b.start), b.minutes, b.start) for b in self.breaks)
        end_of_last = 0.0
        for begin, minutes, clock in spans:
            if begin + minutes > self.hours * 60 + 1e-9:
                raise ValueError(
                    f"break at {clock:%H:%M} ({minutes:g} min) is not within shift "
                    f"{self.name} ({self.start:%H:%M}, {self.hours:g} h)"
                )
            if begin < end_of_last - 1e-9:
                raise ValueError(f"breaks of shift {self.name} overlap at {clock:%H:%M}")
            end_of_last = begin + minutes
        return self

    def plan(self) -> cal.ShiftPlan:
        pauses = tuple(cal.Break(b.start, b.minutes) for b in self.breaks)
        return cal.ShiftPlan(self.name, self.start, self.hours, pauses)


class PlannedStop(BaseModel):
    """A planned stop of the plant: start and end in plant time (or with an offset)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime
    end: datetime
    reason: str = Field("", max_length=200)


DEFAULT_SHIFTS = (
    Shift(name="A", start=time(8), hours=8),
    Shift(name="B", start=time(16), hours=8),
    Shift(name="C", start=time(0), hours=8),
)


class SettingsError(ValueError):
    """Bad configuration: the message says which setting and what to do."""


NATS_SCHEMES = ("nats", "tls", "ws", "wss")


def _is_nats_url(url: str) -> bool:
    parsed = urlsplit(url)
    try:
        parsed.port  # noqa: B018 (a port that is no number raises here)
    except ValueError:
        return False
    return parsed.scheme in NATS_SCHEMES and bool(parsed.hostname)


def check_nats_urls(value: str) -> str:
    """A NATS server, or a cluster's servers comma-separated: each scheme://host[:port]."""
    for url in value.split(","):
        if not _is_nats_url(url.strip()):
            raise ValueError(
                f"{url.strip()[:200]!r} is no NATS server URL: give nats://host:4222 "
                "(or tls://, ws://, wss://; a cluster's servers comma-separated)"
            )
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASTLINE_", extra="forbid")

    plant: str = Field("plant1", description="id of this plant (letters, digits, _ and -)")
    home: Path = Field(Path("var"), description="folder for the database, blobs and models")
    database_url: str = Field("", description="SQLAlchemy URL; empty: SQLite in home")
    blob_dir: Path | None = Field(None, description="image and heat-map store; empty: home/blobs")
    data: Path = Field(Path("../shared/data"), description="real data folder (CASTLINE_DATA)")
    nats_url: str = Field("", description="existing NATS server; empty: start an embedded one")
    nats_port: int = Field(14222, ge=1, le=65535, description="embedded NATS client port")
    mqtt_port: int = Field(11883, ge=1, le=65535, description="embedded NATS MQTT listener port")
    uplink_url: str = Field("", description="central hub's leafnode URL; empty: no uplink")
    heatmap_thumbnails: bool = Field(
        True, description="publish a small heat map of each part not judged OK (for the hub)"
    )
    http_host: str = Field("127.0.0.1", description="address the web dashboard binds")
    http_port: int = Field(8080, ge=1, le=65535, description="web dashboard port")
    opcua_cell_host: str = Field("127.0.0.1", description="address robot-cell PLCs reach")
    opcua_cell_port: int = Field(
        14840, ge=0, le=65535, description="OPC UA server for robot-cell PLCs; 0: none"
    )
    verdict_deadline_s: float = Field(2.0, gt=0, le=60, description="image -> verdict deadline")
    join_window_s: float = Field(10.0, gt=0, le=3600, description="shot/image pairing window")
    views_per_part: dict[str, int] = Field(
        default_factory=dict,
        description="die code -> camera views each of its parts is photographed from "
        "(default 1); the worst view decides, a view missing in the window quarantines",
    )
    cavities_per_die: dict[str, Annotated[int, Field(ge=1, le=MAX_CAVITIES)]] = Field(
        default_factory=dict,
        max_length=1000,
        description="the simulator's dies of several cavities: die code -> cavities (one "
        "casting per cavity and shot, each photographed and decided; default 1). The line "
        "needs no setting: each shot says how many castings it made",
    )
    machines_without_camera: tuple[str, ...] = Field(
        (),
        max_length=1000,
        description="machines whose castings are not photographed (ids or patterns such as "
        "'press-*' or 'plant2/press-*'): their shots are recorded only, never held for a "
        "missing photo; default: every machine has a camera",
    )
    machines: int = Field(9, ge=1, le=10_000, description="simulated machines in `castline up`")
    speed: float = Field(60.0, gt=0, le=10_000, description="simulator time acceleration")
    secret_key: str = Field("", description="session signing key; empty: generated in home")
    metrics_token: str | None = Field(
        None, min_length=16, description="bearer token for /metrics; unset: admins only"
    )
    tls_cert: Path | None = Field(None, description="PEM certificate: TLS on NATS, MQTT, leaf")
    tls_key: Path | None = Field(
        None, validate_default=True, description="PEM private key of tls_cert"
    )
    tls_ca: Path | None = Field(None, description="PEM CA that clients check tls_cert against")
    stream_max_bytes: int = Field(
        2 * 1024**3, ge=1024**2, description="JetStream stream size limit (oldest dropped)"
    )
    stream_max_age_days: float = Field(7.0, gt=0, le=3650, description="stream history kept")
    curve_retention_days: float = Field(
        90.0, gt=0, le=36_500, description="shot curves kept this long (features stay)"
    )
    shot_retention_days: float = Field(
        0.0,
        ge=0,
        le=36_500,
        description="shots, machine states and their parts kept this long, dropped by whole"
        " partitions (PostgreSQL: months); 0: kept forever",
    )
    history_partition_months: int = Field(
        1, ge=1, le=12, description="PostgreSQL: months of shots and states in one partition"
    )
    envelope_learn_shots: int = Field(
        100, ge=20, le=5000, description="good shots with curves before a die's envelope is learnt"
    )
    envelope_action: EnvelopeAction = Field(
        DEFAULT_ACTION, description="a shot outside its die's envelope: none, review or ng"
    )
    envelope_actions: dict[str, EnvelopeAction] = Field(
        default_factory=dict, max_length=10_000, description="envelope_action per die"
    )
    plant_timezone: str = Field(
        "Asia/Shanghai", description="IANA time zone of the plant: pages show plant time"
    )
    shifts: tuple[Shift, ...] = Field(
        DEFAULT_SHIFTS, min_length=1, max_length=8, description="the plant's shift calendar"
    )
    planned_stops: tuple[PlannedStop, ...] = Field(
        (), max_length=1000, description="planned stops of the plant (plant time)"
    )
    holidays: tuple[date, ...] = Field(
        (), max_length=1000, description="dates without shifts (plant time)"
    )
    analytics_file: Path | None = Field(
        None,
        description="analytics TOML: spec limits per die, planned cycle time, shifts, lines;"
        " empty: home/analytics.toml if it exists, else the built-in defaults",
    )
    review_learning: bool = Field(
        True,
        description="photos a person confirms OK after castline held them join the model's "
        "memory as a new, active version (the dashboard's process does it)",
    )
    review_learning_every_s: float = Field(
        60.0, ge=1, le=86_400, description="at most one review update per die and view this often"
    )
    review_learning_min: int = Field(
        1, ge=1, le=10_000, description="new confirmations a die and view needs before an update"
    )

    @field_validator("plant")
    @classmethod
    def _plant_id(cls, v: str) -> str:
        return check_id(v, "plant")

    @field_validator("nats_url", "uplink_url")
    @classmethod
    def _nats_url(cls, v: str) -> str:
        return check_nats_urls(v) if v else v

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str) -> str:
        if v and not re.match(r"^(sqlite|postgresql)(\+\w+)?://", v):
            raise ValueError(
                "must start with sqlite:// or postgresql:// (or postgresql+psycopg://)"
            )
        if v:
            _check_db_url(v)
        return v

    @field_validator("machines_without_camera")
    @classmethod
    def _camera_patterns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            if not 0 < len(pattern) <= 160 or not re.fullmatch(
                r"[A-Za-z0-9_.\-*?/\[\]!]+", pattern
            ):
                raise ValueError(
                    f"{pattern[:40]!r}: a machine id or pattern (letters, digits, "
                    "_ . - and the wildcards * ? [ ]), with 'plant/' before it "
                    "for one plant only"
                )
        return v

    @field_validator("plant_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return v

    @field_validator("shifts")
    @classmethod
    def _no_overlap(cls, v: tuple[Shift, ...]) -> tuple[Shift, ...]:
        """Shifts may leave gaps (nights off) but never overlap, within 24 hours."""
        if len({s.name for s in v}) != len(v):
            raise ValueError("shift names must differ")
        spans = sorted((s.start.hour * 60 + s.start.minute, s.hours * 60, s.name) for s in v)
        for (start, length, name), (nxt, _, other) in zip(
            spans, [*spans[1:], (spans[0][0] + 1440, 0, spans[0][2])], strict=True
        ):
            if start + length > nxt + 1e-9:
                raise ValueError(f"shift {name} overlaps shift {other}")
        return v

    @field_validator("planned_stops")
    @classmethod
    def _stops_in_plant_time(
        cls, v: tuple[PlannedStop, ...], info: ValidationInfo
    ) -> tuple[PlannedStop, ...]:
        """Times without an offset are plant time; a stop ends after it starts, and
        stops do not overlap."""
        zone = ZoneInfo(info.data.get("plant_timezone") or "UTC")
        aware = [
            s.model_copy(update={"start": _in_zone(s.start, zone), "end": _in_zone(s.end, zone)})
            for s in v
        ]
        for stop in aware:
            if stop.end <= stop.start:
                raise ValueError(f"the stop from {stop.start:%Y-%m-%d %H:%M} ends before it starts")
        ordered = sorted(aware, key=lambda s: s.start)
        for one, nxt in pairwise(ordered):
            if nxt.start < one.end:
                raise ValueError(
                    f"the stops from {one.start:%Y-%m-%d %H:%M} and "
                    f"{nxt.start:%Y-%m-%d %H:%M} overlap"
                )
        return tuple(aware)

    @field_validator("holidays")
    @classmethod
    def _holidays_once(cls, v: tuple[date, ...]) -> tuple[date, ...]:
        if len(set(v)) != len(v):
            twice = sorted(d for d in set(v) if v.count(d) > 1)[0]
            raise ValueError(f"{twice} is listed twice")
        return v

    @field_validator("tls_key")
    @classmethod
    def _tls_pair(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if (info.data.get("tls_cert") is None) != (v is None):
            raise ValueError("give tls_cert and tls_key both, or neither")
        return v

    @field_validator("analytics_file")
    @classmethod
    def _analytics_exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"{v} is not a file")
        return v

    @model_validator(mode="after")
    def _analytics_in_home(self) -> Settings:
        if self.analytics_file is None and (self.home / "analytics.toml").is_file():
            self.analytics_file = self.home / "analytics.toml"
        return self

    @property
    def calendar(self) -> cal.PlantCalendar:
        """The plant calendar: shifts, breaks, planned stops and holidays in plant time."""
        return cal.PlantCalendar(
            ZoneInfo(self.plant_timezone),
            tuple(s.plan() for s in self.shifts),
            tuple(cal.PlannedStop(s.start, s.end, s.reason) for s in self.planned_stops),
            frozenset(self.holidays),
        )

    @property
    def tls(self) -> TlsFiles | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        return TlsFiles(self.tls_cert, self.tls_key, self.tls_ca)

    def envelope_action_of(self, die: str) -> EnvelopeAction:
        """What a shot outside the die's golden envelope does to its part."""
        return self.envelope_actions.get(die, self.envelope_action)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'castline.db'}"

    @property
    def blobs(self) -> Path:
        return self.blob_dir or self.home / "blobs"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def _in_zone(at: datetime, zone: ZoneInfo) -> datetime:
    return at.replace(tzinfo=zone) if at.tzinfo is None else at


def _check_db_url(url: str) -> None:
    """Parse the URL and find its dialect now, so a typo is a settings error, not a
    traceback from the first connection."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url).get_dialect()
    except (ArgumentError, ValueError) as exc:
        raise ValueError(f"not a usable SQLAlchemy URL ({exc})") from None


def load(config: Path | None = None, **overrides: Any) -> Settings:
    """Build and validate settings; raise `SettingsError` naming each bad setting."""
    path = config or (
        Path(os.environ["CASTLINE_CONFIG"]) if os.environ.get("CASTLINE_CONFIG") else None
    )
    file_values: dict[str, Any] = {}
    text = ""
    if path is not None:
        text, file_values = _read_file(path)
    if "CASTLINE_DATA" in os.environ and "data" not in overrides:
        overrides["data"] = Path(os.environ["CASTLINE_DATA"])
    env_names = {k[len("CASTLINE_") :].lower() for k in os.environ if k.startswith("CASTLINE_")}
    values = {k: v for k, v in file_values.items() if k not in env_names} | overrides
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, path, text)) from None


def _read_file(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text and its [castline] table. A file without that table, or with
    settings outside it, is refused: its values would otherwise be silently ignored."""
    try:
        text = path.read_text()
        document = tomllib.loads(text)
    except FileNotFoundError:
        raise SettingsError(
            f"config file {path} not found (set by --config or CASTLINE_CONFIG)"
        ) from None
    except IsADirectoryError:
        raise SettingsError(f"config file {path} is a folder, not a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    table = document.get("castline")
    if not isinstance(table, dict):
        raise SettingsError(
            f"{path}: no [castline] table; put the settings under a line [castline]"
        )
    stray = [key for key, value in document.items() if not isinstance(value, dict)]
    if stray:
        raise SettingsError(
            f"{path}: {', '.join(stray)} outside the [castline] table; move them under it"
        )
    return text, table


def _explain(exc: ValidationError, path: Path | None, text: str) -> str:
    lines = []
    errors = exc.errors()
    failed_items = {e["loc"][0] for e in errors if len(e["loc"]) > 1}
    for err in errors:
        name = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "too_short" and name in failed_items:
            continue  # "at least 1 item" only because an item failed: said by that item
        key = (
            name
            + "".join(  # the item of a list: shifts[1].breaks[0]
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in err["loc"][1:]
            )
        )
        where = f"CASTLINE_{name.upper()}" + (f" ({key})" if key != name else "")
        line_no = _line_of(text, name)
        if path is not None and line_no:
            where = f"{path}:{line_no} ({key})"
        msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")  # pydantic's prefix for a validator's text
        lines.append(f"setting {where}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _line_of(text: str, key: str) -> int | None:
    header = re.compile(rf"^\s*\[\[?\s*castline\s*\.\s*{re.escape(key)}\s*\]")
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*{re.escape(key)}\s*=", line) or header.match(line):
            return number
    return None
