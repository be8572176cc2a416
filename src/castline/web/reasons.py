"""Why castline decided a part as it did, in words for the person at the line.

The line stores each verdict's reason as a stable English machine text (journal, robot
cell, API and exports keep it as it was told). A page does not show that text as it is:
it is recognised here as a reason code with its fields, and each language writes the
code its own way (`reason.<code>` in `web/vocabulary.py`). A text no pattern knows is
shown as stored, so a new reason is never hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class ReasonCode(StrEnum):
    SCORE = "score"
    LATE_START = "late_start"
    TOO_SLOW = "too_slow"
    DIE_UNKNOWN = "die_unknown"
    MODEL_FAILED = "model_failed"
    NO_MODEL = "no_model"
    INSPECTION_FAILED = "inspection_failed"
    TRIAL = "trial"
    PHOTO_REFUSED = "photo_refused"
    NO_PHOTO = "no_photo"
    CELL_TIMEOUT = "cell_timeout"
    CELL_TIMEOUT_JOURNAL = "cell_timeout_journal"
    VIEWS_MISSING = "views_missing"
    WORST_VIEW = "worst_view"


_NUMBER = r"-?\d+(?:\.\d+)?"
# The machine texts of line/inspection.py, line/decision.py and messaging/opcua_cell.py.
PATTERNS: tuple[tuple[ReasonCode, re.Pattern[str]], ...] = tuple(
    (code, re.compile(pattern))
    for code, pattern in (
        (ReasonCode.SCORE, rf"^score (?P<score>{_NUMBER})$"),
        (ReasonCode.LATE_START, rf"^deadline passed (?P<late>{_NUMBER}) s before inspection"),
        (ReasonCode.TOO_SLOW, rf"^deadline passed: inspection took over (?P<budget>{_NUMBER}) s"),
        (ReasonCode.DIE_UNKNOWN, r"^die unknown\b"),
        (
            ReasonCode.MODEL_FAILED,
            r"^model for die (?P<die>\S+), view (?P<view>\S+) failed to load: (?P<detail>.*)$",
        ),
        (ReasonCode.NO_MODEL, r"^no active model for die (?P<die>\S+), view (?P<view>\S+)$"),
        (ReasonCode.INSPECTION_FAILED, r"^inspection failed: (?P<detail>.*)$"),
        (ReasonCode.TRIAL, r"^warm-up \(trial\) shot\b"),
        (ReasonCode.PHOTO_REFUSED, r"^photo refused: (?P<detail>.*)$"),
        (ReasonCode.NO_PHOTO, rf"^no casting image within (?P<window>{_NUMBER}) s of the shot"),
        (
            ReasonCode.VIEWS_MISSING,
            rf"^only (?P<came>\d+) of (?P<expected>\d+) views within (?P<window>{_NUMBER}) s "
            r"of the shot \((?P<views>[^)]*)\)$",
        ),
        # A part of several views: the deciding view's own reason follows (`inner`), which
        # the page phrases in its turn.
        (
            ReasonCode.WORST_VIEW,
            r"^worst of (?P<count>\d+) views \((?P<views>[^)]*)\): (?P<view>[^:\s]+):"
            r"(?: (?P<inner>.*))?$",
        ),
        (
            ReasonCode.CELL_TIMEOUT_JOURNAL,
            rf"^no verdict within (?P<deadline>{_NUMBER}) s at the robot cell "
            r"\(verdict journal unreachable\)$",
        ),
        (
            ReasonCode.CELL_TIMEOUT,
            rf"^no verdict within (?P<deadline>{_NUMBER}) s at the robot cell$",
        ),
    )
)


@dataclass(frozen=True, slots=True)
class Reason:
    """A stored reason, understood: its code (None if no pattern knew it) and fields."""

    stored: str
    code: ReasonCode | None = None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def only_score(self) -> bool:
        """The reason says no more than the score, which the pages print beside it."""
        return self.code is ReasonCode.SCORE


def understand(stored: str | None) -> Reason:
    text = (stored or "").strip()
    for code, pattern in PATTERNS:
        if found := pattern.match(text):
            return Reason(text, code, {k: v for k, v in found.groupdict().items() if v})
    return Reason(text)
