"""The views of one part on its page: each photo with its own verdict, score and heat map.

A die photographed from several views gives a part one photo per view; the worst view
decides the part's verdict, and its defect regions are the part's. The page shows every
view, marks the one that decided, and draws the regions on that one only (they were found
on its photo, not on the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PIL import Image

from castline.store.blobs import BlobStore

_ORDER = ("OK", "REVIEW", "NG", "QUARANTINE")  # better to worse


@dataclass(frozen=True, slots=True)
class PartView:
    view: str
    at: Any  # datetime of the photo
    blob: str
    size: tuple[int, int]  # the photo's width and height in pixels (300 x 300 if unknown)
    verdict: str | None  # this view's own verdict; None where only the part has one
    score: float | None
    heatmap: str | None  # blob of this view's heat map
    deciding: bool  # its verdict is the part's, and the part's regions are on it


def part_views(
    images: list[dict[str, Any]], told: dict[str, Any] | None, blobs: BlobStore
) -> list[PartView]:
    """The part's photos as views to show, the deciding one first."""
    if not images:
        return []
    told = told or {}
    deciding = _deciding(images, told)
    views = [_view(image, told, i == deciding, blobs) for i, image in enumerate(images)]
    return sorted(views, key=lambda v: not v.deciding)


def _view(
    image: dict[str, Any], told: dict[str, Any], deciding: bool, blobs: BlobStore
) -> PartView:
    """One photo as a view; a photo recorded before views kept their own verdict (a part
    of one view) shows the part's verdict, score and heat map."""
    part = told if deciding else {}
    return PartView(
        view=image["view"],
        at=image["at"],
        blob=image["blob"],
        size=_size(blobs, image["blob"]),
        verdict=image.get("verdict") or part.get("verdict"),
        score=image["score"] if image.get("score") is not None else part.get("score"),
        heatmap=image.get("heatmap") or part.get("heatmap"),
        deciding=deciding,
    )


def _deciding(images: list[dict[str, Any]], told: dict[str, Any]) -> int:
    """Which photo decided: the one whose heat map the verdict carries, else the worst view
    (of equally bad ones the highest score), as the line combines them."""
    if len(images) == 1:
        return 0
    heatmap = told.get("heatmap")
    for i, image in enumerate(images):
        if heatmap and image.get("heatmap") == heatmap:
            return i

    def badness(i: int) -> tuple[int, float]:
        verdict, score = images[i].get("verdict"), images[i].get("score")
        rank = _ORDER.index(verdict) if verdict in _ORDER else -1
        return rank, score if score is not None else float("-inf")

    return max(range(len(images)), key=badness)


def _size(blobs: BlobStore, digest: str) -> tuple[int, int]:
    try:
        with Image.open(blobs.path(digest)) as photo:
            return photo.size
    except (OSError, ValueError):
        return (300, 300)
