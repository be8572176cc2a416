"""Faults the simulator injects on demand, for testing everything downstream.

Each fault strikes a shot with the configured rate:

- late: the photograph arrives after the verdict deadline;
- duplicate: the shot record and the photograph are sent twice;
- out_of_order: the photograph is sent before the shot record;
- malformed: the shot record is replaced by an invalid payload (see `malformed`);
- camera_stop: the camera sends nothing for the next few shots;
- disconnect: the machine's MQTT connection drops and comes back a few seconds later;
- opcua_restart: the machine's OPC UA server stops and starts again.
"""

from __future__ import annotations

import json
from enum import StrEnum

import numpy as np


class Fault(StrEnum):
    LATE = "late"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    MALFORMED = "malformed"
    CAMERA_STOP = "camera_stop"
    DISCONNECT = "disconnect"
    OPCUA_RESTART = "opcua_restart"


def parse_faults(names: list[str]) -> tuple[Fault, ...]:
    try:
        return tuple(Fault(n) for n in names)
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise ValueError(f"unknown fault in {names}; known: {known}") from None


def strike(faults: tuple[Fault, ...], rate: float, rng: np.random.Generator) -> set[Fault]:
    """The faults that hit one shot (one draw per configured fault, always)."""
    draws = rng.random(len(faults))
    return {f for f, u in zip(faults, draws, strict=True) if u < rate}


# Ways a shot record goes bad, each one rejected by the v1 schema for its own reason.
MALFORMED_KINDS = ("truncated", "not_json", "missing_field", "wrong_type", "version", "nan")


def malformed(payload: bytes, rng: np.random.Generator) -> bytes:
    """A broken copy of a valid JSON message, broken in one of the ways above."""
    return break_payload(payload, MALFORMED_KINDS[int(rng.integers(len(MALFORMED_KINDS)))])


def break_payload(payload: bytes, kind: str) -> bytes:
    if kind == "truncated":
        return payload[: len(payload) // 2]
    if kind == "not_json":
        return b"\x00\xff" + payload[:8]
    data = json.loads(payload)
    if kind == "missing_field":
        data.pop("ts")
    elif kind == "wrong_type":
        data["shot_number"] = "shot " + str(data["shot_number"])
    elif kind == "version":
        data["v"] = 99
    elif kind == "nan":
        data.setdefault("params", {})["melt_temp_c"] = float("nan")
    else:
        raise ValueError(f"unknown kind of malformed message {kind!r}")
    return json.dumps(data).encode()  # NaN is written as the bare word NaN
