"""Downtime by stop class (with the form to say why a machine stood) and the benefit
report: pages and API."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from castline.analytics import downtime, labour
from castline.domain.stops import StopClass
from castline.web import actions, analytics, benefit_words, queries
from castline.web import schemas as out
from castline.web.api import Operator, Viewer, run, scope
from castline.web.pages import attempt, render, words
from castline.web.params import MachineId, PlantId
from castline.web.plant_time import PlantClock

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["castline"])
Days = Annotated[int, Query(ge=1, le=90)]


class StopIn(BaseModel):
    started_at: datetime  # the stop's start as listed (with its zone)
    stop_class: str = Field(max_length=20)
    reason: str = Field("", max_length=500)


class StopOut(out.Out):
    machine: str
    started_at: datetime
    ended_at: datetime | None
    state: str
    reason: str
    stop_class: str
    class_reason: str
    classified_by: str | None
    hours: float


class StopClassified(out.Out):
    machine: str
    started_at: datetime
    stop_class: str


def stops(engine: Any, plant: str, days: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """The stops of the last `days`, newest first."""
    until = now or datetime.now(UTC)
    since = until - timedelta(days=days)
    rows = []
    for s in downtime.segments(engine, plant, since, until):
        if s.stop_class is None:
            continue
        row = asdict(s) | {"stop_class": s.stop_class.value}
        row["hours"] = s.seconds_within(since, until) / 3600
        rows.append(row)
    return sorted(rows, key=lambda r: r["started_at"], reverse=True)


@api.get("/plants/{plant}/stops", response_model=out.many(StopOut))
def stop_list(
    request: Request, plant: PlantId, who: Viewer, days: Days = 7
) -> list[dict[str, Any]]:
    """Every stop of the last `days` with its class and who gave it (none: the machine)."""
    return stops(request.app.state.engine, plant, days)


@api.post("/plants/{plant}/machines/{machine}/stops", response_model=StopClassified)
def classify(
    request: Request, plant: PlantId, machine: MachineId, body: StopIn, who: Operator
) -> dict[str, object]:
    """Say why a machine stood: planned, breakdown, setup, no_order or unclassified."""
    engine = request.app.state.engine
    return run(
        actions.classify_stop,
        engine, who, plant, machine, body.started_at, body.stop_class, body.reason,
    )  # fmt: skip


@router.get("/downtime")
def downtime_page(request: Request, who: Viewer, days: Days = 7) -> HTMLResponse:
    engine = request.app.state.engine
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    plants = []
    for plant in queries.plants(engine, scope(who)):
        segs = downtime.segments(engine, plant["id"], since, until)
        plants.append(
            {
                "plant": plant["id"],
                "causes": downtime.by_cause(segs, since, until)[:20],
                "reliability": downtime.reliability(segs, since, until),
                "stops": stops(engine, plant["id"], days, until)[:60],
            }
        )
    classes = [c.value for c in StopClass]
    # not "plants": every page has that name for its navigation
    return render(request, "downtime.html", reports=plants, days=days, classes=classes)


@router.post("/downtime/{plant}/{machine}")
def classify_form(
    request: Request,
    plant: PlantId,
    machine: MachineId,
    who: Operator,
    started_at: Annotated[str, Form(max_length=40)],
    stop_class: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        at = datetime.fromisoformat(started_at)
    except ValueError:
        at = datetime.now(UTC).replace(year=1)  # no stop starts there: "not found"
    return attempt(
        request,
        "/downtime",
        words(request)("downtime.done", machine=machine),
        actions.classify_stop,
        request.app.state.engine, who, plant, machine, at, stop_class, reason,
    )  # fmt: skip


@router.get("/benefit")
def benefit_page(request: Request, who: Viewer) -> HTMLResponse:
    engine, config = request.app.state.engine, analytics.plant_config(request)
    reports = [
        analytics.benefit(engine, plant["id"], config)
        for plant in queries.plants(engine, scope(who))
    ]
    say, clock = words(request), PlantClock.of(request.app.state.settings)
    since, until = datetime.now(UTC) - timedelta(days=90), datetime.now(UTC) + timedelta(days=1)
    for report in reports:  # in the page's language, times in plant time
        report["labour"] = labour.entries(engine, report["plant"], since, until)[:10]
        report["assumptions"] = [
            benefit_words.say(say, a, clock.show) for a in report["assumptions"]
        ]
        for row in report["rows"]:
            row["unit"] = benefit_words.unit(say, row["metric"], row["unit"])
    return render(request, "benefit.html", reports=reports)
