"""Bounds of every path and query parameter of the API and the pages.

A value outside them is a 422 naming the parameter, never a 500 from the database or
pandas (an integer beyond 64 bits, a NUL byte in PostgreSQL text, a year pandas cannot
hold, a time without a zone).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import HTTPException, Path, Query
from pydantic import AwareDatetime, Field

from castline.domain.ids import ID_PATTERN
from castline.domain.shot import MAX_CAVITIES

BIGINT = 2**63 - 1  # the store's integer columns are signed 64-bit
ID = ID_PATTERN  # plant, machine and view ids
ONE_LINE = r"^[^\x00-\x1f\x7f]+$"  # names: no control characters
FREE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # comments: tabs and line breaks too
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_SPAN = timedelta(days=400)

PlantId = Annotated[str, Path(pattern=ID, max_length=64, description="plant id")]
MachineId = Annotated[str, Path(pattern=ID, max_length=64, description="machine id")]
ShotNumber = Annotated[int, Path(ge=0, le=BIGINT, description="the machine's shot counter")]
Cavity = Annotated[
    int, Query(ge=1, le=MAX_CAVITIES, description="the die's cavity that cast the part")
]
RowId = Annotated[int, Path(ge=1, le=BIGINT)]
Digest = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256, hex")]
UserName = Annotated[str, Path(min_length=1, max_length=80, pattern=ONE_LINE)]
OptionalId = Annotated[str | None, Query(pattern=ID, max_length=64)]
Parameter = Annotated[str, Query(pattern=ID, max_length=64, description="process parameter")]
Days = Annotated[int, Query(ge=1, le=366)]
Rows = Annotated[int, Query(ge=1, le=1000, description="rows, 1 to 1000")]
Points = Annotated[int, Query(ge=1, le=5000, description="points, 1 to 5000")]
PageNumber = Annotated[int, Query(ge=1, le=100_000, description="page, from 1")]
FilterId = Annotated[str | None, Query(pattern=ID, max_length=64, description="machine id")]
WaitingVerdict = Annotated[Literal["REVIEW", "NG"] | None, Query(description="REVIEW or NG")]
Moment = Annotated[AwareDatetime | None, Query(description="ISO 8601 with a zone, e.g. ...Z")]
Text = Annotated[str, Field(max_length=2000, pattern=FREE_TEXT)]


def window(
    since: datetime | None, until: datetime | None, day_start: Callable[[datetime], datetime]
) -> tuple[datetime, datetime]:
    """A time range in UTC, within 2000-2100 and 400 days; by default from the start of
    the day `until` lies in (`day_start`: the plant's day) to now."""
    until = (until or datetime.now(UTC)).astimezone(UTC)
    within("until", until)  # before the day's start is looked up: year 1 has no day before
    since = (since or day_start(until)).astimezone(UTC)
    within("since", since)
    if until <= since:
        raise HTTPException(422, "the time range is empty: until must be after since")
    if until - since > MAX_SPAN:
        raise HTTPException(422, f"at most {MAX_SPAN.days} days at once")
    return since, until


def within(name: str, moment: datetime) -> None:
    if not EARLIEST <= moment <= LATEST:
        raise HTTPException(422, f"{name} must lie between 2000 and 2100")
