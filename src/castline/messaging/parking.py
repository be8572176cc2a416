"""The parking stream: where a message goes that could not even be dead-lettered.

Dead-lettering writes to the database; if that write fails for a reason of the message's
own (not the database being away), the message is parked here with the reason and then
acknowledged, so no message can stop the line. An operator reads the parking stream with
`castline line parked` (or any NATS client: `nats stream view CASTLINE_PARKED`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamState,
)
from nats.js.errors import NotFoundError

STREAM = "CASTLINE_PARKED"
ROOT = "castline.parked.v1"
MAX_BYTES = 256 * 1024**2  # oldest parked messages give way first
MAX_REASON = 1_000


async def park(js: JetStreamContext, subject: str, data: bytes, reason: str) -> None:
    """Keep `data` with where it came from and why it is here."""
    await _ensure(js)
    headers = {"Castline-Subject": _header(subject), "Castline-Reason": _header(reason)}
    await js.publish(f"{ROOT}.message", data, headers=headers)


@dataclass(frozen=True, slots=True)
class Parked:
    at: datetime  # when it was parked (UTC)
    subject: str  # where it came from
    reason: str
    size: int  # bytes kept (a bridge keeps the head of a larger payload)
    head: bytes  # the first bytes, for a person to see what sent it


async def latest(js: JetStreamContext, count: int, head: int = 200) -> list[Parked]:
    """The newest `count` parked messages, oldest first (none before the first is parked)."""
    state = await _state(js)
    if state is None:
        return []
    last = state.last_seq
    found = []
    for seq in range(max(state.first_seq, last - count + 1), last + 1):
        try:
            msg = await js.get_msg(STREAM, seq)
        except NotFoundError:  # given way to newer ones meanwhile
            continue
        headers, data = msg.headers or {}, msg.data or b""
        at = msg.time.astimezone(UTC) if msg.time else datetime.now(UTC)
        subject, reason = headers.get("Castline-Subject", ""), headers.get("Castline-Reason", "")
        found.append(Parked(at, subject, reason, len(data), data[:head]))
    return found


async def parked(js: JetStreamContext) -> int:
    """How many messages the parking stream holds (none before the first is parked)."""
    state = await _state(js)
    return 0 if state is None else int(state.messages)


async def _state(js: JetStreamContext) -> StreamState | None:
    try:
        return (await js.stream_info(STREAM)).state
    except NotFoundError:
        return None


async def _ensure(js: JetStreamContext) -> None:
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=STREAM,
                subjects=[f"{ROOT}.>"],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_bytes=MAX_BYTES,
                discard=DiscardPolicy.OLD,
            )
        )


def _header(text: str) -> str:
    """Header values are one line of printable text."""
    return "".join(c if c.isprintable() else " " for c in text)[:MAX_REASON]
