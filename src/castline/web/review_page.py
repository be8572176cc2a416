"""The review queue's paging and filter links: one page of waiting parts at a time, with
links that keep the machine and verdict filters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

from castline.web.reasons import understand

PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class QueueView:
    """Where the reader is in the queue: filters, page, and how many parts match."""

    machine: str | None
    verdict: str | None
    page: int
    matching: int
    per_page: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.matching / self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def filtered(self) -> bool:
        return self.machine is not None or self.verdict is not None

    def url(self, **change: str | int | None) -> str:
        """This view's address with some fields changed; a new filter starts at page 1."""
        fields: dict[str, str | int | None] = {
            "machine": self.machine,
            "verdict": self.verdict,
            "page": self.page,
        }
        if change.keys() & {"machine", "verdict"}:
            fields["page"] = 1
        fields |= change
        kept = {k: v for k, v in fields.items() if v is not None and (k, v) != ("page", 1)}
        return "/reviews" + (f"?{urlencode(kept)}" if kept else "")


def beyond_score(reason: str | None) -> str:
    """The verdict's reason unless it only repeats the score, which the page prints."""
    if not reason or understand(reason).only_score:
        return ""
    return reason
