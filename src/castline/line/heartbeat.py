"""In progress: what a worker is handling, said to JetStream while it takes its time.

Both of the line's consumers have short ack waits (photos and records: 1 s), so a worker
that dies hands its messages on at once: a photo's verdict is due 2 s after it came, and a
photo may wait for its shot. A live worker that is merely slow (a loaded machine, a
database that answers late, a record batch waiting on a lock) must not lose its messages
the same way: every message held longer than HEARTBEAT_S is said to be in progress, again
every HEARTBEAT_S. Messages handled faster (nearly all) cost no heartbeat at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Hashable, Sequence

from nats.aio.msg import Msg

HEARTBEAT_S = 0.3  # well inside the 1 s ack waits, even with a late tick
TICK_S = 0.1


class Heartbeat:
    def __init__(self) -> None:
        # owner (a photo's task, a batch's writer) -> its messages and when last said
        self._held: dict[Hashable, tuple[Sequence[Msg], float]] = {}

    def hold(self, owner: Hashable, msgs: Sequence[Msg]) -> None:
        self._held[owner] = (msgs, time.monotonic())

    def held(self, owner: Hashable) -> Sequence[Msg]:
        """The messages `owner` holds (none once released)."""
        return self._held.get(owner, ((), 0.0))[0]

    def release(self, owner: Hashable) -> None:
        self._held.pop(owner, None)

    def __len__(self) -> int:
        return sum(len(msgs) for msgs, _ in self._held.values())

    async def run(self) -> None:
        """Until cancelled: each held message at most every HEARTBEAT_S, none earlier."""
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            for owner, (msgs, said) in list(self._held.items()):
                if now - said < HEARTBEAT_S:
                    continue
                if owner in self._held:  # not released meanwhile (awaited below)
                    self._held[owner] = (msgs, now)
                for msg in msgs:
                    with contextlib.suppress(Exception):  # acked meanwhile, or broker away
                        await msg.in_progress()
