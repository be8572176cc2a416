"""An alarm in the reader's language: a title from its subject and rule (both codes), and
the figures of its stored English message written again in that language.

The analytics stores one English message per alarm (kept as it is for the API and
exports). English pages show it; other languages show the figures recognised in it
(centre and limits, a new set point or level, a predicted scrap risk, the share of held
parts, the line's backlog, the readings of a die out of control), and the stored text as the
tooltip, so nothing is lost when a message is not recognised.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from castline.web.i18n import Translator

_N = r"-?[\d.]+(?:e[+-]?\d+)?%?"
_SPC = re.compile(
    rf"centre (?P<center>{_N}) (?P<unit>[^,]+), limits (?P<lcl>{_N})\.\.(?P<ucl>{_N})$"
)
_LEVEL = re.compile(rf"level shift \((?P<unit>[^)]+)\) at .*: (?P<before>{_N}) -> (?P<after>{_N})$")
_RISK = re.compile(
    rf"predicted scrap risk (?P<risk>{_N}) over the last (?P<shots>\d+) shots, "
    rf"(?P<times>{_N})x the (?:usual|recent NG rate) (?P<usual>{_N})$"
)
_NEW_LEVEL = re.compile(
    r"die (?P<die>\S+) runs at a new level \((?P<steps>.*)\): .* learnt anew from the next "
    r"(?P<shots>\d+) shots$"
)
_STEP = re.compile(rf"(?P<name>\S+) (?P<before>{_N}) -> (?P<after>{_N})")
_HELD = re.compile(
    rf"^(?P<share>{_N}) of the last (?P<window>\d+) parts of (?P<machine>\S+) held in "
    rf"QUARANTINE \(limit (?P<limit>{_N})\); latest: (?P<latest>.*)$"
)
_BACKLOG = re.compile(
    rf"^the line is behind: the oldest message waits (?P<oldest>{_N}) s \(verdict deadline "
    rf"(?P<deadline>{_N}) s\), (?P<waiting>\d+) waiting"
)
_PROCESS = re.compile(
    r"^die (?P<die>\S+): (?P<count>\d+) reading\(s\) out of control \((?P<names>[^)]*)\)"
)


def _steps(t: Translator, fields: dict[str, str]) -> dict[str, str]:
    """Each reading that moved, by its name in the reader's language."""
    moved = [m.groupdict() for m in _STEP.finditer(fields["steps"])]
    said = [t("alarm.step", **m | {"name": t.param(m["name"])}) for m in moved]
    return fields | {"steps": t("alarm.list_sep").join(said) or fields["steps"]}


def _names(t: Translator, fields: dict[str, str]) -> dict[str, str]:
    names = [t.param(n.strip()) for n in fields["names"].split(",") if n.strip()]
    return fields | {"names": t("alarm.list_sep").join(names)}


def _latest(t: Translator, fields: dict[str, str]) -> dict[str, str]:
    return fields | {"latest": t.reason(fields["latest"])}


def _same(t: Translator, fields: dict[str, str]) -> dict[str, str]:
    return fields


def _unit(t: Translator, fields: dict[str, str]) -> dict[str, str]:
    """A unit said in words ("source units": the source's unit is doubtful)."""
    key = f"unit.{fields['unit']}"
    return fields | {"unit": t(key)} if t.has(key) else fields


Shape = Callable[[Translator, dict[str, str]], dict[str, str]]
# Stored message forms (report spc, live SPC, the line's watches, scrap risk) and how
# their figures are said again: names of readings and verdict reasons in the language too.
_DETAILS: tuple[tuple[str, re.Pattern[str], Shape], ...] = (
    ("alarm.process_detail", _PROCESS, _names),  # first: its last line is a chart's
    ("alarm.held_detail", _HELD, _latest),
    ("alarm.backlog_detail", _BACKLOG, _same),
    ("alarm.new_level_detail", _NEW_LEVEL, _steps),
    ("alarm.spc_detail", _SPC, _unit),
    ("alarm.level_detail", _LEVEL, _unit),
    ("alarm.risk_detail", _RISK, _same),
)


@dataclass(frozen=True, slots=True)
class AlarmText:
    title: str  # what and which rule: "Melt temperature · one point beyond 3 sigma"
    detail: str  # the figures, in the reader's language ("" when none were recognised)
    stored: str  # the analytics' own message, as stored


def alarm_text(t: Translator, alarm: dict[str, Any]) -> AlarmText:
    stored = str(alarm.get("message") or "")
    title = f"{t.subject(str(alarm['subject']))} · {t.rule(str(alarm['rule']))}"
    if t.lang == "en":
        return AlarmText(title, stored, stored)
    for message_id, pattern, shape in _DETAILS:
        if found := pattern.search(stored):
            return AlarmText(title, t(message_id, **shape(t, found.groupdict())), stored)
    return AlarmText(title, "", stored)
