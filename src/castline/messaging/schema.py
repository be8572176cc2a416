"""Message schemas of protocol v1 (see docs/protocol.md).

Receiving is strict and bounded. `decode` first holds the raw bytes to a budget (size per
kind, JSON nesting, integer size, no NaN or infinity, no duplicate keys), then validates
every field with no coercion: an integer is a JSON integer, a time is an ISO 8601 string
with a zone, a float is finite, strings and lists have maximum lengths. Receivers keep
unknown fields (pydantic `extra="allow"`) when they are plain values: a plant may send
more than castline knows. Whatever the bytes, `decode` returns a message or raises
`InvalidMessage` with a reason, which goes to the dead-letter store with the payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from math import isfinite
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)

from castline.domain import curve as binary_curve
from castline.domain.curve import CurveError, ShotCurve
from castline.domain.downstream import DownstreamResult, PartRef
from castline.domain.shot import MAX_CAVITIES, CurveLists, PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.units import NAMES
from castline.domain.verdict import Verdict
from castline.messaging import limits
from castline.messaging.limits import clip
from castline.messaging.topics import LINE_KINDS, Kind, Route, check_id, check_view, parse

log = logging.getLogger(__name__)
STANDARD = frozenset(NAMES)  # the parameters with a column of their own
VERSION = 1
INTERNAL = "castline could not check this message"  # a bug of ours, never of the sender
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class InvalidMessage(ValueError):
    """A message that castline cannot accept; `reason` is for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidImage(InvalidMessage):
    """An image message whose envelope is valid but whose picture is not acceptable
    (content type and bytes disagree, no readable header, too many pixels). The part is
    known, so the line can quarantine it with `reason` instead of staying silent."""

    def __init__(self, reason: str, route: Route, message: ImageMessage) -> None:
        super().__init__(reason)
        self.route = route
        self.message = message


# --- field types: strict, bounded ---------------------------------------------------------


