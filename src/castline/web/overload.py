"""Whether the line keeps up: a sliding minute of the inspection backlog and of verdicts.

The line cannot keep up when, over the last minute, the backlog of parts waiting for
inspection kept growing, or more than a few percent of the verdicts were QUARANTINE because
the verdict deadline passed (the robot cell put the part on the quarantine rack without
waiting for castline). Either is said on every page and, under `castline up`, in its log,
with what to change.

`LineLoad` is the rule, fed with plain numbers (a test can drive it); `LoadMonitor` feeds
it from what the dashboard already receives: the line's verdict events from the hub and
the backlog the dashboard reads from JetStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from castline.cli_text import say
from castline.domain.verdict import Verdict
from castline.messaging.backlog import BacklogWatch
from castline.messaging.topics import Kind, parse
from castline.web.live import Hub
from castline.web.reasons import ReasonCode, understand

WINDOW_S = 60.0
LATE_SHARE = 0.03  # more quarantined for lateness than this: the line is too slow
MIN_VERDICTS = 20  # fewer verdicts than this in the window: too few to judge a share
GROWTH_PARTS = 20  # the backlog grew by at least this many parts over the window
LATE = {ReasonCode.LATE_START, ReasonCode.TOO_SLOW, ReasonCode.CELL_TIMEOUT}


@dataclass(frozen=True, slots=True)
class Overload:
    """What shows that the line cannot keep up, over the last `window_s` seconds."""

    window_s: float
    backlog_from: int | None  # set when the backlog kept growing
    backlog_to: int | None
    late: int  # verdicts QUARANTINE because the deadline passed
    verdicts: int

    @property
    def late_share(self) -> float:
        return self.late / self.verdicts if self.verdicts else 0.0

    @property
    def growing(self) -> bool:
        return self.backlog_from is not None


class LineLoad:
    """The sliding window and the rule; times are monotonic seconds."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._backlog: deque[tuple[float, int]] = deque()
        self._verdicts: deque[tuple[float, bool]] = deque()

    def backlog(self, at: float, parts: int) -> None:
        self._backlog.append((at, parts))
        self._forget(at)

    def verdict(self, at: float, late: bool) -> None:
        self._verdicts.append((at, late))
        self._forget(at)

    def _forget(self, now: float) -> None:
        for window in (self._backlog, self._verdicts):
            while window and window[0][0] < now - self.window_s:
                window.popleft()

    def overload(self, now: float) -> Overload | None:
        """Overloaded now, and why; None while the line keeps up."""
        self._forget(now)
        late = sum(1 for _, was_late in self._verdicts if was_late)
        verdicts = len(self._verdicts)
        too_late = verdicts >= MIN_VERDICTS and late > LATE_SHARE * verdicts
        grew = self._growth()
        if not too_late and grew is None:
            return None
        start, end = grew or (None, None)
        return Overload(self.window_s, start, end, late, verdicts)

    def _growth(self) -> tuple[int, int] | None:
        """(first, last) backlog when it grew all minute: the samples span most of the
        window, the last is GROWTH_PARTS above the first and at least the first half's
        highest, and the second half never fell to the first half's lowest (a burst that
        is being worked off is no overload)."""
        samples = list(self._backlog)
        if len(samples) < 3 or samples[-1][0] - samples[0][0] < 0.75 * self.window_s:
            return None
        before, after = [n for _, n in samples[: len(samples) // 2]], [n for _, n in samples]
        after = after[len(before) :]
        first, last = samples[0][1], samples[-1][1]
        if last - first >= GROWTH_PARTS and last >= max(before) and min(after) > min(before):
            return first, last
        return None


def is_late(payload: dict[str, object]) -> bool:
    """A verdict event of a part quarantined because its verdict came too late."""
    if payload.get("verdict") != Verdict.QUARANTINE.value:
        return False
    reason = payload.get("reason")
    return understand(reason if isinstance(reason, str) else None).code in LATE


class LoadMonitor:
    """Feeds a LineLoad from the dashboard's hub and backlog watch until told to stop."""

    def __init__(self, hub: Hub, backlog: BacklogWatch, every_s: float = 2.0) -> None:
        self.hub, self.watch, self.every_s = hub, backlog, every_s
        self.load = LineLoad()

    def now(self) -> Overload | None:
        return self.load.overload(time.monotonic())

    async def run(self, stop: asyncio.Event) -> None:
        sampler = asyncio.create_task(self._sample(stop))
        with self.hub.subscribe(_verdicts_only) as events:
            while not stop.is_set():
                event = await events.get(timeout=0.5)
                if event is not None and _recent(event.payload, self.load.window_s):
                    self.load.verdict(time.monotonic(), is_late(event.payload))
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler

    async def _sample(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.watch.latest:
                parts = sum(b.total for b in self.watch.latest.values())
                self.load.backlog(time.monotonic(), parts)
            await asyncio.sleep(self.every_s)


def _verdicts_only(topic: str) -> bool:
    try:
        return parse(topic).kind is Kind.VERDICT
    except ValueError:
        return False


def _recent(payload: dict[str, object], window_s: float) -> bool:
    """Decided within the window: the hub's retained last verdicts of a page's start are
    older and are not counted again."""
    try:
        decided = datetime.fromisoformat(str(payload["decided_at"]))
    except (KeyError, ValueError):
        return False
    if decided.tzinfo is None:
        return False
    return (datetime.now(UTC) - decided).total_seconds() <= window_s


def advice(found: Overload, machines: int, speed: float) -> str:
    """One log line for `castline up`: what shows the overload and what to change, in
    figures (the share of the load the line kept up with, at most two thirds)."""
    seen = []
    if found.growing:
        seen.append(say("load.backlog", start=found.backlog_from, end=found.backlog_to))
    if found.late:
        share = f"{found.late_share:.0%}"
        seen.append(say("load.late", late=found.late, verdicts=found.verdicts, share=share))
    keep = min(2 / 3, 1 - found.late_share) if found.late else 2 / 3
    return say(
        "load.behind",
        seen=say("load.and").join(seen),
        machines_to=max(1, int(machines * keep)),
        machines=machines,
        speed_to=f"{speed * keep:.3g}",
        speed=f"{speed:g}",
    )


async def warn_while_overloaded(
    monitor: LoadMonitor,
    machines: int,
    speed: float,
    stop: asyncio.Event,
    every_s: float = 10.0,
    repeat_s: float = 60.0,
) -> None:
    """Print the advice when the line falls behind, again each `repeat_s` while it stays
    behind, and once when it keeps up again."""
    said_at: float | None = None
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        found, now = monitor.now(), time.monotonic()
        if found is not None and (said_at is None or now - said_at >= repeat_s):
            print(advice(found, machines, speed), flush=True)
            said_at = now
        elif found is None and said_at is not None:
            print(say("load.ok"), flush=True)
            said_at = None
