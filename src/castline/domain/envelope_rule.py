"""What a shot outside its die's golden envelope does to its part's verdict, by rule.

Porosity and cold shuts hide below the surface, so a good photo does not clear a part
whose shot left the envelope: per die the plant chooses to hold it for a person
(`review`, the default), to scrap it (`ng`), or to only raise the alarm (`none`).
"""

from __future__ import annotations

from enum import StrEnum

from castline.domain.verdict import Verdict


class EnvelopeAction(StrEnum):
    NONE = "none"
    REVIEW = "review"
    NG = "ng"


DEFAULT_ACTION = EnvelopeAction.REVIEW
_RANK = {Verdict.OK: 0, Verdict.REVIEW: 1, Verdict.NG: 2}


def held(
    verdict: Verdict, reason: str, breach: str | None, action: EnvelopeAction
) -> tuple[Verdict, str]:
    """The part's verdict and reason once the envelope rule is applied: at least REVIEW
    (or NG) when the curve left the envelope; a verdict already as strict, or
    QUARANTINE, stays as it is and says the breach too."""
    if breach is None or action is EnvelopeAction.NONE:
        return verdict, reason
    floor = Verdict.REVIEW if action is EnvelopeAction.REVIEW else Verdict.NG
    said = f"shot curve outside the die's golden envelope: {breach}"
    if verdict is Verdict.QUARANTINE or _RANK[verdict] >= _RANK[floor]:
        return verdict, f"{reason}; {said}"
    return floor, f"{said} (photo: {verdict.value}, {reason})"