def _time_text(value: object) -> object:
    """Times arrive as ISO 8601 text with a zone; numbers are refused (seconds or
    milliseconds since when?). Python callers may pass an aware datetime."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) <= limits.MAX_TIME_TEXT and _ISO.fullmatch(value):
        return value
    raise ValueError("time must be an ISO 8601 string with a time zone, e.g. 2026-01-02T03:04:05Z")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a time zone (UTC, e.g. 2026-01-02T03:04:05Z)")
    try:
        value = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("timestamp is out of range") from exc
    if not EARLIEST <= value < LATEST:
        raise ValueError("timestamp is not between 1970 and 2199: the device clock is wrong")
    return value


def _code(value: str) -> str:
    if not (value.isascii() and value.isprintable()) and limits.BAD_IN_CODE.search(value):
        raise ValueError("must not hold control, format or surrogate characters")
    if value != value.strip():
        raise ValueError("must not start or end with a space")
    return value


def _data_matrix(value: str) -> str:
    # GS1 data-matrix codes separate their fields with GS (0x1D): the one control allowed.
    _code(value.replace("\x1d", "x"))
    return value


def _text(value: str) -> str:
    if limits.BAD_IN_TEXT.search(value):
        raise ValueError("must not hold control characters other than tab and line breaks")
    return value


def _exact_version(value: object) -> object:
    if type(value) is not int:  # not true, not 1.0, not "1"
        raise ValueError("v must be the integer 1")
    return value


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})$")

Version = Annotated[Literal[1], BeforeValidator(_exact_version)]
Id = Annotated[str, Strict(), AfterValidator(lambda v: check_id(v, "the"))]
View = Annotated[str, Strict(), AfterValidator(check_view)]
Count = Annotated[int, Strict(), Field(ge=0, le=limits.MAX_INT)]
Real = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Flag = Annotated[bool, Strict()]
Code = Annotated[
    str, Strict(), Field(min_length=1, max_length=limits.MAX_CODE), AfterValidator(_code)
]
DataMatrix = Annotated[
    str, Strict(), Field(min_length=1, max_length=limits.MAX_CODE), AfterValidator(_data_matrix)
]
DefectType = Annotated[
    str, Strict(), Field(min_length=1, max_length=limits.MAX_DEFECT_TYPE), AfterValidator(_code)
]
ModelVersion = Annotated[
    str, Strict(), Field(min_length=1, max_length=limits.MAX_MODEL_VERSION), AfterValidator(_code)
]
Name = Annotated[str, Strict(), Field(min_length=1, max_length=limits.MAX_NAME)]


def _names(values: dict[str, float | None]) -> dict[str, float | None]:
    """Parameter names are codes: checked in one call for the whole map, not one a name
    (a shot has dozens)."""
    for name in values:
        try:
            _code(name)
        except ValueError as exc:
            raise ValueError(f"name {clip(name, 40)!r} {exc}") from None
    return values


Params = Annotated[
    dict[Name, Real | None], Field(max_length=limits.MAX_PARAMS), AfterValidator(_names)
]
Text = Annotated[str, Strict(), Field(max_length=limits.MAX_TEXT), AfterValidator(_text)]
UtcTime = Annotated[datetime, BeforeValidator(_time_text), AfterValidator(_utc)]
Trace = Annotated[list[Real], Field(max_length=limits.MAX_CURVE)]
CurveName = Literal["t_s", "position_mm", "pressure_bar"]
# Base64 of the largest binary curve (zlib adds at most a few bytes per 16 KiB).
MAX_CURVE_B64 = 4 * ((8 * binary_curve.MAX_SAMPLES + 1024) // 3 + 1)
CurveB64 = Annotated[str, Strict(), Field(min_length=4, max_length=MAX_CURVE_B64)]
RateHz = Annotated[int, Strict(), Field(ge=binary_curve.MIN_RATE_HZ, le=binary_curve.MAX_RATE_HZ)]
Cavity = Annotated[int, Strict(), Field(ge=1, le=MAX_CAVITIES)]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    v: Version = 1
    plant: Id
    machine: Id

    @model_validator(mode="after")
    def _plain_extras(self) -> Message:
        """Unknown fields are kept, as plain values with bounded names and sizes."""
        extra = self.model_extra or {}
        if len(extra) > limits.MAX_EXTRA_FIELDS:
            raise ValueError(f"{len(extra)} unknown fields; at most {limits.MAX_EXTRA_FIELDS}")
        for name, value in extra.items():
            _check_extra(name, value)
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def _check_extra(name: str, value: object) -> None:
    if not 0 < len(name) <= limits.MAX_NAME or limits.BAD_IN_CODE.search(name):
        raise ValueError(f"unknown field name {clip(name, 40)!r} is empty, too long or odd")
    where = f"unknown field {name!r}"
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not limits.MIN_INT <= value <= limits.MAX_INT:
            raise ValueError(f"{where}: integer out of the 64-bit range")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{where}: number must be finite")
    elif isinstance(value, str):
        if len(value) > limits.MAX_EXTRA_TEXT or limits.BAD_IN_TEXT.search(value):
            raise ValueError(f"{where}: text over {limits.MAX_EXTRA_TEXT} characters or odd")
    elif isinstance(value, datetime):  # Python senders; on the wire it is ISO text
        _utc(value)
    else:
        raise ValueError(f"{where}: must be a number, a string, true/false or null")


class ShotMessage(Message):
    shot_number: Count
    die: Code
    ts: UtcTime
    params: Params = Field(default_factory=dict)
    data_matrix: DataMatrix | None = None
    cavities: Cavity = 1  # castings of this shot, one per cavity of the die
    data_matrices: Annotated[list[DataMatrix], Field(max_length=MAX_CAVITIES)] | None = None
    trial: Flag = False
    curve: dict[CurveName, Trace] | None = None  # JSON lists: still read, see curve_b64
    curve_b64: CurveB64 | None = None  # docs/protocol.md, "The shot curve"
    curve_rate_hz: RateHz | None = None
    curve_stroke_mm: Real | None = None

    @model_validator(mode="after")
    def _marks(self) -> ShotMessage:
        """`data_matrices` names each cavity's casting, in cavity order; `data_matrix` is
        cavity 1's (the only one of a single-cavity die)."""
        if self.data_matrices is None:
            return self
        if len(self.data_matrices) != self.cavities:
            raise ValueError(
                f"data_matrices has {len(self.data_matrices)} codes for {self.cavities} cavities"
            )
        if self.data_matrix is not None and self.data_matrix != self.data_matrices[0]:
            raise ValueError("data_matrix differs from the first of data_matrices (cavity 1)")
        if len(set(self.data_matrices)) != len(self.data_matrices):
            raise ValueError("data_matrices names one code twice")
        return self

    @model_validator(mode="after")
    def _binary_curve(self) -> ShotMessage:
        """The binary curve is decoded here, once, so a bad one is refused on arrival."""
        if self.curve_b64 is None:
            if self.curve_rate_hz is not None or self.curve_stroke_mm is not None:
                raise ValueError("curve_rate_hz and curve_stroke_mm need curve_b64")
            return self
        if self.curve_rate_hz is None:
            raise ValueError("curve_b64 needs curve_rate_hz")
        if self.curve is not None:
            raise ValueError("send the curve once: curve_b64 or curve, not both")
        try:
            self.sent_curve  # noqa: B018 (decoded and kept)
        except (binascii.Error, CurveError) as exc:
            raise ValueError(f"curve_b64: {exc}") from None
        return self

    @cached_property
    def sent_curve(self) -> ShotCurve | None:
        """The binary curve, decoded once (on arrival, by the validator). A cached
        property, not a private attribute: pydantic reads those through a Python
        `__getattr__`, a cost on every shot."""
        if self.curve_b64 is None or self.curve_rate_hz is None:
            return None
        data = base64.b64decode(self.curve_b64, validate=True)
        return binary_curve.decode(data, self.curve_rate_hz, self.curve_stroke_mm)

    @classmethod
    def curve_fields(cls, curve: ShotCurve) -> dict[str, object]:
        """The fields that carry `curve` in a shot message."""
        fields: dict[str, object] = {
            "curve_b64": base64.b64encode(binary_curve.encode(curve)).decode(),
            "curve_rate_hz": curve.rate_hz,
        }
        if curve.stroke_mm is not None:
            fields["curve_stroke_mm"] = curve.stroke_mm
        return fields

    def to_shot(self) -> Shot:
        standard = {k: v for k, v in self.params.items() if k in STANDARD}
        extra: dict[str, float | str | None] = {
            k: v for k, v in self.params.items() if k not in STANDARD
        }
        extra.update(self.model_extra or {})
        curve, lists = self.sent_curve, None
        if self.curve:
            t_s, position, pressure = (
                self.curve.get(n) for n in ("t_s", "position_mm", "pressure_bar")
            )
            curve = binary_curve.from_lists(t_s, position, pressure)
            if curve is None:
                lists = CurveLists(tuple(t_s or ()), tuple(position or ()), tuple(pressure or ()))
        marks: tuple[str | None, ...] = tuple(self.data_matrices or (self.data_matrix,))
        key = PartKey(self.plant, self.machine, self.shot_number, marks[0])
        return Shot(
            key, self.die, self.ts, standard, extra, self.trial, curve, lists, self.cavities, marks
        )


