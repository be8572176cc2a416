"""The heat map's colour scale and numbered regions on the part page.

The line draws each part's heat map onto its photo (`vision/overlay.py`): a spot's
colour is the colour map at `heat / (1.5 × region threshold)`, blended in with weight
0.7·level², so calm areas keep the photo and hot ones take the colour. The bar drawn
in `static/style.css` (`.heat-bar`) is this module's `GRADIENT`: the same map and blend
over a mid grey, so it matches what the photo shows (a test keeps the two equal; the
page's Content-Security-Policy allows no inline style). Its marks are the model's own
region threshold (at 1/1.5 of the bar) and full colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matplotlib import colormaps
from sqlalchemy import Engine, select

from castline.domain.verdict import Region
from castline.store import tables as t

FULL_AT = 1.5  # times the region threshold: full colour (line/inspection.py draws so)
BLEND = 0.7  # the overlay's alpha at full colour
LEVELS = tuple(i / 10 for i in range(11))


@dataclass(frozen=True, slots=True)
class NumberedRegion:
    number: int
    x: int
    y: int
    w: int
    h: int
    area_px: int
    score: float
    times_threshold: float | None  # score / region threshold


@dataclass(frozen=True, slots=True)
class HeatLegend:
    threshold: float | None  # the model's region threshold (anomaly units), if known
    full: float | None  # the value shown at full colour
    regions: tuple[NumberedRegion, ...]


def _css_colour(level: float, grey: float = 128.0) -> str:
    red, green, blue, _ = colormaps["inferno"](level)
    weight = BLEND * level**2
    r, g, b = ((1 - weight) * grey + weight * 255.0 * c for c in (red, green, blue))
    return f"rgb({r:.0f},{g:.0f},{b:.0f}) {100 * level:.0f}%"


GRADIENT = "linear-gradient(to right, " + ", ".join(_css_colour(x) for x in LEVELS) + ")"


def region_threshold(engine: Engine, die: str | None, version: str | None) -> float | None:
    """The region threshold of the model that judged the part (from its manifest)."""
    if not version:
        return None
    m = t.models
    query = select(m.c.manifest).where(m.c.version == version)
    if die:
        query = query.where(m.c.die == die)
    with engine.connect() as conn:
        manifest: Any = conn.execute(query.limit(1)).scalar()
    try:
        value = float(manifest["thresholds"]["region"])
    except (TypeError, KeyError, ValueError):
        return None
    return value if value > 0 else None


def legend(regions: list[Region] | tuple[Region, ...], threshold: float | None) -> HeatLegend:
    """Regions numbered by score, highest first (number 1 is the likeliest defect)."""
    ranked = sorted(regions, key=lambda r: r.score, reverse=True)
    numbered = tuple(
        NumberedRegion(
            i, r.x, r.y, r.w, r.h, r.area_px, r.score, r.score / threshold if threshold else None
        )
        for i, r in enumerate(ranked, start=1)
    )
    full = FULL_AT * threshold if threshold else None
    return HeatLegend(threshold, full, numbered)
