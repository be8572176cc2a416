"""Trouble first: each machine tile gets a state a person can act on (red, amber, green),
the reasons for it in words, and the tiles are ordered so that what needs a person now
comes first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from castline.domain.states import MachineState
from castline.domain.verdict import Verdict
from castline.web.i18n import Translator

SCRAP_RED = 0.10  # share of today's judged castings found NG
SCRAP_AMBER = 0.03
STOPPED = frozenset({MachineState.BREAKDOWN.value, MachineState.OFFLINE.value})
PAUSED = frozenset({MachineState.IDLE.value, MachineState.SETUP.value})


class Level(IntEnum):
    """Lower comes first on the page."""

    RED = 0
    AMBER = 1
    GREEN = 2

    @property
    def word(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Reason:
    """One cause of a tile's level, as a message id and its fields (translated on the page)."""

    message: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Trouble:
    level: Level
    reasons: tuple[Reason, ...]
    scrap_rate: float | None  # NG share of the castings judged today
    judged: int


def scrap_rate(verdicts: dict[str, int]) -> float | None:
    judged = sum(verdicts.values())
    return verdicts.get(Verdict.NG.value, 0) / judged if judged else None


def trouble(tile: dict[str, Any]) -> Trouble:
    """What a machine tile says a person should do about it, and why."""
    verdicts: dict[str, int] = tile.get("verdicts_today") or {}
    rate = scrap_rate(verdicts)
    red: list[Reason] = []
    amber: list[Reason] = []
    if tile.get("alarms_open"):
        red.append(Reason("why.alarms", {"n": tile["alarms_open"]}))
    state = str(tile.get("state") or "offline")
    if state in STOPPED:
        red.append(Reason("why.stopped", {"state": state}))
    elif state in PAUSED:
        amber.append(Reason("why.idle", {"state": state}))
    if rate is not None and rate > SCRAP_AMBER:
        (red if rate > SCRAP_RED else amber).append(Reason("why.scrap", {"rate": rate}))
    if tile.get("envelope_breaches_today"):  # parts held by their curve, by die rule
        amber.append(Reason("why.envelope", {"n": tile["envelope_breaches_today"]}))
    waiting = ((Verdict.QUARANTINE, "why.quarantine"), (Verdict.REVIEW, "why.review"))
    for verdict, message in waiting:
        if verdicts.get(verdict.value):
            amber.append(Reason(message, {"n": verdicts[verdict.value]}))
    level = Level.RED if red else Level.AMBER if amber else Level.GREEN
    return Trouble(level, tuple(red + amber), rate, sum(verdicts.values()))


def ranked(tiles: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], Trouble]]:
    """Red before amber before green; within a level, more open alarms, then a higher
    scrap rate, then more castings in quarantine; ties in machine order."""

    def key(item: tuple[dict[str, Any], Trouble]) -> tuple[int, int, float, int, str]:
        tile, found = item
        quarantined = (tile.get("verdicts_today") or {}).get(Verdict.QUARANTINE.value, 0)
        return (
            found.level,
            -int(tile.get("alarms_open") or 0),
            -(found.scrap_rate or 0.0),
            -quarantined,
            str(tile["machine"]),
        )

    return sorted(((tile, trouble(tile)) for tile in tiles), key=key)


def part_label(machine: str, shot_number: int | None) -> str:
    """`m3 · #1,234`: the part key as a person reads it out (the plant is on the page)."""
    return f"{machine} · {shot_label(shot_number)}"


def shot_label(shot_number: int | None) -> str:
    return "—" if shot_number is None else f"#{shot_number:,}"


def describe(reason: Reason, t: Translator) -> str:
    """One reason in the page's language (a rate as a percentage, a state as a word)."""
    fields = dict(reason.fields)
    if isinstance(fields.get("rate"), float):
        fields["rate"] = f"{100 * fields['rate']:.1f} %"
    if "state" in fields:
        fields["state"] = t.state(str(fields["state"]))
    return t(reason.message, **fields)
