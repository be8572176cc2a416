"""Hostile and broken input on the wire: strict types, a parse budget, bounded topics,
pictures checked against their content type, and every subject handled or refused.

Each message here once crashed, coerced or vanished; now `decode` refuses it on the first
delivery with a reason, and never raises anything but InvalidMessage."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from pydantic import BaseModel, ValidationError

from castline.domain.ids import valid_id
from castline.messaging import limits, topics
from castline.messaging.schema import (
    AvailabilityMessage,
    ImageMessage,
    InvalidImage,
    InvalidMessage,
    ShotMessage,
    StateMessage,
    TruthMessage,
    VerdictMessage,
    decode,
    decode_input,
)
from castline.messaging.topics import Kind
from castline.store import tables as t

TS = "2026-03-01T06:00:00Z"
SHOT = "castline/v1/p1/m1/shot"
IMAGE = "castline/v1/p1/m1/image/front"


def picture(fmt: str, size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 90, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


def shot(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "plant": "p1",
        "machine": "m1",
        "shot_number": 5,
        "die": "8412",
        "ts": TS,
        "params": {"melt_temp_c": 681.5},
    }
    body.update(over)
    return body


def image(data: bytes, content_type: str = "image/jpeg", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "plant": "p1",
        "machine": "m1",
        "shot_number": 5,
        "view": "front",
        "ts": TS,
        "content_type": content_type,
        "image_b64": base64.b64encode(data).decode(),
    }
    body.update(over)
    return body


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def refused(subject: str, payload: bytes, why: str) -> InvalidMessage:
    with pytest.raises(InvalidMessage, match=why) as caught:
        decode(subject, payload)
    return caught.value


# --- topics: every level bounded and checked when parsed ------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "castline.v1.p1." + "m" * 400 + ".shot",  # the machine level that stopped the line
        "castline/v1/" + "p" * 65 + "/m1/shot",
        "castline/v1/p1/" + "m" * 400 + "/image/front",  # image levels were not checked
        "castline/v1/p 1/m1/image/front",
        "castline/v1/p1/m1/image/" + "v" * 65,
        "castline/v1/p1/m\x001/shot",
        "castline/v1/p1/m1/image/fr\u00f6nt",
        "castline/v1/" + "x/" * 200 + "shot",
    ],
)
def test_topic_levels_are_bounded_and_the_reason_stays_short(subject: str) -> None:
    error = refused(subject, raw(shot()), "id|characters|not a known")
    assert len(error.reason) < 200


@pytest.mark.parametrize("view", ["verdict", "state", "shot", "image", "availability"])
def test_a_view_may_not_be_named_like_a_kind(view: str) -> None:
    refused(f"castline/v1/p1/m1/image/{view}", raw(image(picture("JPEG"), view=view)), "kind")
    with pytest.raises(ValueError, match="kind"):
        topics.topic("p1", "m1", Kind.IMAGE, view)


def test_castline_output_has_its_own_namespace() -> None:
    out = topics.output_topic("p1", "m1")
    assert out == "castline/out/v1/p1/m1/verdict"
    assert topics.is_line_output(out) and topics.is_line_output(topics.to_subject(out))
    assert topics.output_plant_topic("p1") == "castline/out/v1/p1/availability"
    assert topics.is_line_output(topics.to_subject(topics.output_plant_topic("p1")))
    assert not topics.is_line_output("castline.v1.p1.m1.verdict")
    assert not topics.is_line_output("castline.outside.v1.p1.m1.verdict")
    with pytest.raises(ValueError):
        topics.output_topic("p1", "m1", Kind.SHOT)
    verdict = VerdictMessage.model_validate(
        {"plant": "p1", "machine": "m1", "shot_number": 5, "verdict": "OK", "decided_at": TS}
    )
    route, back = decode(out, verdict.to_json())  # what a robot cell reads
    assert route.output and back == verdict
    with pytest.raises(InvalidMessage, match="own output"):
        decode_input(topics.to_subject(out), verdict.to_json())


@pytest.mark.parametrize("payload", [b"garbage", b"", b'{"v": 1}', b"\xff" * 10])
def test_a_device_publishing_verdicts_is_refused_whatever_it_sends(payload: bytes) -> None:
    with pytest.raises(InvalidMessage, match="only castline publishes verdict"):
        decode_input("castline.v1.p1.m1.verdict", payload)


def test_availability_is_the_bare_word_and_nothing_else() -> None:
    route, message = decode_input("castline.v1.p1.m1.availability", b"offline")
    assert isinstance(message, AvailabilityMessage) and message.status == "offline"
    assert route.kind is Kind.AVAILABILITY and message.wire() == b"offline"
    for garbage in (b"", b"online\n", b'"online"', b"\x00", b"x" * 100_000):
        with pytest.raises(InvalidMessage, match=r"availability|bytes"):
            decode_input("castline.v1.p1.m1.availability", garbage)
    with pytest.raises(InvalidMessage, match="only castline"):
        decode_input("castline.v1.p1.availability", b"online")


# --- strict wire types: no coercion ---------------------------------------------------------

BIG = "9" * 4300


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (raw(shot(shot_number="999000007")), "shot_number"),
        (raw(shot(shot_number=8.0)), "shot_number"),
        (raw(shot(shot_number=True)), "shot_number"),
        (raw(shot(trial="yes")), "trial"),
        (raw(shot(trial=1)), "trial"),
        (raw(shot(ts=12345)), "ISO 8601"),
        (raw(shot(ts=1.7e9)), "ISO 8601"),
        (raw(shot(ts="1772344800")), "ISO 8601"),
        (raw(shot(ts="2026-03-01")), "ISO 8601"),
        (raw(shot(ts="2026-03-01T06:00:00")), "time zone"),
        (raw(shot(ts="1969-12-31T23:59:59Z")), "1970"),
        (raw(shot(ts="0001-01-01T00:00:00+01:00")), "range"),
        (raw(shot(params={"melt_temp_c": "681.5"})), "params"),
        (raw(shot(params={"melt_temp_c": True})), "params"),
        (raw(shot(params={"": 1.0})), "params"),
        (raw(shot(params={f"p{i}": 1.0 for i in range(129)})), "params"),
        (raw(shot(die="D" * 65)), "die"),
        (raw(shot(die="84\x0012")), "NUL|die"),
        (raw(shot(die="84\x1b12")), "die"),
        (raw(shot(die=" 8412")), "die"),
        (raw(shot(die="84\u200b12")), "die"),
        (raw(shot(die=8412)), "die"),
        (raw(shot(data_matrix="X" * 65)), "data_matrix"),
        (raw(shot(data_matrix="AB\x07C")), "data_matrix"),
        (raw(shot(curve={"t_s": [0.1] * (limits.MAX_CURVE + 1)})), "entries|curve"),
        (raw(shot(curve={"speed": [1.0]})), "curve"),
        (raw(shot(oven={"zone": 1})), "unknown field"),
        (raw(shot(oven="x" * 257)), "unknown field"),
        (raw(shot(**{f"extra{i}": 1 for i in range(65)})), "unknown fields"),
        (raw(shot(v=True)), "integer 1"),
        (raw(shot(v="1")), "integer 1"),
        (raw(shot(v=1.0)), "integer 1"),
        (raw(shot(v=2)), "version"),
        (b'{"v": 1, "plant": "p1", "plant": "p1"}', "same key twice"),
    ],
)
def test_shot_fields_are_strict(payload: bytes, why: str) -> None:
    refused(SHOT, payload, why)


@pytest.mark.parametrize(
    "number",
    ["1e999", "-1e999", "NaN", "Infinity", "-Infinity", str(2**63), str(-(2**63) - 1), BIG],
)
def test_numbers_json_or_the_database_cannot_hold_are_refused(number: str) -> None:
    payload = raw(shot()).replace(b"681.5", number.encode())
    error = refused(SHOT, payload, "bound|not a number")
    assert len(error.reason) < 200  # a 4300-digit number is not quoted back


def test_an_integer_of_20_000_digits_is_refused_cheaply() -> None:
    # Python itself refuses to convert more than 4300 digits: that escaped as ValueError.
    refused(SHOT, raw(shot()).replace(b"681.5", b"7" * 20_000), "64 bits")


def test_the_largest_64_bit_shot_number_is_fine() -> None:
    payload = raw(shot()).replace(b'"shot_number": 5', f'"shot_number": {2**63 - 1}'.encode())
    _, message = decode(SHOT, payload)
    assert isinstance(message, ShotMessage) and message.shot_number == 2**63 - 1


def test_what_is_kept_survives_the_strict_rules() -> None:
    body = shot(data_matrix="(01)0401234\x1d(10)A1", trial=False, oven="A", recorded_at=TS)
    body["curve"] = {"t_s": [0, 0.001], "position_mm": [0.0, 1.5]}
    body["params"] |= {"vacuum_mbar": None, "vendor_flow": 3}
    _, message = decode(SHOT, raw(body))
    assert isinstance(message, ShotMessage)
    assert message.data_matrix == "(01)0401234\x1d(10)A1"
    assert message.model_extra == {"oven": "A", "recorded_at": TS}
    assert message.to_shot().extra == {"vendor_flow": 3.0, "oven": "A", "recorded_at": TS}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"ts": 12345}, "ISO 8601"),
        ({"shot_number": "5"}, "shot_number"),
        ({"shot_number": 8.0}, "shot_number"),
        ({"trial": "yes"}, "trial"),
        ({"die": "x" * 65}, "die"),
    ],
)
def test_validating_json_directly_is_as_strict(body: dict[str, Any], why: str) -> None:
    """pydantic parses JSON in another mode (strict datetimes still accept ISO text there):
    the field types are strict in both, so no caller can take the lax path."""
    with pytest.raises(ValidationError, match=why):
        ShotMessage.model_validate_json(raw(shot(**body)))
    with pytest.raises(ValidationError, match=why):
        ShotMessage.model_validate(shot(**body))


def test_other_kinds_are_bounded_too() -> None:
    long_reason = {"state": "idle", "ts": TS, "reason": "r" * (limits.MAX_TEXT + 1)}
    refused(
        "castline/v1/p1/m1/state", raw({"plant": "p1", "machine": "m1"} | long_reason), "reason"
    )
    nul = {"plant": "p1", "machine": "m1", "state": "idle", "ts": TS, "reason": "a\x00b"}
    refused("castline/v1/p1/m1/state", raw(nul), "NUL")
    state = StateMessage.model_validate(nul | {"reason": "line 1\nline 2\ttab"})
    assert state.reason == "line 1\nline 2\ttab"
    region = {"x": 1, "y": 2, "w": 3, "h": 4, "area_px": 5, "score": 0.5}
    verdict = {"plant": "p1", "machine": "m1", "shot_number": 1, "verdict": "NG"}
    verdict |= {"decided_at": TS, "regions": [region] * (limits.MAX_REGIONS + 1)}
    refused(topics.output_topic("p1", "m1"), raw(verdict), "regions")
    verdict["regions"] = [region | {"x": 1.0}]
    refused(topics.output_topic("p1", "m1"), raw(verdict), "regions")
    cell = {"plant": "p1", "machine": "m1", "shot_number": 1, "action": "reject_chute"}
    refused("castline/v1/p1/m1/cell", raw(cell | {"ts": 12345}), "ISO 8601")
    truth = {"plant": "p1", "machine": "m1", "shot_number": 1, "defective": "no"}
    refused("castline/v1/p1/m1/truth", raw(truth), "defective")


# --- the parse budget: refused on the first delivery, before pydantic ---------------------


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deep_nesting_is_refused(depth: int) -> None:
    payload = raw(shot())[:-1] + b', "nest": ' + b"[" * depth + b"]" * depth + b"}"
    refused(SHOT, payload, "nests deeper than 32")


def test_size_is_bounded_per_kind() -> None:
    refused(SHOT, raw(shot(note="n" * 200)) + b" " * limits.MAX_BYTES[Kind.SHOT], "over its")
    state = {"plant": "p1", "machine": "m1", "state": "idle", "ts": TS}
    refused("castline/v1/p1/m1/state", raw(state) + b" " * 20_000, "over its")
    big = b"\xff\xd8\xff" + b"\x00" * (limits.MAX_BYTES[Kind.IMAGE])
    refused(IMAGE, raw(image(big)), "over its")
    # A real photograph of a few hundred KB is well within the image budget.
    photo = picture("JPEG", (1200, 900))
    _, message = decode(IMAGE, raw(image(photo)))
    assert isinstance(message, ImageMessage) and message.image_size() == (1200, 900)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\xff\xfe{}", "not JSON"),
        ('{"plant": "p\udcff"}'.encode("utf-8", "surrogatepass"), "not JSON"),
        (b'{"plant": "p1\\u0000"}', "NUL"),
        (b'{"plant": "\\ud800"}', "surrogate"),
        (b"[" + b"1," * 5000 + b"1]", "entries"),
        (b'{"' + b"k" * 65 + b'": 1}', "key"),
    ],
)
def test_text_and_containers_are_bounded(payload: bytes, why: str) -> None:
    refused(SHOT, payload, why)


# --- pictures: the bytes must be what the content type says, of a bounded size ------------


def png_header(width: int, height: int) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return limits.PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR" + ihdr + b"\x00" * 4


def test_a_jpeg_labelled_png_is_refused_and_the_part_is_named() -> None:
    with pytest.raises(InvalidImage, match="says image/png but the bytes are image/jpeg") as bad:
        decode(IMAGE, raw(image(picture("JPEG"), "image/png")))
    assert bad.value.route.kind is Kind.IMAGE
    assert (bad.value.message.machine, bad.value.message.shot_number) == ("m1", 5)
    refused(IMAGE, raw(image(picture("PNG"), "image/jpeg")), "bytes are image/png")
    refused(IMAGE, raw(image(picture("GIF"), "image/jpeg")), "bytes are image/gif")
    refused(IMAGE, raw(image(b"hello", "image/jpeg")), "no known image format")
    _, message = decode(IMAGE, raw(image(picture("PNG", (30, 20)), "image/png")))
    assert isinstance(message, ImageMessage) and message.image_size() == (30, 20)


@pytest.mark.parametrize(
    ("data", "content_type", "why"),
    [
        (png_header(100_000, 10), "image/png", "each side"),
        (png_header(8000, 8000), "image/png", "pixels"),
        (png_header(0, 5), "image/png", "each side"),
        (limits.PNG_SIGNATURE + b"\x00\x00\x00\x0dIDAT", "image/png", "IHDR"),
        (b"\xff\xd8 this is no jpeg", "image/jpeg", "no known image format"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", "ends"),
        (b"\xff\xd8\xff\xda\x00\x08", "image/jpeg", "no frame header"),
        (b"\xff\xd8\xff\xe0\x00\x00", "image/jpeg", "length 0"),
        (b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03", "image/jpeg", "each side"),
        (b"\xff\xd8" + b"\xff" * 100_000, "image/jpeg", "ends|too long"),
    ],
)
def test_image_headers_are_read_not_decoded(data: bytes, content_type: str, why: str) -> None:
    with pytest.raises(InvalidImage, match=why):
        decode(IMAGE, raw(image(data, content_type)))


def test_an_image_on_a_view_named_verdict_is_refused() -> None:
    with pytest.raises(InvalidMessage, match="kind"):
        decode_input("castline.v1.p1.m1.image.verdict", raw(image(picture("JPEG"))))


# --- every bounded field fits the column it is stored in --------------------------------


def max_length(model: type[BaseModel], field: str) -> int:
    spec = model.model_json_schema()["properties"][field]
    lengths = [s["maxLength"] for s in spec.get("anyOf", [spec]) if "maxLength" in s]
    assert lengths, f"{model.__name__}.{field} has no maximum length"
    return int(lengths[0])


@pytest.mark.parametrize(
    ("model", "field", "column"),
    [
        (ShotMessage, "die", t.shots.c.die),
        (ShotMessage, "data_matrix", t.shots.c.data_matrix),
        (StateMessage, "die", t.machine_states.c.die),
        (TruthMessage, "defect_type", t.truths.c.defect_type),
        (VerdictMessage, "model_version", t.verdicts.c.model_version),
        (ImageMessage, "view", t.images.c.view),
    ],
)
def test_bounded_fields_fit_their_columns(
    model: type[BaseModel], field: str, column: sa.Column[Any]
) -> None:
    if field == "view":  # an id: the topic rule bounds it
        assert not valid_id("v" * (column.type.length + 1))  # type: ignore[attr-defined]
        return
    assert max_length(model, field) <= column.type.length  # type: ignore[attr-defined]


def test_defect_types_and_model_versions_are_bounded_as_stored() -> None:
    truth = {"plant": "p1", "machine": "m1", "shot_number": 1, "defective": True}
    refused("castline/v1/p1/m1/truth", raw(truth | {"defect_type": "d" * 41}), "defect_type")
    decode("castline/v1/p1/m1/truth", raw(truth | {"defect_type": "d" * 40}))
    verdict = {"plant": "p1", "machine": "m1", "shot_number": 1, "verdict": "OK"}
    verdict |= {"decided_at": TS, "model_version": "v" * 81}
    refused(topics.output_topic("p1", "m1"), raw(verdict), "model_version")


def test_castline_can_make_its_own_reasons_fit() -> None:
    reason = "inspection failed: \x1b[31mboom\x00\n" + "x" * 5000
    fitted = limits.clean_text(reason)
    assert len(fitted) == limits.MAX_TEXT and fitted.endswith("…")
    verdict = VerdictMessage.model_validate(
        {"plant": "p1", "machine": "m1", "shot_number": 1, "verdict": "QUARANTINE"}
        | {"decided_at": TS, "reason": fitted}
    )
    assert "\n" in verdict.reason and "\x1b" not in verdict.reason
