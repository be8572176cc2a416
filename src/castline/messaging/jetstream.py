"""JetStream layout of castline: one stream holds everything devices send.

The stream captures all of `castline.v1.>` (not only known topics), so a message on a
mistyped topic is kept and dead-lettered by the line instead of vanishing. A durable pull
consumer is the line's work queue: several runtime processes bound to it share the work,
and a message is acknowledged only after its record is durable.
"""

from __future__ import annotations

from datetime import timedelta

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

STREAM = "CASTLINE"
SUBJECTS = ["castline.v1.>"]
LINE_CONSUMER = "line"
ACK_WAIT_S = 10.0  # a worker that died hands its parts on after this (a part takes < 1 s)
MAX_AGE = timedelta(days=7)  # history kept for replay (re-inspect with a new model)


async def ensure_stream(js: JetStreamContext, replicas: int = 1) -> None:
    config = StreamConfig(
        name=STREAM,
        subjects=SUBJECTS,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=MAX_AGE.total_seconds(),
        num_replicas=replicas,
        duplicate_window=120.0,
    )
    try:
        await js.stream_info(STREAM)  # exists: its replicas and limits are the operator's
    except NotFoundError:
        await js.add_stream(config)


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
        await js.consumer_info(STREAM, name)
    except NotFoundError:
        await js.add_consumer(STREAM, config)
    return name
