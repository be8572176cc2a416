"""JetStream layout of castline: one stream holds everything devices send.

The stream captures all of `castline.v1.>` (not only known topics), so a message on a
mistyped topic is kept and dead-lettered by the line instead of vanishing. A durable pull
consumer is the line's work queue: several runtime processes bound to it share the work,
and a message is acknowledged only after its record is durable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

STREAM = "CASTLINE"
# What devices send (the line's work) and what castline says (verdicts), kept for replay
# and the central site; the line consumes only the first.
SUBJECTS = ["castline.v1.>", "castline.out.v1.>"]
LINE_CONSUMER = "line"
# A worker that died hands its records on after this: a photo waits for its shot within
# its deadline (2 s), so the shot must come back as fast as the photo does. A live worker
# says of records it is still writing that they are in progress (line/heartbeat.py).
ACK_WAIT_S = 1.0
# Photos have a consumer of their own: a verdict is due 2 s after the photo came, so a dead
# worker's photos must come back well before that. A worker holds only the photos it is
# deciding and says so (in progress) while it does; nothing waits behind a batch of records.
PHOTO_CONSUMER = "photos"
PHOTO_ACK_WAIT_S = 1.0
MAX_AGE = timedelta(days=7)  # history kept for replay (re-inspect with a new model)
MAX_BYTES = 2 * 1024**3  # beyond it the oldest messages go: the disk never fills
FULL_ALARM = 0.8  # a stream this full says so


async def ensure_stream(
    js: JetStreamContext,
    replicas: int = 1,
    max_bytes: int | None = None,
    max_age: timedelta | None = None,
) -> None:
    """Create the stream, or bring the size and age limits of an existing one to those given.

    A caller that gives no limits leaves an existing stream's as they are (its replicas are
    always the operator's), except a stream without any size limit: it gets the default,
    since an unbounded stream fills the disk in days.
    """
    config = StreamConfig(
        name=STREAM,
        subjects=SUBJECTS,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        max_age=(max_age or MAX_AGE).total_seconds(),
        max_bytes=max_bytes or MAX_BYTES,
        num_replicas=replicas,
        duplicate_window=120.0,
    )
    try:
        info = await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(config)
        return
    current = info.config
    wanted_bytes = max_bytes or (MAX_BYTES if (current.max_bytes or -1) < 0 else current.max_bytes)
    wanted_age = max_age.total_seconds() if max_age is not None else current.max_age
    if (current.max_bytes, current.max_age) != (wanted_bytes, wanted_age):
        await js.update_stream(replace(current, max_bytes=wanted_bytes, max_age=wanted_age))


@dataclass(frozen=True, slots=True)
class StreamUsage:
    """How full the stream is against its size limit."""

    bytes: int
    max_bytes: int  # -1: no limit
    messages: int

    @property
    def fraction(self) -> float:
        return self.bytes / self.max_bytes if self.max_bytes > 0 else 0.0

    @property
    def alarm(self) -> str | None:
        """A sentence for people once the stream nears its limit (oldest history goes)."""
        if self.max_bytes <= 0:
            return "the stream has no size limit: it will fill the disk"
        if self.fraction < FULL_ALARM:
            return None
        return (
            f"the stream holds {self.bytes / 2**20:.0f} MiB of its {self.max_bytes / 2**20:.0f}"
            f" MiB limit ({self.fraction:.0%}): the oldest messages are being dropped"
            " or soon will be; raise stream_max_bytes or copy history off"
        )


async def stream_usage(js: JetStreamContext) -> StreamUsage:
    info = await js.stream_info(STREAM)
    return StreamUsage(
        bytes=info.state.bytes,
        max_bytes=info.config.max_bytes if info.config.max_bytes is not None else -1,
        messages=info.state.messages,
    )


async def ensure_line_consumer(js: JetStreamContext, plant: str | None = None) -> str:
    """The durable work queue of the line runtime(s) of one plant (or of all plants)."""
    name = LINE_CONSUMER if plant is None else f"{LINE_CONSUMER}-{plant}"
    subject = "castline.v1.>" if plant is None else f"castline.v1.{plant}.>"
    config = ConsumerConfig(
        durable_name=name,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ACK_WAIT_S,
        max_ack_pending=20_000,  # parts held back while the database is away count too
        filter_subject=subject,
    )
    try:
        info = await js.consumer_info(STREAM, name)
    except NotFoundError:
        await js.add_consumer(STREAM, config)
        return name
    if info.config.ack_wait != ACK_WAIT_S:
        # Made by an older castline (10 s). The ack wait is one of the settings JetStream
        # lets a durable consumer change in place; everything else is kept as it is.
        await js.add_consumer(STREAM, replace(info.config, ack_wait=ACK_WAIT_S))
    return name


def photo_filter(plant: str | None = None) -> str:
    """The subjects of casting photos (castline.v1.<plant>.<machine>.image.<view>)."""
    return f"castline.v1.{plant or '*'}.*.image.*"


def is_photo(subject: str) -> bool:
    """Whether the photo consumer takes this subject (the line's consumer skips it)."""
    parts = subject.split(".")
    return len(parts) == 6 and parts[4] == "image" and parts[0] == "castline" and parts[1] == "v1"


async def ensure_photo_consumer(js: JetStreamContext, plant: str | None = None) -> str:
    """The durable work queue of the casting photos, with its short ack wait. Made beside
    an older line consumer, it starts where that one's work stands (not a week back)."""
    name = PHOTO_CONSUMER if plant is None else f"{PHOTO_CONSUMER}-{plant}"
    try:
        await js.consumer_info(STREAM, name)
        return name
    except NotFoundError:
        pass
    start: dict[str, object] = {"deliver_policy": DeliverPolicy.ALL}
    try:
        line = await js.consumer_info(
            STREAM, LINE_CONSUMER if plant is None else f"{LINE_CONSUMER}-{plant}"
        )
        floor = line.ack_floor.stream_seq if line.ack_floor and line.ack_floor.stream_seq else 0
        if floor:
            start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": floor + 1}
    except NotFoundError:
        pass
    config = ConsumerConfig(
        durable_name=name,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=PHOTO_ACK_WAIT_S,
        max_ack_pending=20_000,  # photos given back while the database is away count too
        filter_subject=photo_filter(plant),
        **start,  # type: ignore[arg-type]
    )
    await js.add_consumer(STREAM, config)
    return name
