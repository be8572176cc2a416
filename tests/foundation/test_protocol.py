"""Protocol v1: topics and message validation, the contract with every device."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from PIL import Image

from castline.messaging import topics
from castline.messaging.schema import ImageMessage, InvalidMessage, ShotMessage, decode
from castline.messaging.topics import Kind

TS = "2026-03-01T06:00:00Z"


def shot_payload(**over: object) -> bytes:
    body = {
        "v": 1,
        "plant": "p1",
        "machine": "m1",
        "shot_number": 5,
        "die": "8412",
        "ts": TS,
        "params": {"melt_temp_c": 681.5, "vendor_flow": 3.0},
        "oven": "A",
    }
    body.update(over)
    return json.dumps(body).encode()


def test_topics_round_trip_mqtt_and_nats() -> None:
    name = topics.topic("p1", "m1", Kind.IMAGE, "front")
    assert name == "castline/v1/p1/m1/image/front"
    assert topics.parse(topics.to_subject(name)) == topics.Route("p1", "m1", Kind.IMAGE, "front")
    with pytest.raises(ValueError):
        topics.topic("p 1", "m1", Kind.SHOT)
    with pytest.raises(ValueError):
        topics.parse("castline/v2/p1/m1/shot")


def test_valid_shot_keeps_unknown_fields() -> None:
    route, msg = decode("castline/v1/p1/m1/shot", shot_payload())
    assert isinstance(msg, ShotMessage) and route.kind is Kind.SHOT
    shot = msg.to_shot()
    assert shot.params == {"melt_temp_c": 681.5}
    assert shot.extra == {"vendor_flow": 3.0, "oven": "A"}
    assert shot.at == datetime(2026, 3, 1, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (shot_payload(v=2), "version"),
        (shot_payload(shot_number=-1), "shot_number"),
        (shot_payload(ts="2026-03-01T06:00:00"), "time zone"),
        (shot_payload(machine="m2"), "was sent on"),
        (shot_payload(die=""), "die"),
        (shot_payload(plant="p1\n"), "plant"),  # a trailing newline is not part of an id
        (shot_payload(ts="2026-03-01T06:00:00Z\n"), "ts"),
    ],
)
def test_invalid_shots_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        decode("castline/v1/p1/m1/shot", payload)


def tiny_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 90, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_image_message_base64_and_view() -> None:
    jpeg = tiny_jpeg()
    msg = ImageMessage.of("p1", "m1", 5, "front", datetime.now(UTC), jpeg)
    _, back = decode("castline/v1/p1/m1/image/front", msg.to_json())
    assert isinstance(back, ImageMessage) and back.image_bytes() == jpeg
    assert back.image_size() == (8, 6)
    with pytest.raises(InvalidMessage, match="view"):
        decode("castline/v1/p1/m1/image/top", msg.to_json())
    broken = json.loads(msg.to_json()) | {"image_b64": "not base64!"}
    with pytest.raises(InvalidMessage, match="base64"):
        decode("castline/v1/p1/m1/image/front", json.dumps(broken).encode())
