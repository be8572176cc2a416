"""Decision: what arrives is joined into parts, and each part gets its verdict.

Pure of I/O to the outside: the decider neither publishes nor records. It asks the
record (through `recorded_die`) only for the die of a part whose shot went to another
worker of the group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict, Verdict
from castline.line.inspection import ActiveModels, Outcome, inspect, quarantine
from castline.line.join import Joiner, Unjoined
from castline.messaging import limits

DIE_LOOKUPS = 11  # a photo before its shot record waits up to 10 x 30 ms for the part's die
DIE_LOOKUP_WAIT_S = 0.03

RecordedDie = Callable[[PartKey], Awaitable[tuple[str, bool] | None]]
Hold = Callable[[PartKey, str | None, Verdict, str], tuple[Verdict, str]]


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: PartVerdict
    # The heat-map overlay is for people, not for the robot cell: drawn after it is told.
    draw_overlay: Callable[[], bytes] | None = None


def part_verdict(outcome: Outcome, arrived: datetime | None) -> PartVerdict:
    decided_at = datetime.now(UTC)
    latency = (decided_at - arrived).total_seconds() * 1e3 if arrived else None
    return PartVerdict(
        verdict=outcome.verdict,
        decided_at=decided_at,
        reason=limits.clean_text(outcome.reason),  # it may quote an exception
        score=outcome.score,
        model_version=outcome.model_version,
        latency_ms=latency,
        regions=outcome.regions,
        timings=outcome.timings,
    )


class Decider:
    def __init__(
        self,
        models: ActiveModels,
        joiner: Joiner,
        deadline_s: float,
        executor: Executor,
        recorded_die: RecordedDie,
    ) -> None:
        self.models = models
        self.joiner = joiner
        self.deadline_s = deadline_s
        self.executor = executor
        self.recorded_die = recorded_die
        self.hold: Hold | None = None  # the envelope rule (line/curve_check.py), if set

    def shot(self, shot: Shot) -> None:
        """The part's die is known at once, even if its record has to wait."""
        self.joiner.shot(shot.key, shot.die, time.monotonic(), shot.trial)

    def mounted(self, plant: str, machine: str, die: str) -> None:
        self.joiner.mounted(plant, machine, die)

    def forget(self, key: PartKey) -> None:
        """A shot that was dead-lettered makes no part: nothing is decided for it."""
        self.joiner.forget(key)

    async def photo(self, key: PartKey, view: str, data: bytes, arrived: datetime) -> Decision:
        """Decide a part from its photo, within the deadline counted from `arrived`."""
        self.joiner.image(key, view, time.monotonic())
        remaining = self.deadline_s - (datetime.now(UTC) - arrived).total_seconds()
        die, trial = await self._die_of(key)
        if trial:
            outcome = Outcome(Verdict.NG, "warm-up (trial) shot: scrapped by rule")
        else:
            outcome = await inspect(self.models, die, view, data, remaining, self.executor)
            if self.hold is not None:  # the shot's curve may hold a part the photo passes
                verdict, reason = self.hold(key, die, outcome.verdict, outcome.reason)
                outcome = replace(outcome, verdict=verdict, reason=reason)
        return Decision(part_verdict(outcome, arrived), outcome.draw_overlay)

    def expired(self) -> list[Unjoined]:
        return self.joiner.expire(time.monotonic())

    def unreadable(self, key: PartKey, view: str, reason: str) -> PartVerdict:
        """A photo came but cannot be inspected."""
        self.joiner.image(key, view, time.monotonic())
        return part_verdict(quarantine(f"photo refused: {reason}"), None)

    def photo_missing(self) -> PartVerdict:
        reason = f"no casting image within {self.joiner.window_s:.0f} s of the shot"
        return part_verdict(quarantine(reason), None)

    async def _die_of(self, key: PartKey) -> tuple[str | None, bool]:
        """The die that made the part, and whether it was a trial shot. In a group of
        workers another one may have the part's shot record, and may be recording it right
        now: the record knows it a moment later."""
        for attempt in range(DIE_LOOKUPS):
            if self.joiner.has_shot(key):
                break
            recorded = await self.recorded_die(key)
            if recorded is not None:
                return recorded
            if attempt < DIE_LOOKUPS - 1:
                await asyncio.sleep(DIE_LOOKUP_WAIT_S)
        return self.joiner.die_of(key), self.joiner.is_trial(key)
