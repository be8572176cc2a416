"""Pulling a batch from a JetStream consumer, and acknowledging one, at the rate records come.

nats-py's `PullSubscription.fetch(n)` waits for each of the n messages with a timer of its
own (`asyncio.wait_for` around a queue read): at thousands of records a second that timer
costs as much as the rest of the fetch. Here, when messages are waiting, one `no_wait`
pull request is sent and its answer read straight from the subscription's queue, under
one deadline for the whole batch; when none are waiting, nats-py's own lingering fetch
waits for them (speed does not matter then). The line's worker and the benchmark's raw
reference (`benchmarks/bench_record.py`) both pull and acknowledge this way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext


async def fetch(sub: Any, size: int, timeout: float) -> list[Msg]:
    """Up to `size` messages of a pull subscription; raises nats' TimeoutError when none
    came within `timeout`, like `fetch`."""
    if not _has_internals(sub):  # another nats-py: its own fetch, slower, same answer
        msgs: list[Msg] = await sub.fetch(batch=size, timeout=timeout)
        return msgs
    msgs = await _waiting(sub, size, timeout)
    if msgs:
        return msgs
    msgs = await sub.fetch(batch=size, timeout=timeout)
    return msgs


async def ack_all(msgs: Sequence[Msg]) -> int:
    """Acknowledge each message; returns how many acks were handed to the client. An ack
    is a publish into the client's buffer (written out by its flusher, together), so a
    plain loop costs no task and no round trip per message. One that fails (the broker
    away) is redelivered later and written again as a no-op."""
    done = 0
    for msg in msgs:
        try:
            await msg.ack()
            done += 1
        except Exception:  # redelivered after the ack wait: idempotent
            continue
    return done


def _has_internals(sub: Any) -> bool:
    inner = getattr(sub, "_sub", None)
    return all(hasattr(sub, a) for a in ("_nc", "_nms", "_deliver")) and hasattr(
        inner, "_pending_queue"
    )


async def _waiting(sub: Any, size: int, timeout: float) -> list[Msg]:
    """What the consumer has ready now: left in the queue by an earlier pull first, then
    one `no_wait` request for the rest, read until the batch is full or the server says
    it has no more (a status message)."""
    queue: asyncio.Queue[Msg] = sub._sub._pending_queue
    msgs: list[Msg] = []
    _read(sub, queue, size, msgs, ending=False)  # statuses here answer earlier requests
    if len(msgs) >= size:
        return msgs
    request = json.dumps({"batch": size - len(msgs), "no_wait": True}).encode()
    await sub._nc.publish(sub._nms, request, sub._deliver)
    try:
        async with asyncio.timeout(timeout):  # one deadline for the batch, not one a message
            while len(msgs) < size:
                first = await queue.get()  # one wait for what is in flight, then the rest
                if _take(sub, first, msgs, ending=True) or _read(sub, queue, size, msgs, True):
                    break
    except TimeoutError:
        pass  # the server did not finish in time: what came is returned
    return msgs


def _read(sub: Any, queue: asyncio.Queue[Msg], size: int, msgs: list[Msg], ending: bool) -> bool:
    """Messages already in the client's queue, without waiting, into `msgs`; True when
    (`ending`) a status said this request is over."""
    while len(msgs) < size and not queue.empty():
        if _take(sub, queue.get_nowait(), msgs, ending):
            return True
    return False


def _take(sub: Any, msg: Msg, msgs: list[Msg], ending: bool) -> bool:
    """A message into `msgs`, or a status: heartbeats are skipped, and so are statuses
    that answer an earlier request (`ending` False); any other ends this request."""
    sub._sub._pending_size -= len(msg.data)
    status = JetStreamContext.is_status_msg(msg)
    if not status:
        msgs.append(msg)
        return False
    return ending and status != api.StatusCode.CONTROL_MESSAGE