class ImageMessage(Message):
    """A casting's photo, naming its part by shot number (and cavity), by the data-matrix
    code the camera read, or both (docs/protocol.md, "The part key")."""

    shot_number: Count | None = None  # None: the camera knows only the code it read
    cavity: Cavity = 1
    data_matrix: DataMatrix | None = None
    view: View
    ts: UtcTime
    content_type: Literal["image/jpeg", "image/png"] = "image/jpeg"
    image_b64: Annotated[str, Strict(), Field(min_length=1)]

    @model_validator(mode="after")
    def _names_its_part(self) -> ImageMessage:
        if self.shot_number is None and self.data_matrix is None:
            raise ValueError("an image names its part: shot_number, data_matrix or both")
        return self

    def part(self) -> PartKey | None:
        """The part by shot number and cavity, where the camera knows them."""
        if self.shot_number is None:
            return None
        return PartKey(self.plant, self.machine, self.shot_number, self.data_matrix, self.cavity)

    def image_bytes(self) -> bytes:
        """The photo, decoded once however often it is asked for."""
        return self._decoded

    @cached_property
    def _decoded(self) -> bytes:
        try:
            return base64.b64decode(self.image_b64, validate=True)
        except binascii.Error as exc:
            raise InvalidMessage(f"image_b64 is not valid base64: {exc}") from exc

    def image_size(self) -> tuple[int, int]:
        """Width and height from the image header; InvalidMessage if it is not acceptable."""
        try:
            return limits.image_size(self.image_bytes(), self.content_type)
        except ValueError as exc:
            raise InvalidMessage(str(exc)) from exc

    @classmethod
    def of(
        cls,
        plant: str,
        machine: str,
        shot_number: int | None,
        view: str,
        ts: datetime,
        data: bytes,
        content_type: str = "image/jpeg",
        *,
        cavity: int = 1,
        data_matrix: str | None = None,
    ) -> ImageMessage:
        """`shot_number` None: the photo names its part by `data_matrix` only."""
        return cls(
            plant=plant,
            machine=machine,
            shot_number=shot_number,
            cavity=cavity,
            data_matrix=data_matrix,
            view=view,
            ts=ts,
            content_type=content_type,  # type: ignore[arg-type]
            image_b64=base64.b64encode(data).decode(),
        )


