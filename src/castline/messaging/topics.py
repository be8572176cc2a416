"""Topic namespace of protocol v1, shared by MQTT, NATS and the web socket.

MQTT topics use "/"; the NATS MQTT listener maps them to subjects with ".", so
`castline/v1/p1/m1/shot` is the NATS subject `castline.v1.p1.m1.shot`.

Two namespaces: `castline/v1/...` is what devices send and the line consumes;
`castline/out/v1/...` is what castline itself publishes (verdicts, its availability),
kept apart so the line never consumes its own output and a device cannot pose as it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from castline.domain.ids import check_id, shown

PREFIX = "castline/v1"
OUTPUT_PREFIX = "castline/out/v1"
SUBJECTS = "castline.v1.>"  # everything devices send
OUTPUT_SUBJECTS = "castline.out.v1.>"  # everything castline publishes
MAX_TOPIC = 300  # longer names are refused before they are looked at (and fit the store)


class Kind(StrEnum):
    SHOT = "shot"  # machine -> castline: process data of one cycle
    IMAGE = "image"  # camera -> castline: a casting photograph (topic ends with the view)
    VERDICT = "verdict"  # castline -> robot cell: OK / NG / REVIEW / QUARANTINE
    STATE = "state"  # machine -> castline: machine state change (retained)
    CELL = "cell"  # robot cell -> castline: where the part went
    TRUTH = "truth"  # simulator only: ground truth of a part, for evaluation
    AVAILABILITY = "availability"  # retained "online"/"offline", last will
    DOWNSTREAM = "downstream"  # station (X-ray, leak test, ...) -> castline: a part's result
    ALARM = "alarm"  # castline -> dashboards: an alarm raised or repeated (live events only)


KINDS = frozenset(k.value for k in Kind)
INPUT_KINDS = frozenset(
    {Kind.SHOT, Kind.IMAGE, Kind.STATE, Kind.CELL, Kind.TRUTH, Kind.AVAILABILITY, Kind.DOWNSTREAM}
)
LINE_KINDS = frozenset({Kind.VERDICT, Kind.ALARM})  # only castline publishes these


def check_view(value: str) -> str:
    """A camera view is the last topic level: an id that is not a kind of message."""
    check_id(value, "view")
    if value in KINDS:
        raise ValueError(f"view {shown(value)} is the name of a message kind; name it otherwise")
    return value


def topic(plant: str, machine: str, kind: Kind, view: str | None = None) -> str:
    check_id(plant, "plant")
    check_id(machine, "machine")
    if kind is Kind.IMAGE:
        if view is None:
            raise ValueError("an image topic needs a camera view")
        return f"{PREFIX}/{plant}/{machine}/image/{check_view(view)}"
    return f"{PREFIX}/{plant}/{machine}/{kind.value}"


def output_topic(plant: str, machine: str, kind: Kind = Kind.VERDICT) -> str:
    """Where castline publishes what it says about a machine's parts (verdicts)."""
    if kind not in LINE_KINDS:
        raise ValueError(f"castline publishes no {kind.value} messages per machine")
    return f"{OUTPUT_PREFIX}/{check_id(plant, 'plant')}/{check_id(machine, 'machine')}/{kind}"


def output_plant_topic(plant: str, kind: Kind = Kind.AVAILABILITY) -> str:
    """Plant-level topics of castline itself (its availability, last will)."""
    return f"{OUTPUT_PREFIX}/{check_id(plant, 'plant')}/{kind.value}"


def plant_topic(plant: str, kind: Kind) -> str:
    """Plant-level topics (availability of castline itself)."""
    return f"{PREFIX}/{check_id(plant, 'plant')}/{kind.value}"


def wildcard(kind: Kind, plant: str = "+", machine: str = "+") -> str:
    """MQTT subscription for one kind of message from every machine."""
    suffix = "image/+" if kind is Kind.IMAGE else kind.value
    return f"{PREFIX}/{plant}/{machine}/{suffix}"


def is_line_output(name: str) -> bool:
    """True for a topic or subject in castline's own output namespace (never input)."""
    return name.startswith((OUTPUT_PREFIX + "/", OUTPUT_PREFIX.replace("/", ".") + "."))


@dataclass(frozen=True, slots=True)
class Route:
    plant: str
    machine: str
    kind: Kind
    view: str | None = None
    output: bool = False  # in castline's output namespace


def parse(name: str) -> Route:
    """Parse an MQTT topic or NATS subject of protocol v1; ValueError says what is wrong.

    Every level is checked here (length and characters), so nothing unbounded from a
    topic reaches a reason, a record or a metric label."""
    if len(name) > MAX_TOPIC:
        raise ValueError(f"topic of {len(name)} characters is over the {MAX_TOPIC} allowed")
    parts = name.replace(".", "/").split("/")
    output = parts[:3] == ["castline", "out", "v1"]
    if output:
        rest = parts[3:]
    elif parts[:2] == ["castline", "v1"]:
        rest = parts[2:]
    else:
        raise ValueError(f"topic {shown(name)} is not in the castline/v1 namespace")
    if len(rest) == 2 and rest[1] == Kind.AVAILABILITY and not output:
        raise ValueError(
            f"only castline publishes a plant's availability (on {OUTPUT_PREFIX}/<plant>/...)"
        )
    allowed = LINE_KINDS if output else KINDS - {Kind.IMAGE}
    if len(rest) == 3 and rest[2] in allowed:
        plant, machine = check_id(rest[0], "plant"), check_id(rest[1], "machine")
        return Route(plant, machine, Kind(rest[2]), output=output)
    if len(rest) == 4 and rest[2] == Kind.IMAGE and not output:
        plant, machine = check_id(rest[0], "plant"), check_id(rest[1], "machine")
        return Route(plant, machine, Kind.IMAGE, check_view(rest[3]))
    raise ValueError(f"topic {shown(name)} is not a known castline/v1 topic")


def to_subject(mqtt_topic: str) -> str:
    return mqtt_topic.replace("/", ".")


def to_mqtt(subject: str) -> str:
    return subject.replace(".", "/")
