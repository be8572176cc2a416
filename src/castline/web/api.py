"""The JSON API under /api/v1: what the pages show, for scripts and other systems."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from castline.analytics import service
from castline.domain.defects import DefectCatalogue
from castline.domain.shot import PartKey
from castline.domain.units import BY_NAME, NAMES
from castline.domain.verdict import Verdict
from castline.messaging.backlog import BacklogWatch, describe
from castline.messaging.topics import parse
from castline.store.repository import Store
from castline.web import actions, analytics, charts, queries
from castline.web.analytics import optional, start_of_day
from castline.web.auth import Principal, Role, public, require
from castline.web.live import Hub

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

router = APIRouter(prefix="/api/v1", tags=["castline"])
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
KEEPALIVE_S = 15.0


def scope(who: Principal) -> list[str] | None:
    """The plants a caller may see, as the queries take them (None: every plant)."""
    return list(who.plants) if who.plants else None


def run(action: Any, *args: Any) -> Any:
    try:
        return action(*args)
    except actions.ActionError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


# --- who and where -----------------------------------------------------------------


@router.get("/health", dependencies=[Depends(public)])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/me")
def me(who: Viewer) -> dict[str, Any]:
    return {"username": who.username, "role": who.role.label, "plants": list(who.plants)}


@router.get("/plants")
def plants(request: Request, who: Viewer) -> list[dict[str, Any]]:
    return queries.plants(request.app.state.engine, scope(who))


@router.get("/plants/{plant}/overview")
def overview(request: Request, plant: str, who: Viewer) -> list[dict[str, Any]]:
    """One tile per machine: state, die, shots and yield today, last casting, open alarms."""
    return queries.machine_tiles(request.app.state.engine, plant, start_of_day())


@router.get("/plants/{plant}/line")
def line(request: Request, plant: str, who: Viewer) -> dict[str, Any]:
    """How far inspection is behind: parts waiting in JetStream, in inspection, the oldest."""
    return line_status(request, plant)


def line_status(request: Request, plant: str) -> dict[str, Any]:
    watch: BacklogWatch | None = request.app.state.backlog
    deadline_s = request.app.state.settings.verdict_deadline_s
    if watch is None:
        return describe(None, deadline_s, "this dashboard runs without --nats")
    unknown = watch.error or "no line runtime has started on this broker yet"
    return describe(watch.for_plant(plant), deadline_s, unknown)


@router.get("/plants/{plant}/shots")
def shots(
    request: Request,
    plant: str,
    who: Viewer,
    machine: str | None = None,
    die: str | None = None,
    verdict: Verdict | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[dict[str, Any]]:
    store = Store(request.app.state.engine)
    return store.shots(plant, machine=machine, die=die, verdict=verdict, limit=limit)


@router.get("/plants/{plant}/parts/{machine}/{shot_number}")
def part(request: Request, plant: str, machine: str, shot_number: int, who: Viewer) -> Any:
    found = Store(request.app.state.engine).part(PartKey(plant, machine, shot_number))
    if found is None:
        raise HTTPException(404, f"no part {plant}/{machine}/{shot_number}")
    return found


@router.get("/plants/{plant}/machines/{machine}/trend")
def trend(
    request: Request, plant: str, machine: str, parameter: str, who: Viewer, limit: int = 500
) -> list[dict[str, Any]]:
    if parameter not in BY_NAME:
        raise HTTPException(422, f"unknown parameter {parameter!r}; known: {', '.join(NAMES)}")
    return queries.parameter_series(request.app.state.engine, plant, machine, parameter, limit)


@router.get("/plants/{plant}/machines/{machine}/trend.png")
def trend_png(request: Request, plant: str, machine: str, parameter: str, who: Viewer) -> Response:
    """Readings coloured by verdict, with the control limits of castline.analytics."""
    if parameter not in BY_NAME:
        raise HTTPException(422, f"unknown parameter {parameter!r}; known: {', '.join(NAMES)}")
    engine = request.app.state.engine
    series = queries.parameter_series(engine, plant, machine, parameter)
    chart = optional(service.control_chart, engine, plant, machine, parameter, last=1)
    limits = {k: chart[k] for k in ("lcl", "center", "ucl")} if chart else None
    spec = BY_NAME[parameter]
    return png(charts.trend(series, f"{spec.label}, {spec.unit}", limits))


@router.get("/plants/{plant}/machines/{machine}/control-chart")
def control_chart(
    request: Request, plant: str, machine: str, parameter: str, who: Viewer, last: int = 500
) -> dict[str, Any]:
    """SPC of one parameter (castline.analytics): limits, capability, rule hits, points."""
    try:
        return service.control_chart(request.app.state.engine, plant, machine, parameter, last=last)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/plants/{plant}/machines/{machine}/control-chart.png")
def control_chart_png(
    request: Request, plant: str, machine: str, parameter: str, who: Viewer
) -> Response:
    engine = request.app.state.engine
    data = optional(service.control_chart_png, engine, plant, machine, parameter)
    if data is None:
        raise HTTPException(404, f"no shots of {plant}/{machine} to chart {parameter!r}")
    return png(data)


@router.get("/plants/{plant}/root-cause")
def root_cause(
    request: Request, plant: str, who: Viewer, machine: str | None = None
) -> dict[str, Any]:
    """Parameters ranked by how much they explain NG parts (castline.analytics)."""
    found = optional(service.root_cause, request.app.state.engine, plant, machine=machine)
    if found is None:
        raise HTTPException(404, f"no shots of plant {plant} to explain")
    return found


@router.get("/plants/{plant}/kpis")
def kpis(
    request: Request,
    plant: str,
    who: Viewer,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str = "day",
    level: str = "machine",
) -> list[dict[str, Any]]:
    """ISO 22400 KPIs per machine, line or plant and shift, day or week; default: today."""
    until = until or datetime.now(UTC)
    since = since or start_of_day(until)
    try:
        return service.kpis(request.app.state.engine, plant, since, until, by=by, level=level)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/plants/{plant}/kpi-trend.png")
def kpi_trend_png(request: Request, plant: str, who: Viewer, days: int = 14) -> Response:
    until = datetime.now(UTC)
    since = start_of_day(until - timedelta(days=days - 1))
    return png(service.kpi_trend_png(request.app.state.engine, plant, since, until))


@router.get("/plants/{plant}/benefit")
def benefit(
    request: Request, plant: str, who: Viewer, days: Annotated[int, Query(ge=1, le=366)] = 7
) -> dict[str, Any]:
    """The last `days` against the four times longer stretch before them."""
    return analytics.benefit(request.app.state.engine, plant, days)


@router.get("/plants/{plant}/maintenance")
def maintenance(
    request: Request, plant: str, who: Viewer, days: Annotated[int, Query(ge=1, le=366)] = 7
) -> dict[str, Any]:
    """Dies due for maintenance and why; downtime by cause, MTBF and MTTR."""
    until = datetime.now(UTC)
    return service.maintenance(request.app.state.engine, plant, until - timedelta(days=days), until)


@router.get("/plants/{plant}/pareto")
def pareto(
    request: Request, plant: str, who: Viewer, machine: str | None = None
) -> list[dict[str, Any]]:
    counts = queries.defect_pareto(request.app.state.engine, plant, machine)
    return [{"defect_type": k, "parts": n} for k, n in counts]


@router.get("/plants/{plant}/pareto.png")
def pareto_png(request: Request, plant: str, who: Viewer, machine: str | None = None) -> Response:
    return png(charts.pareto(queries.defect_pareto(request.app.state.engine, plant, machine)))


@router.get("/dies")
def dies(request: Request, who: Viewer) -> list[dict[str, Any]]:
    return queries.dies(request.app.state.engine, scope(who))


@router.get("/dies.png")
def dies_png(request: Request, who: Viewer) -> Response:
    return png(charts.die_life(queries.dies(request.app.state.engine, scope(who))))


@router.get("/blobs/{digest}")
def blob(request: Request, digest: str, who: Viewer) -> Response:
    """An image or heat map, to those who may see a part that holds it."""
    engine = request.app.state.engine
    if not _DIGEST.match(digest) or not any(
        who.sees(p) for p in queries.blob_plants(engine, digest)
    ):
        raise HTTPException(404, "no such image")
    try:
        data = request.app.state.blobs.get(digest)
    except KeyError:
        raise HTTPException(404, "image recorded but missing from the blob store") from None
    headers = {"Cache-Control": "private, max-age=86400, immutable"}
    return Response(data, media_type=queries.blob_content_type(engine, digest), headers=headers)


# --- review loop --------------------------------------------------------------------


class ReviewIn(BaseModel):
    decision: Verdict = Field(description="OK or NG as confirmed by a person")
    defect_type: str | None = Field(None, description="defect catalogue code, for NG")
    comment: str = ""


@router.get("/defect-types")
def defect_types(who: Viewer) -> list[dict[str, Any]]:
    return [
        {"code": d.code, "name": d.name, "description": d.description} for d in DefectCatalogue()
    ]


@router.get("/reviews/queue")
def review_queue(request: Request, who: Viewer, limit: int = 100) -> list[dict[str, Any]]:
    """REVIEW and NG parts that wait for a person."""
    return queries.review_queue(request.app.state.engine, scope(who), limit)


@router.get("/reviews")
def reviews(request: Request, who: Viewer, limit: int = 100) -> list[dict[str, Any]]:
    return queries.reviews(request.app.state.engine, scope(who), limit)


@router.post("/plants/{plant}/parts/{machine}/{shot_number}/review", status_code=201)
def review(
    request: Request, plant: str, machine: str, shot_number: int, body: ReviewIn, who: Operator
) -> dict[str, str]:
    key = PartKey(plant, machine, shot_number)
    engine = request.app.state.engine
    run(actions.review_part, engine, who, key, body.decision.value, body.defect_type, body.comment)
    return {"part": str(key), "decision": body.decision.value}


# --- alarms ---------------------------------------------------------------------------


class AckIn(BaseModel):
    comment: str = Field(min_length=1)


@router.get("/alarms")
def alarms(request: Request, who: Viewer, open_only: bool = False) -> list[dict[str, Any]]:
    return queries.alarms(request.app.state.engine, scope(who), open_only)


@router.post("/alarms/{alarm_id}/ack")
def acknowledge(request: Request, alarm_id: int, body: AckIn, who: Operator) -> dict[str, Any]:
    run(actions.acknowledge, request.app.state.engine, who, alarm_id, body.comment)
    return {"alarm": alarm_id, "acked_by": who.username}


# --- models ----------------------------------------------------------------------------


class RollbackIn(BaseModel):
    die: str
    view: str


@router.get("/models")
def models(request: Request, who: Viewer) -> list[dict[str, Any]]:
    return queries.models(request.app.state.engine)


@router.post("/models/{model_id}/promote")
def promote(request: Request, model_id: int, who: Engineer) -> dict[str, Any]:
    model = run(actions.promote, request.app.state.engine, who, model_id)
    return {"die": model["die"], "view": model["view"], "version": model["version"]}


@router.post("/models/rollback")
def rollback(request: Request, body: RollbackIn, who: Engineer) -> dict[str, Any]:
    return dict(run(actions.rollback, request.app.state.engine, who, body.die, body.view))


# --- plant IT ------------------------------------------------------------------------


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=10)
    role: str = "viewer"
    plants: list[str] = Field(default_factory=list)


class KeyIn(BaseModel):
    name: str = ""


@router.get("/dead-letters")
def dead_letters(request: Request, who: Engineer, limit: int = 200) -> list[dict[str, Any]]:
    rows = queries.dead_letters(request.app.state.engine, scope(who), limit)
    for row in rows:
        row["payload"] = row["payload"][:2000].decode("utf-8", "replace")
    return rows


@router.get("/users")
def users(request: Request, who: Admin) -> list[dict[str, Any]]:
    return queries.users(request.app.state.engine)


@router.post("/users", status_code=201)
def add_user(request: Request, body: UserIn, who: Admin) -> dict[str, Any]:
    engine = request.app.state.engine
    run(actions.create_user, engine, who, body.username, body.password, body.role, body.plants)
    return {"username": body.username, "role": body.role, "plants": body.plants}


@router.post("/users/{username}/keys", status_code=201)
def add_key(request: Request, username: str, body: KeyIn, who: Admin) -> dict[str, str]:
    """A new API key for a user; shown in this answer only, kept as its SHA-256."""
    key = run(actions.create_key, request.app.state.engine, who, username, body.name)
    return {"username": username, "key": key}


@router.delete("/users/{username}/keys")
def revoke_keys(request: Request, username: str, who: Admin) -> dict[str, Any]:
    """Revoke every API key of a user; requests with them are refused from now on."""
    revoked = run(actions.revoke, request.app.state.engine, who, username)
    return {"username": username, "revoked": revoked}


@router.get("/audit")
def audit_log(request: Request, who: Admin, limit: int = 200) -> list[dict[str, Any]]:
    return queries.audit_log(request.app.state.engine, limit)


# --- live -----------------------------------------------------------------------------


@router.get("/live")
async def live(request: Request, who: Viewer, plant: str | None = None) -> StreamingResponse:
    """Server-sent events: every verdict, state and shot of the plants the caller sees,
    starting with the last value of each topic (like MQTT retain)."""
    if plant is not None and not who.sees(plant):
        raise HTTPException(403, f"you have no access to plant {plant!r}")
    hub: Hub = request.app.state.hub

    def accepts(topic: str) -> bool:
        route = parse(topic)
        return who.sees(route.plant) and plant in (None, route.plant)

    subscription = hub.subscribe(accepts)

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            while True:
                event = await subscription.get(timeout=KEEPALIVE_S)
                if event is None:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                data = json.dumps({"topic": event.topic, "payload": event.payload}, default=str)
                yield f"data: {data}\n\n"
        finally:
            subscription.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
