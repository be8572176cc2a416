"""The JSON API under /api/v1: what the pages show, for scripts and other systems."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from castline.analytics import charts as analytics_charts
from castline.analytics import kpis as analytics_kpis
from castline.analytics import maintenance as analytics_maintenance
from castline.analytics import rootcause, spc
from castline.domain.defects import DefectCatalogue
from castline.domain.shot import PartKey
from castline.domain.units import BY_NAME, NAMES
from castline.domain.verdict import Verdict
from castline.messaging.backlog import BacklogWatch, describe
from castline.messaging.schema import DownstreamMessage
from castline.messaging.topics import parse
from castline.store.reads import Reads
from castline.web import actions, analytics, charts, i18n, queries
from castline.web import pareto as pareto_report
from castline.web import schemas as out
from castline.web.analytics import optional, plant_config
from castline.web.auth import Principal, Role, keys_of, public, require
from castline.web.live import Hub
from castline.web.params import (
    ID,
    ONE_LINE,
    Days,
    Digest,
    MachineId,
    Moment,
    OptionalId,
    Parameter,
    PlantId,
    Points,
    RowId,
    Rows,
    ShotNumber,
    Text,
    UserName,
    window,
)

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Engineer = Annotated[Principal, Depends(require(Role.ENGINEER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

router = APIRouter(prefix="/api/v1", tags=["castline"])
KEEPALIVE_S = 15.0
_BINARY = {"schema": {"type": "string", "format": "binary"}}


class PngResponse(Response):
    media_type = "image/png"


PNG: dict[str, Any] = {
    "response_class": PngResponse,
    "responses": {200: {"description": "a chart", "content": {"image/png": _BINARY}}},
}


def scope(who: Principal) -> list[str] | None:
    """The plants a caller may see, as the queries take them (None: every plant)."""
    return list(who.plants) if who.plants else None


def run(action: Any, *args: Any) -> Any:
    try:
        return action(*args)
    except actions.ActionError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def png(data: bytes) -> Response:
    return PngResponse(data, headers={"Cache-Control": "no-store"})


def known_parameter(parameter: str) -> str:
    if parameter not in BY_NAME:
        raise HTTPException(422, f"unknown parameter {parameter!r}; known: {', '.join(NAMES)}")
    return parameter


# --- who and where -----------------------------------------------------------------


@router.get(
    "/health",
    dependencies=[Depends(public)],
    response_model=out.Health,
    responses={503: {"model": out.Health, "description": "a part of the line is not well"}},
)
def health(request: Request, response: Response) -> dict[str, Any]:
    """Whether the line is well: the broker, the line runtime and the stream it fills, as
    far as this dashboard can see them. Not well answers 503, for load balancers and
    monitoring."""
    problems = line_problems(request.app)
    if problems:
        response.status_code = 503
    return {"status": "degraded" if problems else "ok", "problems": problems}


def line_problems(app: Any) -> dict[str, str]:
    problems: dict[str, str] = {}
    link = app.state.line
    for name, check in (link.checks if link else {}).items():
        if (problem := check()) is not None:
            problems[name] = problem
    watch = app.state.backlog
    if watch is not None and watch.error:
        problems["nats"] = watch.error
    if watch is not None and watch.stream_alarm:
        problems["stream"] = watch.stream_alarm
    return problems


@router.get("/me", response_model=out.Me)
def me(who: Viewer) -> dict[str, Any]:
    return {"username": who.username, "role": who.role.label, "plants": list(who.plants)}


@router.get("/plants", response_model=list[out.PlantOut])
def plants(request: Request, who: Viewer) -> list[dict[str, Any]]:
    return queries.plants(request.app.state.engine, scope(who))


@router.get("/plants/{plant}/overview", response_model=list[out.MachineTile])
def overview(request: Request, plant: PlantId, who: Viewer) -> list[dict[str, Any]]:
    """One tile per machine: state, die, shots and yield today, last casting, open alarms."""
    since = analytics.start_of_day(request.app.state.settings)
    return queries.machine_tiles(request.app.state.engine, plant, since)


@router.get("/plants/{plant}/line", response_model=out.LineStatus)
def line(request: Request, plant: PlantId, who: Viewer) -> dict[str, Any]:
    """How far inspection is behind: parts waiting in JetStream, in inspection, the oldest."""
    return line_status(request, plant)


def line_status(request: Request, plant: str) -> dict[str, Any]:
    watch: BacklogWatch | None = request.app.state.backlog
    deadline_s = request.app.state.settings.verdict_deadline_s
    if watch is None:
        return describe(None, deadline_s, "this dashboard runs without --nats")
    unknown = watch.error or "no line runtime has started on this broker yet"
    return describe(watch.for_plant(plant), deadline_s, unknown)


@router.get("/plants/{plant}/shots", response_model=out.many(out.ShotRow))
def shots(
    request: Request,
    plant: PlantId,
    who: Viewer,
    machine: OptionalId = None,
    die: OptionalId = None,
    verdict: Verdict | None = None,
    limit: Points = 200,
) -> list[dict[str, Any]]:
    return Reads(request.app.state.engine).shots(
        plant, machine=machine, die=die, verdict=verdict, limit=limit
    )


@router.get("/plants/{plant}/parts/{machine}/{shot_number}", response_model=out.PartOut)
def part(
    request: Request, plant: PlantId, machine: MachineId, shot_number: ShotNumber, who: Viewer
) -> Any:
    found = Reads(request.app.state.engine).part(PartKey(plant, machine, shot_number))
    if found is None:
        raise HTTPException(404, f"no part {plant}/{machine}/{shot_number}")
    return found


@router.get("/plants/{plant}/machines/{machine}/trend", response_model=list[out.TrendPoint])
def trend(
    request: Request,
    plant: PlantId,
    machine: MachineId,
    parameter: Parameter,
    who: Viewer,
    limit: Points = 500,
) -> list[dict[str, Any]]:
    name = known_parameter(parameter)
    return queries.parameter_series(request.app.state.engine, plant, machine, name, limit)


@router.get("/plants/{plant}/machines/{machine}/trend.png", **PNG)
def trend_png(
    request: Request, plant: PlantId, machine: MachineId, parameter: Parameter, who: Viewer
) -> Response:
    """Readings coloured by verdict, with the control limits of castline.analytics."""
    name = known_parameter(parameter)
    engine = request.app.state.engine
    series = queries.parameter_series(engine, plant, machine, name)
    config = plant_config(request)
    chart = optional(spc.control_chart, engine, plant, machine, name, last=1, config=config)
    limits = {k: chart[k] for k in ("lcl", "center", "ucl")} if chart else None
    t = charts.words(i18n.of_request(request))
    unit = chart["unit"] if chart else BY_NAME[name].unit  # "source units" if doubtful
    said = i18n.Translator(i18n.of_request(request))
    label = f"{t.param(name)}, {said(f'unit.{unit}') if said.has(f'unit.{unit}') else unit}"
    return png(charts.trend(series, label, limits, t=t))


@router.get("/plants/{plant}/machines/{machine}/control-chart", response_model=out.ControlChart)
def control_chart(
    request: Request,
    plant: PlantId,
    machine: MachineId,
    parameter: Parameter,
    who: Viewer,
    last: Points = 500,
) -> dict[str, Any]:
    """SPC of one parameter (castline.analytics): limits, capability, rule hits, points."""
    name = known_parameter(parameter)
    engine, config = request.app.state.engine, plant_config(request)
    try:
        return spc.control_chart(engine, plant, machine, name, last=last, config=config)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/plants/{plant}/machines/{machine}/control-chart.png", **PNG)
def control_chart_png(
    request: Request, plant: PlantId, machine: MachineId, parameter: Parameter, who: Viewer
) -> Response:
    name = known_parameter(parameter)
    engine = request.app.state.engine
    chart = optional(spc.stored_chart, engine, plant, machine, name, config=plant_config(request))
    if chart is None:
        raise HTTPException(404, f"no shots of {plant}/{machine} to chart {name!r}")
    t = charts.words(i18n.of_request(request))
    with charts.fonts(t):
        words = charts.plant_words(t, request.app.state.settings)
        return png(analytics_charts.machine_chart_png(chart, plant, machine, words))


@router.get("/plants/{plant}/root-cause", response_model=out.RootCause)
def root_cause(
    request: Request, plant: PlantId, who: Viewer, machine: OptionalId = None
) -> dict[str, Any]:
    """Parameters ranked by how much they explain NG parts (castline.analytics)."""
    found = optional(rootcause.report, request.app.state.engine, plant, machine=machine)
    if found is None:
        raise HTTPException(404, f"no shots of plant {plant} to explain")
    return found


@router.get("/plants/{plant}/kpis", response_model=list[out.KpiRow])
def kpis(
    request: Request,
    plant: PlantId,
    who: Viewer,
    since: Moment = None,
    until: Moment = None,
    by: Literal["shift", "day", "week", "total"] = "day",
    level: Literal["machine", "line", "plant"] = "machine",
) -> list[dict[str, Any]]:
    """ISO 22400 KPIs per machine, line or plant and shift, day or week; default: the
    plant's today so far (from midnight in its zone, not UTC's)."""
    settings = request.app.state.settings
    start, end = window(since, until, lambda now: analytics.start_of_day(settings, now))
    config = plant_config(request)
    try:
        return analytics_kpis.kpi_table(
            request.app.state.engine, plant, start, end, by=by, level=level, config=config
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/plants/{plant}/kpi-trend.png", **PNG)
def kpi_trend_png(request: Request, plant: PlantId, who: Viewer, days: Days = 14) -> Response:
    until = datetime.now(UTC)
    since = analytics.start_of_day(request.app.state.settings, until - timedelta(days=days - 1))
    rows = analytics_kpis.kpi_table(
        request.app.state.engine, plant, since, until, level="plant", config=plant_config(request)
    )
    t = charts.words(i18n.of_request(request))
    with charts.fonts(t):
        words = charts.plant_words(t, request.app.state.settings)
        drawn = analytics_charts.kpi_trend_png(rows, words=words, span=(since, until))
    return png(drawn)


@router.get("/plants/{plant}/benefit", response_model=out.Benefit)
def benefit(request: Request, plant: PlantId, who: Viewer) -> dict[str, Any]:
    """The four targets under the plan of the analytics file ([benefit]): baseline and
    comparison periods, bootstrap intervals, a verdict each and the assumptions."""
    return analytics.benefit(request.app.state.engine, plant, plant_config(request))


@router.get("/plants/{plant}/maintenance", response_model=out.Maintenance)
def maintenance(request: Request, plant: PlantId, who: Viewer, days: Days = 7) -> dict[str, Any]:
    """Dies due for maintenance and why; downtime by cause, MTBF and MTTR."""
    until = datetime.now(UTC)
    since, config = until - timedelta(days=days), plant_config(request)
    return analytics_maintenance.report(request.app.state.engine, plant, since, until, config)


@router.get("/plants/{plant}/pareto", response_model=list[out.ParetoRow])
def pareto(
    request: Request, plant: PlantId, who: Viewer, machine: OptionalId = None
) -> list[dict[str, Any]]:
    counts = queries.defect_pareto(request.app.state.engine, plant, machine)
    return [{"defect_type": k, "parts": n} for k, n in counts]


@router.get("/plants/{plant}/pareto.png", **PNG)
def pareto_png(
    request: Request, plant: PlantId, who: Viewer, machine: OptionalId = None
) -> Response:
    counts = queries.defect_pareto(request.app.state.engine, plant, machine)
    return png(charts.pareto(counts, t=charts.words(i18n.of_request(request))))


@router.get("/plants/{plant}/pareto/{by}.png", **PNG)
def pareto_by_png(
    request: Request,
    plant: PlantId,
    by: Literal["defect_type", "machine", "die", "shift"],
    who: Viewer,
    days: Days = 7,
) -> Response:
    """Confirmed NG parts of the last `days` by one grouping, as bars with the cumulative
    share (the shift: the plant calendar's, in which the part was cast)."""
    now, say = datetime.now(UTC), i18n.Translator(i18n.of_request(request))
    counts = pareto_report.counts(
        request.app.state.engine,
        plant,
        now - timedelta(days=days),
        now,
        by,
        plant_config(request).calendar,
    )
    none = say("pareto.between_shifts" if by == "shift" else "pareto.unnamed")
    named = [(name if name is not None else none, n) for name, n in counts]
    title = say("pareto.chart", by=say(f"pareto.by.{by}").lower(), days=days)  # mid-sentence
    return png(charts.pareto(named, title, t=charts.words(i18n.of_request(request))))


@router.get("/dies", response_model=out.many(out.DieRecord))
def dies(request: Request, who: Viewer) -> list[dict[str, Any]]:
    return queries.dies(request.app.state.engine, scope(who))


@router.get("/dies.png", **PNG)
def dies_png(request: Request, who: Viewer) -> Response:
    dies = queries.dies(request.app.state.engine, scope(who))
    return png(charts.die_life(dies, t=charts.words(i18n.of_request(request))))


@router.get(
    "/blobs/{digest}",
    response_class=Response,
    responses={
        200: {
            "description": "the image or heat map",
            "content": {"image/jpeg": _BINARY, "image/png": _BINARY},
        }
    },
)
def blob(request: Request, digest: Digest, who: Viewer) -> Response:
    """An image or heat map, to those who may see a part that holds it."""
    engine = request.app.state.engine
    if not any(who.sees(p) for p in queries.blob_plants(engine, digest)):
        raise HTTPException(404, "no such image")
    try:
        data = request.app.state.blobs.get(digest)
    except KeyError:
        raise HTTPException(404, "image recorded but missing from the blob store") from None
    headers = {"Cache-Control": "private, max-age=86400, immutable"}
    return Response(data, media_type=queries.blob_content_type(engine, digest), headers=headers)


# --- review loop --------------------------------------------------------------------


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewIn(In):
    decision: Verdict = Field(description="OK or NG as confirmed by a person")
    defect_type: str | None = Field(
        None, max_length=40, pattern=ID, description="defect catalogue code, for NG"
    )
    comment: Text = ""
    confirmed: bool = Field(
        False,
        description="true to pass (OK) a part castline judged NG or QUARANTINE; needs a comment",
    )


@router.get("/defect-types", response_model=list[out.DefectType])
def defect_types(who: Viewer) -> list[dict[str, Any]]:
    return [
        {"code": d.code, "name": d.name, "description": d.description} for d in DefectCatalogue()
    ]


@router.get("/reviews/queue", response_model=out.many(out.QueuedPart))
def review_queue(request: Request, who: Viewer, limit: Rows = 100) -> list[dict[str, Any]]:
    """REVIEW and NG parts that wait for a person."""
    return queries.review_queue(request.app.state.engine, scope(who), limit)


@router.get("/reviews", response_model=out.many(out.ReviewRecord))
def reviews(request: Request, who: Viewer, limit: Rows = 100) -> list[dict[str, Any]]:
    return queries.reviews(request.app.state.engine, scope(who), limit)


@router.post(
    "/plants/{plant}/parts/{machine}/{shot_number}/review",
    status_code=201,
    response_model=out.ReviewDone,
)
def review(
    request: Request,
    plant: PlantId,
    machine: MachineId,
    shot_number: ShotNumber,
    body: ReviewIn,
    who: Operator,
) -> dict[str, str]:
    key = PartKey(plant, machine, shot_number)
    engine = request.app.state.engine
    decision, defect, comment = body.decision.value, body.defect_type, body.comment
    run(actions.review_part, engine, who, key, decision, defect, comment, None, body.confirmed)
    return {"part": str(key), "decision": body.decision.value}


# --- downstream stations ------------------------------------------------------------------


@router.post("/plants/{plant}/downstream", status_code=201, response_model=out.DownstreamPosted)
def post_downstream(
    request: Request, plant: PlantId, body: DownstreamMessage, who: Operator
) -> dict[str, Any]:
    """A downstream station's result for a part (the message of docs/protocol.md,
    "downstream"): by data-matrix code or part key; kept even before its part is known."""
    if body.plant != plant:
        raise HTTPException(422, f"the result names plant {body.plant!r}, the path {plant!r}")
    done = run(actions.post_downstream, request.app.state.engine, who, body)
    return {"recorded": done.new, "part": str(done.part) if done.part else None}


@router.get("/plants/{plant}/downstream", response_model=out.many(out.DownstreamRecord))
def downstream_results(
    request: Request, plant: PlantId, who: Viewer, unmatched: bool = False, limit: Rows = 200
) -> list[dict[str, Any]]:
    """A plant's downstream results, newest first; `unmatched`: those whose part is not
    known (yet)."""
    return Reads(request.app.state.engine).downstream_results(plant, unmatched, limit)


# --- alarms ---------------------------------------------------------------------------


class AckIn(In):
    """Acknowledging closes the alarm: it takes the cause (one of the plant's named causes,
    `domain.alarms.CAUSES`) and a sentence on what caused it and what was done."""

    cause: Text = Field(min_length=1, max_length=40)
    comment: Text = Field(min_length=1)


@router.get("/alarms", response_model=out.many(out.AlarmRecord))
def alarms(request: Request, who: Viewer, open_only: bool = False) -> list[dict[str, Any]]:
    return queries.alarms(request.app.state.engine, scope(who), open_only)


@router.post("/alarms/{alarm_id}/ack", response_model=out.AlarmAcked)
def acknowledge(request: Request, alarm_id: RowId, body: AckIn, who: Operator) -> dict[str, Any]:
    run(actions.acknowledge, request.app.state.engine, who, alarm_id, body.cause, body.comment)
    return {"alarm": alarm_id, "acked_by": who.username}


# --- models ----------------------------------------------------------------------------


class RollbackIn(In):
    die: str = Field(pattern=ID, max_length=64)
    view: str = Field(pattern=ID, max_length=64)


@router.get("/models", response_model=out.many(out.ModelRecord))
def models(request: Request, who: Viewer) -> list[dict[str, Any]]:
    return queries.models(request.app.state.engine)


@router.post("/models/{model_id}/promote", response_model=out.ActiveModel)
def promote(request: Request, model_id: RowId, who: Engineer) -> dict[str, Any]:
    model = run(actions.promote, request.app.state.engine, who, model_id)
    return {"die": model["die"], "view": model["view"], "version": model["version"]}


@router.post("/models/rollback", response_model=out.ActiveModel)
def rollback(request: Request, body: RollbackIn, who: Engineer) -> dict[str, Any]:
    return dict(run(actions.rollback, request.app.state.engine, who, body.die, body.view))


# --- plant IT ------------------------------------------------------------------------


class UserIn(In):
    username: str = Field(min_length=1, max_length=80, pattern=ONE_LINE)
    password: str = Field(min_length=10, max_length=1000)
    role: Literal["viewer", "operator", "engineer", "admin"] = "viewer"
    plants: list[Annotated[str, Field(pattern=ID, max_length=64)]] = Field(
        default_factory=list, max_length=1000, description="empty: every plant"
    )


class KeyIn(In):
    name: str = Field("", max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")


@router.get("/dead-letters", response_model=out.many(out.DeadLetter))
def dead_letters(request: Request, who: Engineer, limit: Rows = 200) -> list[dict[str, Any]]:
    rows = queries.dead_letters(request.app.state.engine, scope(who), limit)
    for row in rows:
        row["payload"] = row["payload"][:2000].decode("utf-8", "replace")
    return rows


@router.get("/users", response_model=list[out.UserOut])
def users(request: Request, who: Admin) -> list[dict[str, Any]]:
    """The users within the caller's plants (an admin of every plant sees all)."""
    return queries.users(request.app.state.engine, scope(who))


@router.post("/users", status_code=201, response_model=out.UserCreated)
def add_user(request: Request, body: UserIn, who: Admin) -> dict[str, Any]:
    engine = request.app.state.engine
    run(actions.create_user, engine, who, body.username, body.password, body.role, body.plants)
    return {"username": body.username, "role": body.role, "plants": body.plants}


@router.get("/me/keys", response_model=list[out.KeyInfo])
def my_keys(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """The caller's own API keys (names and dates; the keys are shown only when made)."""
    return keys_of(request.app.state.engine, who.user_id)


@router.post("/me/keys", status_code=201, response_model=out.NewKey)
def add_my_key(request: Request, body: KeyIn, who: Viewer) -> dict[str, Any]:
    """A new API key of the caller; shown in this answer only, kept as its SHA-256."""
    issued = run(actions.create_key, request.app.state.engine, who, who.username, body.name)
    return {"id": issued.id, "username": who.username, "name": issued.name, "key": issued.key}


@router.delete("/me/keys/{key_id}", response_model=out.KeysRevoked)
def revoke_my_key(request: Request, key_id: RowId, who: Viewer) -> dict[str, Any]:
    run(actions.revoke_own, request.app.state.engine, who, key_id)
    return {"username": who.username, "revoked": 1}


@router.post("/users/{username}/keys", status_code=201, response_model=out.NewKey)
def add_key(request: Request, username: UserName, body: KeyIn, who: Viewer) -> dict[str, Any]:
    """A new API key: only for the caller itself (same as POST /me/keys)."""
    issued = run(actions.create_key, request.app.state.engine, who, username, body.name)
    return {"id": issued.id, "username": username, "name": issued.name, "key": issued.key}


@router.delete("/users/{username}/keys", response_model=out.KeysRevoked)
def revoke_keys(request: Request, username: UserName, who: Viewer) -> dict[str, Any]:
    """Revoke every API key of a user: the caller's own, or, for an admin, those of a user
    within its plants. Requests with them are refused from now on."""
    revoked = run(actions.revoke, request.app.state.engine, who, username)
    return {"username": username, "revoked": revoked}


@router.get("/audit", response_model=out.many(out.AuditRecord))
def audit_log(request: Request, who: Admin, limit: Rows = 200) -> list[dict[str, Any]]:
    """Audit rows; an admin of some plants sees the rows about those plants only."""
    return queries.audit_log(request.app.state.engine, limit, scope(who))


# --- live -----------------------------------------------------------------------------


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "server-sent events, each `data:` a JSON {topic, payload}",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def live(request: Request, who: Viewer, plant: OptionalId = None) -> StreamingResponse:
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
