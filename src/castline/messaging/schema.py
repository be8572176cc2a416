"""Message schemas of protocol v1 (see docs/protocol.md).

Receivers keep unknown fields (pydantic `extra="allow"`): a plant may send more than
castline knows. Invalid messages raise `InvalidMessage` with a reason that goes to
the dead-letter store with the raw payload.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from castline.domain.shot import PartKey, Shot, ShotCurve
from castline.domain.states import MachineState
from castline.domain.units import NAMES
from castline.domain.verdict import Verdict
from castline.messaging.topics import Kind, Route, check_id, parse

VERSION = 1


class InvalidMessage(ValueError):
    """A message that castline cannot accept; `reason` is for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a time zone (UTC, e.g. 2026-01-02T03:04:05Z)")
    return value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]
Id = Annotated[str, AfterValidator(lambda v: check_id(v, "id"))]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    v: Literal[1] = 1
    plant: Id
    machine: Id

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class ShotMessage(Message):
    shot_number: int = Field(ge=0)
    die: str = Field(min_length=1, max_length=64)
    ts: UtcTime
    params: dict[str, float | None] = Field(default_factory=dict)
    data_matrix: str | None = None
    trial: bool = False
    curve: dict[str, list[float]] | None = None

    @field_validator("params")
    @classmethod
    def _finite(cls, params: dict[str, float | None]) -> dict[str, float | None]:
        for name, value in params.items():
            if value is not None and value != value:
                raise ValueError(f"parameter {name} is NaN: send null for 'not measured'")
        return params

    def to_shot(self) -> Shot:
        standard = {k: v for k, v in self.params.items() if k in NAMES}
        extra: dict[str, float | str | None] = {
            k: v for k, v in self.params.items() if k not in NAMES
        }
        extra.update(self.model_extra or {})
        curve = None
        if self.curve:
            curve = ShotCurve(
                tuple(self.curve.get("t_s", [])),
                tuple(self.curve.get("position_mm", [])),
                tuple(self.curve.get("pressure_bar", [])),
            )
        key = PartKey(self.plant, self.machine, self.shot_number, self.data_matrix)
        return Shot(key, self.die, self.ts, standard, extra, self.trial, curve)


class ImageMessage(Message):
    shot_number: int = Field(ge=0)
    view: Id
    ts: UtcTime
    content_type: Literal["image/jpeg", "image/png"] = "image/jpeg"
    image_b64: str = Field(min_length=1)

    def image_bytes(self) -> bytes:
        try:
            return base64.b64decode(self.image_b64, validate=True)
        except binascii.Error as exc:
            raise InvalidMessage(f"image_b64 is not valid base64: {exc}") from exc

    @classmethod
    def of(
        cls,
        plant: str,
        machine: str,
        shot_number: int,
        view: str,
        ts: datetime,
        data: bytes,
        content_type: str = "image/jpeg",
    ) -> ImageMessage:
        return cls(
            plant=plant,
            machine=machine,
            shot_number=shot_number,
            view=view,
            ts=ts,
            content_type=content_type,  # type: ignore[arg-type]
            image_b64=base64.b64encode(data).decode(),
        )


class Region(BaseModel):
    """A defect region in image pixels."""

    x: int
    y: int
    w: int
    h: int
    area_px: int
    score: float


class VerdictMessage(Message):
    shot_number: int = Field(ge=0)
    verdict: Verdict
    decided_at: UtcTime
    score: float | None = None
    reason: str = ""
    model_version: str | None = None
    latency_ms: float | None = None
    regions: list[Region] = Field(default_factory=list)


class StateMessage(Message):
    state: MachineState
    ts: UtcTime
    die: str | None = None
    reason: str = ""


class CellMessage(Message):
    """What the robot cell did with a part."""

    shot_number: int = Field(ge=0)
    action: Literal["next_station", "reject_chute", "quarantine_rack"]
    verdict: Verdict | None = None  # None: no verdict arrived in time
    ts: UtcTime


class TruthMessage(Message):
    """Simulator ground truth of a part, for evaluation only."""

    shot_number: int = Field(ge=0)
    defective: bool
    defect_type: str | None = None
    cause: str = ""


SCHEMAS: dict[Kind, type[Message]] = {
    Kind.SHOT: ShotMessage,
    Kind.IMAGE: ImageMessage,
    Kind.VERDICT: VerdictMessage,
    Kind.STATE: StateMessage,
    Kind.CELL: CellMessage,
    Kind.TRUTH: TruthMessage,
}


def decode(topic_name: str, payload: bytes) -> tuple[Route, Message]:
    """Parse and validate one message; every failure is an `InvalidMessage` with a reason."""
    try:
        route = parse(topic_name)
    except ValueError as exc:
        raise InvalidMessage(str(exc)) from exc
    schema = SCHEMAS.get(route.kind)
    if schema is None:
        raise InvalidMessage(f"{route.kind.value} messages carry no schema to decode")
    try:
        data: Any = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidMessage(f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidMessage("payload must be a JSON object")
    if data.get("v", VERSION) != VERSION:
        raise InvalidMessage(f"unsupported protocol version {data.get('v')!r}; this is v1")
    try:
        message = schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(_describe(exc)) from exc
    if (message.plant, message.machine) != (route.plant, route.machine):
        raise InvalidMessage(
            f"payload names {message.plant}/{message.machine} but was sent on {topic_name}"
        )
    if isinstance(message, ImageMessage):
        if message.view != route.view:
            raise InvalidMessage(f"payload view {message.view!r} differs from topic {topic_name}")
        message.image_bytes()
    return route, message


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
