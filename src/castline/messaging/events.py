"""Live events of the line for dashboards: core NATS, outside the stream.

The line tells what it did (a shot recorded, a part decided, a state changed) on
`castline.events.v1.<plant>.<machine>.<kind>`. Nothing keeps these: a dashboard that is
not listening misses them and reads the record instead. Because they are plain NATS, a
dashboard in another process or on another host sees the same events as one beside the
line. The dashboard shows them under the protocol's MQTT topic names.
"""

from __future__ import annotations

import json
from typing import Any

from castline.messaging.topics import PREFIX, Kind

ROOT = "castline.events.v1"
ALL = f"{ROOT}.>"


def subject(plant: str, machine: str, kind: Kind) -> str:
    return f"{ROOT}.{plant}.{machine}.{kind.value}"


def topic_of(event_subject: str) -> str:
    """The protocol topic an event is shown under: `castline/v1/<plant>/<machine>/<kind>`."""
    rest = event_subject.removeprefix(ROOT + ".")
    return f"{PREFIX}/{rest.replace('.', '/')}"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, default=str, separators=(",", ":")).encode()
