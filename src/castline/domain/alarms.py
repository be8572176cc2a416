"""Live alarms, as the plant sees them: the typed alarm, the sink anything may raise it
through, the causes a person names when acknowledging, and the gate that keeps alarms
few (one open alarm per key, repeats counted, new alarms rate limited).

Pure: no I/O. The line's edge (`line/alarms.py`) writes what the gate lets through.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

SEVERITIES = ("info", "warning", "critical")

# What an alarm says happened (the `rule` column of the alarms table).
RULE1 = "nelson1"  # one shot beyond the limits of its die and regime (as `report spc` names it)
DRIFT = "drift"  # EWMA or CUSUM: a slow move away from the centre line
LEVEL_SHIFT = "level_shift"  # the process sits at a new level: limits are learnt anew
QUARANTINE_RATE = "quarantine_rate"  # too many parts held without a trustworthy verdict
BACKLOG = "backlog"  # the line cannot keep up: parts wait past their deadline
ENVELOPE_BREACH = "envelope_breach"  # a shot curve outside its die's golden envelope

# The named causes a person chooses from when acknowledging (with a sentence of their own).
CAUSES = (
    "melt",  # furnace, ladle, alloy temperature
    "die_temperature",  # die heating/cooling, cold die, thermal oil
    "vacuum",
    "shot_unit",  # plunger, tip, accumulator, hydraulics
    "die_damage",
    "set_point_change",  # a person changed the recipe on purpose
    "sensor",  # the reading was wrong, not the process
    "material",
    "maintenance",
    "line_capacity",  # too few workers or cores for the hall
    "other",
)


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm report. `chart` is what is watched (a parameter, "quarantine",
    "backlog", "envelope", ...), `kind` what happened there (RULE1, DRIFT, ...).
    `at` and `last_at` are record times (UTC), not the clock of the worker."""

    plant: str
    machine: str | None
    die: str | None
    chart: str
    kind: str
    message: str
    at: datetime
    severity: str = "warning"
    count: int = 1  # times seen in this report
    last_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        if not self.chart or not self.kind:
            raise ValueError("an alarm needs the chart it is on and the kind of alarm")
        if self.at.tzinfo is None:
            raise ValueError("an alarm's time must carry its zone (UTC)")
        if self.count < 1:
            raise ValueError("an alarm is seen at least once")

    @property
    def key(self) -> str:
        """One open alarm per plant, machine, die, chart and kind."""
        return dedup_key(self.plant, self.machine, self.die, self.chart, self.kind)

    @property
    def seen_until(self) -> datetime:
        return self.last_at or self.at

    def merged(self, later: Alarm) -> Alarm:
        """This report and a later one of the same key, as one."""
        return replace(
            self,
            message=later.message,
            severity=_worse(self.severity, later.severity),
            count=self.count + later.count,
            at=min(self.at, later.at),
            last_at=max(self.seen_until, later.seen_until),
        )


KEY_MAX = 200  # the record's column


def dedup_key(plant: str, machine: str | None, die: str | None, chart: str, kind: str) -> str:
    """Readable where it fits; ids at their 64-character bound would not, so a long key
    keeps its start and a digest of the whole (still one key per alarm)."""
    key = f"{plant}/{machine or '-'}/{die or '-'}/{chart}/{kind}"
    if len(key) <= KEY_MAX:
        return key
    return f"{key[: KEY_MAX - 17]}#{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _worse(a: str, b: str) -> str:
    return a if SEVERITIES.index(a) >= SEVERITIES.index(b) else b


class AlarmSink(Protocol):
    """Where an alarm is raised. The line's engine is one; anything that judges shots
    (the golden envelope of a die, a rule of the plant) raises through it."""

    def raise_(self, alarm: Alarm) -> None: ...


class AlarmGate:
    """Keeps alarms few before they reach the record and the screens.

    Reports of one key are merged while they wait; a key is written at most once per
    `every_s` (its repeats add to the open alarm's count); at most `new_per_minute` keys
    not written before pass a minute (a burst across many charts waits its turn instead
    of flooding the page). `now` is a monotonic clock in seconds, given by the caller.
    """

    def __init__(self, every_s: float = 30.0, new_per_minute: int = 30, most: int = 10_000):
        self.every_s = every_s
        self.new_per_minute = new_per_minute
        self.most = most
        self._waiting: dict[str, Alarm] = {}
        self._written: dict[str, float] = {}  # key -> when last let through
        self._new_passed: deque[float] = deque()
        self.dropped = 0  # reports lost because too many keys waited at once

    def offer(self, alarm: Alarm) -> None:
        waiting = self._waiting.get(alarm.key)
        if waiting is not None:
            self._waiting[alarm.key] = waiting.merged(alarm)
        elif len(self._waiting) < self.most:
            self._waiting[alarm.key] = alarm
        else:
            self.dropped += 1

    def due(self, now: float) -> list[Alarm]:
        """The alarms to write now, oldest first; the rest keep waiting."""
        while self._new_passed and self._new_passed[0] <= now - 60.0:
            self._new_passed.popleft()
        out = []
        for key, alarm in sorted(self._waiting.items(), key=lambda kv: kv[1].at):
            last = self._written.get(key)
            if last is None:
                if len(self._new_passed) >= self.new_per_minute:
                    continue
                self._new_passed.append(now)
            elif now - last < self.every_s:
                continue
            self._written[key] = now
            out.append(alarm)
        for alarm in out:
            del self._waiting[alarm.key]
        return out

    @property
    def waiting(self) -> int:
        return len(self._waiting)


class RateWatch:
    """The share of held parts among a machine's last `window` verdicts."""

    def __init__(self, window: int = 50, share: float = 0.2, least: int = 10) -> None:
        self.window = window
        self.share = share
        self.least = least  # fewest held parts that can raise it
        self._recent: dict[tuple[str, str], tuple[deque[bool], list[int]]] = {}

    def note(self, plant: str, machine: str, held: bool) -> float | None:
        """Note one verdict; the share when it is over the limit, else None. O(1)."""
        recent, held_n = self._recent.setdefault((plant, machine), (deque(), [0]))
        recent.append(held)
        held_n[0] += held
        if len(recent) > self.window:
            held_n[0] -= recent.popleft()
        n = held_n[0]
        if len(recent) < self.window or n < self.least or n < self.share * self.window:
            return None
        return n / self.window


def backlog_alarm(
    plant: str, oldest_s: float | None, waiting: int, deadline_s: float, at: datetime
) -> Alarm | None:
    """The line is behind when its oldest message waits longer than a verdict may take."""
    if oldest_s is None or oldest_s <= deadline_s:
        return None
    message = (
        f"the line is behind: the oldest message waits {oldest_s:.0f} s (verdict deadline "
        f"{deadline_s:g} s), {waiting} waiting; parts go to QUARANTINE. Run fewer machines "
        "or a lower speed, or add line workers."
    )
    return Alarm(plant, None, None, "line", BACKLOG, message, at, "critical")
