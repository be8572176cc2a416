"""Inspection hours a person logs for the benefit report: API and the benefit page's form.

Operators and above, of their own plant; every entry audited. The page takes plant
dates (a day is plant midnight to midnight); the API takes times with their zone.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from castline.analytics import labour
from castline.web import schemas as out
from castline.web.actions import ActionError
from castline.web.api import Operator, run
from castline.web.auth import Principal, audit
from castline.web.pages import attempt, words
from castline.web.params import PlantId
from castline.web.plant_time import PlantClock

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["castline"])
Days = Annotated[int, Query(ge=1, le=400)]


class LabourIn(BaseModel, extra="forbid"):
    work: Literal["inspection"] = "inspection"
    started_at: datetime
    ended_at: datetime
    hours: float = Field(gt=0, le=1_000_000)
    note: str = Field("", max_length=500)


class LabourOut(out.Out):
    plant: str
    work: str
    started_at: datetime
    ended_at: datetime
    hours: float
    logged_by: str
    note: str


def log_hours(
    engine: Engine,
    who: Principal,
    plant: str,
    started_at: datetime,
    ended_at: datetime,
    hours: float,
    note: str,
) -> dict[str, object]:
    """A person logs the inspection hours worked in a stretch of time (audited)."""
    if not who.sees(plant):
        raise ActionError(f"plant {plant} not found", 404, "no_plant", plant=plant)
    try:
        entry = labour.LabourEntry(
            plant, labour.INSPECTION, started_at, ended_at, hours, who.username, note.strip()
        )
        replaced = labour.log(engine, entry)
    except labour.Overlap as exc:
        raise ActionError(str(exc), 409, "labour_overlap") from None
    except ValueError as exc:
        raise ActionError(str(exc), code="labour_entry") from None
    detail = {"hours": hours, "until": ended_at.isoformat(), "replaced": replaced}
    target = f"{plant}/labour/{started_at.isoformat()}"
    audit(engine, who.username, "labour.log", target, detail, [plant])
    return asdict(entry)


@api.post("/plants/{plant}/labour", response_model=LabourOut)
def post_hours(request: Request, plant: PlantId, body: LabourIn, who: Operator) -> object:
    """Log inspection person-hours for a stretch (at most 31 days; no overlaps; the same
    start again replaces the entry)."""
    engine = request.app.state.engine
    args = (body.started_at, body.ended_at, body.hours, body.note)
    return run(log_hours, engine, who, plant, *args)


@api.get("/plants/{plant}/labour", response_model=out.many(LabourOut))
def list_hours(request: Request, plant: PlantId, who: Operator, days: Days = 90) -> object:
    """The plant's logged inspection hours of the last `days`, newest first."""
    if not who.sees(plant):
        return run(_not_found, plant)
    until = datetime.now(UTC) + timedelta(days=1)
    found = labour.entries(request.app.state.engine, plant, until - timedelta(days=days), until)
    return [asdict(e) for e in found]


def _not_found(plant: str) -> None:
    raise ActionError(f"plant {plant} not found", 404, "no_plant", plant=plant)


@router.post("/benefit/{plant}/labour")
def log_form(
    request: Request,
    plant: PlantId,
    who: Operator,
    first_day: Annotated[str, Form(max_length=10)],
    last_day: Annotated[str, Form(max_length=10)],
    hours: Annotated[float, Form(gt=0, le=1_000_000)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The page's form: whole plant days, first to last, both included."""
    zone = PlantClock.of(request.app.state.settings).zone
    done = words(request)("labour.done", hours=f"{hours:g}")
    engine = request.app.state.engine

    def from_days() -> None:
        try:
            first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
        except ValueError:
            raise ActionError("give the days as 2026-11-30", code="labour_days") from None
        start = datetime.combine(first, time(), zone)
        end = datetime.combine(last + timedelta(days=1), time(), zone)
        log_hours(engine, who, plant, start, end, hours, note)

    response: Response = attempt(request, "/benefit", done, from_days)
    return response