class Region(BaseModel):
    """A defect region in image pixels."""

    x: Count
    y: Count
    w: Count
    h: Count
    area_px: Count
    score: Real


class VerdictMessage(Message):
    shot_number: Count
    cavity: Cavity = 1
    data_matrix: DataMatrix | None = None  # the part's mark, where it has one
    verdict: Verdict
    decided_at: UtcTime
    score: Real | None = None
    reason: Text = ""
    model_version: ModelVersion | None = None
    latency_ms: Real | None = None
    regions: Annotated[list[Region], Field(max_length=limits.MAX_REGIONS)] = Field(
        default_factory=list
    )


class StateMessage(Message):
    state: MachineState
    ts: UtcTime
    die: Code | None = None
    reason: Text = ""


class CellMessage(Message):
    """What the robot cell did with a part."""

    shot_number: Count
    cavity: Cavity = 1
    action: Literal["next_station", "reject_chute", "quarantine_rack"]
    verdict: Verdict | None = None  # None: no verdict arrived in time
    ts: UtcTime


class TruthMessage(Message):
    """Simulator ground truth of a part, for evaluation only."""

    shot_number: Count
    cavity: Cavity = 1
    defective: Flag
    defect_type: DefectType | None = None
    cause: Text = ""


class AvailabilityMessage(Message):
    """A device's retained online/offline (its last will): the bare word, not JSON."""

    status: Literal["online", "offline"]

    def wire(self) -> bytes:
        return self.status.encode()


