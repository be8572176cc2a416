"""Decision: what arrives is joined into parts, and each part gets its verdict.

Pure of I/O to the outside: the decider neither publishes nor records. It asks the
record (through `recorded_die`) only for the die of a part whose shot went to another
worker of the group, and (through `recorded_mount`) for the die on a machine none of whose
shots it has seen.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict, Verdict, combine
from castline.line.inspection import ActiveModels, Outcome, inspect, quarantine
from castline.line.join import Joiner, Unjoined, UnknownPart
from castline.messaging import limits
from castline.messaging.schema import ImageMessage

DIE_LOOKUP_WAIT_S = 0.03  # between looks for a shot that has not come yet
RECORD_EVERY = 5  # looks in memory per look in the record (a query): 150 ms apart
MARK_WAIT_S = 0.3  # for a code's shot, when the photo's deadline is not known
INSPECT_RESERVE_S = 0.5  # of the deadline, kept for inspection when waiting for a shot

RecordedDie = Callable[[PartKey], Awaitable[tuple[str, bool] | None]]
Hold = Callable[[PartKey, str | None, Verdict, str], tuple[Verdict, str]]
RecordedMark = Callable[[str, str, str], Awaitable[PartKey | None]]  # plant, machine, code
RecordedMount = Callable[[str, str], Awaitable[str | None]]  # plant, machine -> die


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
        self.recorded_mark: RecordedMark | None = None  # the record's part of a code
        self.recorded_mount: RecordedMount | None = None  # the record's die on a machine

    def shot(self, shot: Shot) -> None:
        """The parts' die (and marks) are known at once, even if the record has to wait."""
        self.joiner.shot(shot.key, shot.die, time.monotonic(), shot.trial, shot.parts())

    def mounted(self, plant: str, machine: str, die: str) -> None:
        self.joiner.mounted(plant, machine, die)

    def forget(self, key: PartKey, cavities: int = 1) -> None:
        """A shot that was dead-lettered makes no part: nothing is decided for it."""
        self.joiner.forget(key, [key.of_cavity(c) for c in range(1, cavities + 1)])

    async def part_of(self, photo: ImageMessage, arrived: datetime | None = None) -> PartKey:
        """The part a photo shows. The data-matrix code the camera read wins over the
        shot number it gives (a cooling rack reorders castings between the machine and the
        camera); a code no shot names falls back to the shot number, if there is one. The
        code's shot is waited for within the photo's deadline (less the inspection's
        reserve) when `arrived` is given, else for a moment."""
        wait_until = time.monotonic() + (
            MARK_WAIT_S if arrived is None else self._shot_wait_s(arrived)
        )
        if photo.data_matrix is not None:
            found = await self._marked(photo.plant, photo.machine, photo.data_matrix, wait_until)
            if found is not None:
                return found
        key = photo.part()
        if key is None:
            raise UnknownPart(
                f"data-matrix code {limits.clip(photo.data_matrix or '', 40)!r} names no "
                f"shot of {photo.plant}/{photo.machine}, and the photo gives no shot number"
            )
        if arrived is not None:  # its shot may name its mark
            await self._shot_of(key, arrived)
        return self.joiner.with_mark(key)

    async def _marked(
        self, plant: str, machine: str, code: str, wait_until: float
    ) -> PartKey | None:
        """The part a code marks: this worker's recent shots, else the record (another
        worker of the group may be recording the shot right now)."""
        for look in itertools.count():
            found = self.joiner.marked(plant, code)
            last = time.monotonic() >= wait_until
            asks = look % RECORD_EVERY == 0 or last
            if found is None and asks and self.recorded_mark is not None:
                found = await self.recorded_mark(plant, machine, code)
            if found is not None or last:
                break
            await asyncio.sleep(DIE_LOOKUP_WAIT_S)
        return found

    def _shot_wait_s(self, arrived: datetime, key: PartKey | None = None) -> float:
        """How long a photo may still wait for its shot: until half its deadline has
        passed (and never into the inspection's reserve), and, while no die is known for
        `key` at all, up to the reserve: without the shot it could only be held. A worker
        that died holding the shot gives it back after the records' ack wait (1 s), as it
        gives back the photo: the shot of a die not known here comes in time."""
        elapsed = (datetime.now(UTC) - arrived).total_seconds()
        until = self.deadline_s - INSPECT_RESERVE_S
        if key is None or self.joiner.die_of(key) is not None:
            until = min(self.deadline_s / 2, until)
        return until - elapsed

    def views_expected(self, key: PartKey) -> int:
        return self.joiner.views_expected(key)

    def combined(self, views: dict[str, PartVerdict], arrived: datetime) -> PartVerdict:
        """One verdict of a part from its views' verdicts: the worst view decides (of
        equally bad views, the one with the highest score)."""
        worst = combine([v.verdict for v in views.values()])
        view, decisive = max(
            ((n, v) for n, v in views.items() if v.verdict is worst),
            key=lambda nv: nv[1].score if nv[1].score is not None else float("-inf"),
        )
        reason = f"worst of {len(views)} views ({', '.join(sorted(views))}): {view}: "
        outcome = Outcome(worst, reason + decisive.reason, decisive.score, decisive.model_version)
        return part_verdict(replace(outcome, regions=decisive.regions), arrived)

    async def photo(self, key: PartKey, view: str, data: bytes, arrived: datetime) -> Decision:
        """Decide a part from its photo, within the deadline counted from `arrived`."""
        self.joiner.image(key, view, time.monotonic())
        die, trial = await self._shot_of(key, arrived)
        remaining = self.deadline_s - (datetime.now(UTC) - arrived).total_seconds()
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

    def photo_missing(self, unjoined: Unjoined | None = None) -> PartVerdict:
        """QUARANTINE for a part whose photos did not all come within the window."""
        window = f"within {self.joiner.window_s:.0f} s of the shot"
        reason = f"no casting image {window}"
        if unjoined is not None and unjoined.views:
            expected = self.joiner.views_expected(unjoined.key)
            came = ", ".join(unjoined.views)
            reason = f"only {len(unjoined.views)} of {expected} views {window} ({came})"
        return part_verdict(quarantine(reason), None)

    async def _shot_of(self, key: PartKey, arrived: datetime) -> tuple[str | None, bool]:
        """The part's die and trial flag, its shot waited for within the photo's deadline.
        A worker that has seen none of the machine's shots (it has just started, or they
        went to another worker of the group) first learns the die mounted there from the
        record, as a worker that saw them knows it: a part whose own shot is late (held by
        a worker that died) is then inspected, not held for want of its die."""
        if self.joiner.die_of(key) is None and self.recorded_mount is not None:
            mounted = await self.recorded_mount(key.plant, key.machine)
            if mounted is not None:
                self.joiner.mounted(key.plant, key.machine, mounted)
        return await self._die_of(key, time.monotonic() + self._shot_wait_s(arrived, key))

    async def _die_of(self, key: PartKey, wait_until: float) -> tuple[str | None, bool]:
        """The die that made the part, and whether it was a trial shot: from the part's
        own shot record, waited for until `wait_until` (monotonic). Shots and photos come
        by different queues and the shots' may be behind; a photo judged before its shot
        would miss what only the shot says (a trial shot is scrap by rule, whatever its
        photo shows). In a group of workers another one may have the shot, and may be
        recording it right now: the record knows it a moment later. A shot that never
        comes leaves the die mounted on the machine, and no trial flag."""
        for look in itertools.count():
            if self.joiner.has_shot(key):
                break
            last = time.monotonic() >= wait_until
            if look % RECORD_EVERY == 0 or last:  # the record is asked less often than memory
                recorded = await self.recorded_die(key)
                if recorded is not None:
                    return recorded
            if last:
                break
            await asyncio.sleep(DIE_LOOKUP_WAIT_S)
        return self.joiner.die_of(key), self.joiner.is_trial(key)
