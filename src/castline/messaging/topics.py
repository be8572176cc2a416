"""Topic namespace of protocol v1, shared by MQTT, NATS and the web socket.

MQTT topics use "/"; the NATS MQTT listener maps them to subjects with ".", so
`castline/v1/p1/m1/shot` is the NATS subject `castline.v1.p1.m1.shot`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "castline/v1"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Kind(StrEnum):
    SHOT = "shot"  # machine -> castline: process data of one cycle
    IMAGE = "image"  # camera -> castline: a casting photograph (topic ends with the view)
    VERDICT = "verdict"  # castline -> robot cell: OK / NG / REVIEW / QUARANTINE
    STATE = "state"  # machine -> castline: machine state change (retained)
    CELL = "cell"  # robot cell -> castline: where the part went
    TRUTH = "truth"  # simulator only: ground truth of a part, for evaluation
    AVAILABILITY = "availability"  # retained "online"/"offline", last will


def valid_id(value: str) -> bool:
    """Plant, machine and view ids go into topics: letters, digits, '_' and '-' only."""
    return bool(_ID.match(value))


def check_id(value: str, what: str) -> str:
    if not valid_id(value):
        raise ValueError(f"{what} id {value!r} may hold only letters, digits, '_' and '-'")
    return value


def topic(plant: str, machine: str, kind: Kind, view: str | None = None) -> str:
    check_id(plant, "plant")
    check_id(machine, "machine")
    if kind is Kind.IMAGE:
        if view is None:
            raise ValueError("an image topic needs a camera view")
        return f"{PREFIX}/{plant}/{machine}/image/{check_id(view, 'view')}"
    return f"{PREFIX}/{plant}/{machine}/{kind.value}"


def plant_topic(plant: str, kind: Kind) -> str:
    """Plant-level topics (availability of castline itself)."""
    return f"{PREFIX}/{check_id(plant, 'plant')}/{kind.value}"


def wildcard(kind: Kind, plant: str = "+", machine: str = "+") -> str:
    """MQTT subscription for one kind of message from every machine."""
    suffix = "image/+" if kind is Kind.IMAGE else kind.value
    return f"{PREFIX}/{plant}/{machine}/{suffix}"


@dataclass(frozen=True, slots=True)
class Route:
    plant: str
    machine: str
    kind: Kind
    view: str | None = None


def parse(name: str) -> Route:
    """Parse an MQTT topic or NATS subject of protocol v1; ValueError says what is wrong."""
    parts = name.replace(".", "/").split("/")
    if parts[:2] != ["castline", "v1"]:
        raise ValueError(f"topic {name!r} is not in the castline/v1 namespace")
    rest = parts[2:]
    if len(rest) == 3 and rest[2] in Kind.__members__.values() and rest[2] != "image":
        return Route(check_id(rest[0], "plant"), check_id(rest[1], "machine"), Kind(rest[2]))
    if len(rest) == 4 and rest[2] == "image":
        return Route(rest[0], rest[1], Kind.IMAGE, check_id(rest[3], "view"))
    raise ValueError(f"topic {name!r} is not a known castline/v1 topic")


def to_subject(mqtt_topic: str) -> str:
    return mqtt_topic.replace("/", ".")


def to_mqtt(subject: str) -> str:
    return subject.replace(".", "/")
