"""An alarm in the reader's language: a title from its subject and rule (both codes), and
the figures of its stored English message written again in that language.

The analytics stores one English message per alarm (kept as it is for the API and
exports). English pages show it; other languages show the figures recognised in it
(centre and limits, a new set point, a predicted scrap risk), and the stored text as the
tooltip, so nothing is lost when a message is not recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from castline.web.i18n import Translator

_N = r"-?[\d.]+(?:e[+-]?\d+)?%?"
_SPC = re.compile(rf"centre (?P<center>{_N}) (?P<unit>\S+), limits (?P<lcl>{_N})\.\.(?P<ucl>{_N})$")
_LEVEL = re.compile(rf"level shift \((?P<unit>[^)]+)\) at .*: (?P<before>{_N}) -> (?P<after>{_N})$")
_RISK = re.compile(
    rf"predicted scrap risk (?P<risk>{_N}) over the last (?P<shots>\d+) shots, "
    rf"(?P<times>{_N})x the (?:usual|recent NG rate) (?P<usual>{_N})$"
)
_DETAILS = (
    ("alarm.spc_detail", _SPC),
    ("alarm.level_detail", _LEVEL),
    ("alarm.risk_detail", _RISK),
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
    for message_id, pattern in _DETAILS:
        if found := pattern.search(stored):
            return AlarmText(title, t(message_id, **found.groupdict()), stored)
    return AlarmText(title, "", stored)
