"""Property: whatever bytes arrive on whatever subject, `decode` and `decode_input` return a
message or raise InvalidMessage with a bounded reason; never another exception, and never
the "bug of ours" reason. Random bytes, random JSON, and valid messages with one part
changed, for every kind of topic."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from castline.messaging.schema import INTERNAL, InvalidMessage, Message, decode, decode_input
from castline.messaging.topics import Route

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow],
)
TS = "2026-03-01T06:00:00Z"


def _jpeg() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 120, 120)).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


KEY = {"v": 1, "plant": "p1", "machine": "m1"}
VALID: dict[str, dict[str, Any]] = {
    "castline/v1/p1/m1/shot": KEY
    | {
        "shot_number": 5,
        "die": "8412",
        "ts": TS,
        "params": {"melt_temp_c": 681.5},
        "curve": {"t_s": [0.0, 0.1]},
        "data_matrix": "DM1",
    },
    "castline/v1/p1/m1/image/front": KEY
    | {"shot_number": 5, "view": "front", "ts": TS, "image_b64": _jpeg()},
    "castline/v1/p1/m1/state": KEY | {"state": "running", "ts": TS, "die": "8412"},
    "castline/v1/p1/m1/cell": KEY
    | {"shot_number": 5, "action": "next_station", "verdict": "OK", "ts": TS},
    "castline/v1/p1/m1/truth": KEY | {"shot_number": 5, "defective": False, "cause": ""},
    "castline/out/v1/p1/m1/verdict": KEY
    | {
        "shot_number": 5,
        "verdict": "NG",
        "decided_at": TS,
        "score": 0.9,
        "regions": [{"x": 1, "y": 1, "w": 2, "h": 2, "area_px": 4, "score": 0.9}],
    },
}
SUBJECTS = [
    *VALID,
    "castline/v1/p1/m1/verdict",
    "castline/v1/p1/m1/availability",
    "castline/v1/p1/availability",
    "castline/v1/p1/m1/nonsense",
    "castline.v1.p1.m1.image.verdict",
]
FIELDS = ["v", "plant", "machine", "shot_number", "ts", "die", "params", "curve", "view"]
FIELDS += ["image_b64", "content_type", "state", "verdict", "regions", "extra", "decided_at"]
DECODERS: list[Callable[[str, bytes], tuple[Route, Message]]] = [decode, decode_input]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)

# Raw JSON text that broke the old decoder or could break a later step: numbers Python or
# the database cannot hold, deep nesting, NUL and lone surrogates, clocks out of range.
HOSTILE = ["9" * 5000, "-" + "9" * 4301, "1e999", "NaN", "-Infinity", "[" * 2000 + "]" * 2000]
HOSTILE += ['{"a":' * 40 + "1" + "}" * 40, '"\\u0000"', '"\\ud800"', "true", "1.0", "1e2"]
fragments = (
    st.sampled_from(HOSTILE)
    | st.integers(min_value=-(10**30), max_value=10**30).map(str)
    | st.from_regex(
        r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})\Z"
    ).map(json.dumps)
)


def outcome(subject: str, payload: bytes) -> None:
    for decoder in DECODERS:
        try:
            route, message = decoder(subject, payload)
        except InvalidMessage as exc:
            assert exc.reason and not exc.reason.startswith(INTERNAL), exc.reason
            assert len(exc.reason) <= 4000
        else:
            assert isinstance(route, Route) and isinstance(message, Message)
            assert (message.plant, message.machine) == (route.plant, route.machine)


def test_the_valid_messages_of_every_kind_pass() -> None:
    for subject, body in VALID.items():
        route, _ = decode(subject, json.dumps(body).encode())
        assert route.kind.value in subject


@FUZZ
@given(subject=st.sampled_from(SUBJECTS) | st.text(max_size=60), payload=st.binary(max_size=300))
def test_random_bytes(subject: str, payload: bytes) -> None:
    outcome(subject, payload)


@FUZZ
@given(subject=st.sampled_from(SUBJECTS), value=json_values)
def test_random_json(subject: str, value: Any) -> None:
    outcome(subject, json.dumps(value).encode())


@FUZZ
@given(
    subject=st.sampled_from(list(VALID)),
    field=st.sampled_from(FIELDS),
    value=json_values,
    drop=st.booleans(),
)
def test_valid_messages_with_one_field_changed(
    subject: str, field: str, value: Any, drop: bool
) -> None:
    body = dict(VALID[subject])
    if drop:
        body.pop(field, None)
    else:
        body[field] = value
    outcome(subject, json.dumps(body).encode())


@FUZZ
@given(
    subject=st.sampled_from(list(VALID)),
    at=st.integers(min_value=0, max_value=10_000),
    cut=st.integers(min_value=0, max_value=8),
    insert=st.binary(max_size=8),
)
def test_valid_messages_with_bytes_spliced(subject: str, at: int, cut: int, insert: bytes) -> None:
    payload = json.dumps(VALID[subject]).encode()
    at %= len(payload) + 1
    outcome(subject, payload[:at] + insert + payload[at + cut :])


@FUZZ
@given(subject=st.sampled_from(list(VALID)), field=st.sampled_from(FIELDS), text=fragments)
def test_valid_messages_with_hostile_json_in_one_field(subject: str, field: str, text: str) -> None:
    body = dict(VALID[subject], **{field: "@@"})
    outcome(subject, json.dumps(body).replace('"@@"', text).encode())
