"""Hostile and broken messages as a bad day at the plant sends them, with good ones mixed in.

Every bad message is invalid by construction (never by chance), so a run can check that
each one became exactly one dead letter, and each good one exactly one record.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats

from castline.messaging import jetstream

PLANT, MACHINE = "p1", "m1"
SHOT = f"castline.v1.{PLANT}.{MACHINE}.shot"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)


@dataclass(frozen=True, slots=True)
class Sent:
    subject: str
    data: bytes
    good: bool
    case: str


def shot(n: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "plant": PLANT,
        "machine": MACHINE,
        "shot_number": n,
        "die": "D1",
        "ts": datetime.now(UTC).isoformat(),
        "params": {"melt_temp_c": 680.0},
    }
    body.update(changes)
    return body


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _nested(depth: int) -> bytes:
    return b'{"v": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


def _image(n: int, view: str, content_type: str, data: bytes) -> bytes:
    body = shot(n, view=view, content_type=content_type, image_b64=base64.b64encode(data).decode())
    del body["die"], body["params"]
    return _json(body)


def _cases() -> dict[str, Callable[[int, random.Random], tuple[str, bytes]]]:
    image_subject = f"castline.v1.{PLANT}.{MACHINE}.image"
    return {
        "random bytes": lambda n, r: (SHOT, r.randbytes(r.randint(1, 300))),
        "empty": lambda n, r: (SHOT, b""),
        "truncated": lambda n, r: (SHOT, _json(shot(n))[: r.randint(1, 40)]),
        "number as text": lambda n, r: (SHOT, _json(shot(n, shot_number=str(n)))),
        "float as integer": lambda n, r: (SHOT, _json(shot(n, shot_number=float(n)))),
        "yes as flag": lambda n, r: (SHOT, _json(shot(n, trial="yes"))),
        "number as time": lambda n, r: (SHOT, _json(shot(n, ts=12345))),
        "infinite reading": lambda n, r: (SHOT, _json(shot(n)).replace(b"680.0", b"1e999")),
        "integer over 64 bits": lambda n, r: (SHOT, _json(shot(2**63 + n))),
        "4,300 digits": lambda n, r: (SHOT, b'{"v": 1, "shot_number": ' + b"9" * 4_300 + b"}"),
        "nested 1,000 deep": lambda n, r: (SHOT, _nested(1_000)),
        "NUL in die": lambda n, r: (SHOT, _json(shot(n, die="D\x001"))),
        "long data-matrix": lambda n, r: (SHOT, _json(shot(n, data_matrix="X" * 200))),
        "long machine level": lambda n, r: (
            f"castline.v1.{PLANT}.{'m' * 400}.shot",
            _json(shot(n, machine="m" * 400)),
        ),
        "device posing as the line": lambda n, r: (
            f"castline.v1.{PLANT}.{MACHINE}.verdict",
            _json({"v": 1, "plant": PLANT, "machine": MACHINE, "shot_number": n, "verdict": "OK"}),
        ),
        "garbage availability": lambda n, r: (
            f"castline.v1.{PLANT}.{MACHINE}.availability",
            r.randbytes(8),
        ),
        "image on view verdict": lambda n, r: (
            f"{image_subject}.verdict",
            _image(n, "verdict", "image/jpeg", JPEG),
        ),
        "JPEG labelled PNG": lambda n, r: (
            f"{image_subject}.front",
            _image(n, "front", "image/png", JPEG),
        ),
        "PNG labelled JPEG": lambda n, r: (
            f"{image_subject}.front",
            _image(n, "front", "image/jpeg", PNG_MAGIC + bytes(100)),
        ),
        "unknown kind": lambda n, r: (f"castline.v1.{PLANT}.{MACHINE}.shto", _json(shot(n))),
        "object in an unknown field": lambda n, r: (SHOT, _json(shot(n, extra={"a": [1]}))),
        "wrong version": lambda n, r: (SHOT, _json(shot(n, v=2))),
    }


CASES = tuple(_cases())


def messages(count: int, seed: int = 7, good_share: float = 0.5) -> Iterator[Sent]:
    """`count` messages, about `good_share` of them good shot records, the rest hostile;
    shot numbers are unique so every message stands for itself."""
    rng = random.Random(seed)
    cases = _cases()
    names = list(cases)
    for n in range(1, count + 1):
        if rng.random() < good_share:
            yield Sent(SHOT, _json(shot(n)), True, "good")
            continue
        name = names[rng.randrange(len(names))]
        subject, data = cases[name](n, rng)
        yield Sent(subject, data, False, name)


async def queue(nats_url: str, sent: list[Sent]) -> None:
    """Store the messages in the line's stream, as devices would have sent them."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    for message in sent:
        await js.publish(message.subject, message.data)
    await nc.close()