class PartRefField(BaseModel):
    """The part a downstream result is for: by code, by part key, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_matrix: DataMatrix | None = None
    machine: Id | None = None
    shot_number: Count | None = None
    cavity: Annotated[int, Strict(), Field(ge=1, le=MAX_CAVITIES)] | None = None

    @model_validator(mode="after")
    def _names_a_part(self) -> PartRefField:
        self.ref()  # ValueError says what is missing
        return self

    def ref(self) -> PartRef:
        return PartRef(self.data_matrix, self.machine, self.shot_number, self.cavity)


class DownstreamMessage(Message):
    """A downstream station's result for one casting (docs/protocol.md, "downstream").

    The topic's device level is the station, so the payload names it `station`; the
    machine that cast the part is in `part`."""

    machine: Id = Field(alias="station")
    part: PartRefField
    test: Id
    result: Literal["OK", "NG"]
    ts: UtcTime  # when the station tested the part
    defect_type: DefectType | None = None
    values: Params = Field(default_factory=dict)
    note: Text = ""

    @model_validator(mode="after")
    def _consistent(self) -> DownstreamMessage:
        if "machine" in (self.model_extra or {}):
            raise ValueError("name the station in `station` and the part's machine in `part`")
        if self.defect_type is not None and self.result != "NG":
            raise ValueError("only an NG result names a defect_type")
        return self

    @property
    def station(self) -> str:
        return self.machine

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True, by_alias=True).encode()

    def to_result(self) -> DownstreamResult:
        return DownstreamResult(
            self.plant,
            self.station,
            self.test,
            self.result,
            self.ts,
            self.part.ref(),
            self.defect_type,
            dict(self.values),
            self.note,
        )


SCHEMAS: dict[Kind, type[Message]] = {
    Kind.SHOT: ShotMessage,
    Kind.IMAGE: ImageMessage,
    Kind.VERDICT: VerdictMessage,
    Kind.STATE: StateMessage,
    Kind.CELL: CellMessage,
    Kind.TRUTH: TruthMessage,
    Kind.AVAILABILITY: AvailabilityMessage,
    Kind.DOWNSTREAM: DownstreamMessage,
}


# --- decoding -------------------------------------------------------------------------------


def decode(topic_name: str, payload: bytes) -> tuple[Route, Message]:
    """Parse and validate one message of either namespace (castline/v1 and castline/out/v1).

    Raises only `InvalidMessage` (an `InvalidImage` for a bad picture), whatever the
    bytes."""
    return _guarded(topic_name, payload, inbound=False)


def decode_input(topic_name: str, payload: bytes) -> tuple[Route, Message]:
    """What the line consumes: like `decode`, but only what devices may send. A verdict
    on castline/v1 (only castline publishes verdicts) or anything in castline's output
    namespace is an `InvalidMessage`; check `topics.is_line_output` first to skip the
    line's own output without a dead letter."""
    return _guarded(topic_name, payload, inbound=True)


def _guarded(topic_name: str, payload: bytes, inbound: bool) -> tuple[Route, Message]:
    try:
        return _decode(topic_name, payload, inbound)
    except InvalidMessage:
        raise
    except Exception as exc:  # a bug of ours must not stop the line: the message is kept
        log.exception("checking a message on %s failed", clip(str(topic_name), 300))
        detail = clip(f"{exc.__class__.__name__}: {exc}", 300)
        raise InvalidMessage(f"{INTERNAL} ({detail})") from exc


def _decode(topic_name: str, payload: bytes, inbound: bool) -> tuple[Route, Message]:
    try:
        route = _route(topic_name)
    except ValueError as exc:
        raise InvalidMessage(str(exc)) from exc
    if inbound and route.output:
        raise InvalidMessage("this is castline's own output namespace, not input")
    if inbound and route.kind in LINE_KINDS:
        raise InvalidMessage(f"only castline publishes {route.kind.value} messages")
    payload = bytes(payload)
    budget = limits.MAX_BYTES[route.kind]
    if len(payload) > budget:
        raise InvalidMessage(
            f"{route.kind.value} message of {len(payload)} bytes is over its {budget} bytes"
        )
    if route.kind is Kind.AVAILABILITY:
        return route, _availability(route, payload)
    data = load_json(payload)
    if not isinstance(data, dict):
        raise InvalidMessage("payload must be a JSON object")
    if "v" in data and data["v"] != VERSION and type(data["v"]) is int:
        raise InvalidMessage(f"unsupported protocol version {data['v']}; this is v1")
    try:
        message = SCHEMAS[route.kind].model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(_describe(exc)) from exc
    if (message.plant, message.machine) != (route.plant, route.machine):
        raise InvalidMessage(
            f"payload names {message.plant}/{message.machine} but was sent on {topic_name}"
        )
    if isinstance(message, ImageMessage):
        if message.view != route.view:
            raise InvalidMessage(f"payload view {message.view!r} differs from topic {topic_name}")
        try:
            message.image_size()
        except InvalidMessage as exc:
            raise InvalidImage(exc.reason, route, message) from exc
    return route, message


