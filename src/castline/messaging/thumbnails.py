"""Heat-map thumbnails: what the central site sees of a part that was not judged OK.

The full photo and heat map stay at the plant (megabytes a part). A part not judged OK is
what a quality engineer at the central site looks at, so the line publishes a small JPEG of
its heat-map overlay beside the verdict, in castline's output namespace; the hub's records
source copies it with the verdicts (`messaging/uplink.py`). Robot cells never hear it: they
listen to their verdict subject only.
"""

from __future__ import annotations

import base64
from typing import Annotated

from pydantic import Field, Strict

from castline.domain.shot import PartKey
from castline.domain.verdict import PartVerdict, Verdict
from castline.messaging.schema import Cavity, Count, DataMatrix, Message, Real, UtcTime, View

SIDE_PX = 160  # the longest side: enough to see where a defect is, ~5 KB a part
MAX_BYTES = 64 * 1024  # the thumbnail's JPEG, before base64


class HeatmapThumbnail(Message):
    """One view of a part: its own verdict and its heat-map overlay, shrunk."""

    shot_number: Count
    cavity: Cavity = 1
    data_matrix: DataMatrix | None = None
    view: View
    verdict: Verdict
    score: Real | None = None
    decided_at: UtcTime
    jpeg_b64: Annotated[str, Strict(), Field(min_length=4, max_length=4 * (MAX_BYTES // 3 + 1))]

    def jpeg(self) -> bytes:
        return base64.b64decode(self.jpeg_b64, validate=True)


def thumbnail_message(key: PartKey, view: str, own: PartVerdict, jpeg: bytes) -> HeatmapThumbnail:
    return HeatmapThumbnail(
        plant=key.plant,
        machine=key.machine,
        shot_number=key.shot_number,
        cavity=key.cavity,
        data_matrix=key.data_matrix,
        view=view,
        verdict=own.verdict,
        score=own.score,
        decided_at=own.decided_at,
        jpeg_b64=base64.b64encode(jpeg).decode(),
    )


def subject(plant: str, machine: str) -> str:
    return f"castline.out.v1.{plant}.{machine}.heatmap"