# A plant's subjects are few and a route is immutable: each is parsed once, not per message.
_route = lru_cache(maxsize=4096)(parse)


def _availability(route: Route, payload: bytes) -> AvailabilityMessage:
    if payload not in (b"online", b"offline"):
        shown = clip(payload[:40].decode("utf-8", "replace"), 40)
        raise InvalidMessage(f"availability must be the word online or offline, not {shown!r}")
    status: Literal["online", "offline"] = "online" if payload == b"online" else "offline"
    return AvailabilityMessage(plant=route.plant, machine=route.machine, status=status)


class _OverBudget(Exception):
    """Raised inside the JSON parser's hooks: the payload breaks a bound."""


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > limits.MAX_INT_DIGITS:
        raise _OverBudget(f"integer of {len(text)} digits; integers must fit in 64 bits")
    value = int(text)
    if not limits.MIN_INT <= value <= limits.MAX_INT:
        raise _OverBudget(f"integer {value} does not fit in 64 bits")
    return value


def _constant(text: str) -> float:
    raise _OverBudget(f"{text} is not a number JSON allows")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _OverBudget("an object holds the same key twice")
    return obj


# One decoder for every message (json.loads with hooks would build one a call).
_JSON = json.JSONDecoder(
    parse_int=_integer,  # floats parse in C; one too large for a double is caught below
    parse_constant=_constant,
    object_pairs_hook=_object,
)


def load_json(payload: bytes) -> Any:
    """The JSON value of UTF-8 bytes, within the bounds of `limits`; InvalidMessage if
    not. The payload's size must have been bounded by the caller."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessage(f"payload is not JSON: not UTF-8 at byte {exc.start}") from exc
    try:
        data = _JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidMessage(f"payload is not JSON: {exc}") from exc
    except _OverBudget as exc:
        raise InvalidMessage(f"payload breaks a bound: {exc}") from exc
    except RecursionError as exc:
        raise InvalidMessage(f"payload nests deeper than {limits.MAX_DEPTH} levels") from exc
    _within_bounds(data)
    return data


def _within_bounds(data: Any) -> None:
    """Depth, container sizes, key lengths, characters and finite numbers of a parsed JSON
    value. Scalars are checked where they sit (the hot path: a shot has dozens of them)."""
    if isinstance(data, str):
        _check_text(data)
        return
    if isinstance(data, float) and not isfinite(data):
        raise InvalidMessage("payload breaks a bound: a number is too large")
    if not isinstance(data, dict | list):
        return
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limits.MAX_DEPTH:
            raise InvalidMessage(f"payload nests deeper than {limits.MAX_DEPTH} levels")
        if len(value) > limits.MAX_ITEMS:
            raise InvalidMessage(f"an array or object has over {limits.MAX_ITEMS} entries")
        if isinstance(value, dict):
            for key in value:
                if len(key) > limits.MAX_NAME:
                    raise InvalidMessage(f"key {clip(key, 40)!r} is over {limits.MAX_NAME}")
                if not key.isascii() or "\x00" in key:  # the common case costs no call
                    _check_text(key)
            items: Any = value.values()
        else:
            items = value
        for item in items:
            kind = type(item)
            if kind is str:
                if not item.isascii() or "\x00" in item:
                    _check_text(item)
            elif kind is float:
                if not isfinite(item):
                    raise InvalidMessage("payload breaks a bound: a number is too large")
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))


def _check_text(value: str) -> None:
    if "\x00" in value or (not value.isascii() and limits.BAD_ANYWHERE.search(value)):
        raise InvalidMessage("a string holds NUL or an unpaired surrogate")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(clip(str(p), 40) for p in err["loc"]) or "message"
        parts.append(f"{where}: {clip(err['msg'], 300)}")
    return "; ".join(parts)
