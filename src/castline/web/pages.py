"""Server-rendered pages of the dashboard (Jinja2), with forms that post back and redirect."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from castline.analytics import kpis as analytics_kpis
from castline.analytics import maintenance as analytics_maintenance
from castline.analytics import rootcause, spc
from castline.domain.alarms import CAUSES
from castline.domain.defects import DefectCatalogue
from castline.domain.shot import PartKey
from castline.domain.units import BY_NAME, PARAMETERS
from castline.domain.verdict import Region, Verdict
from castline.store.reads import Reads
from castline.web import (
    actions,
    analytics,
    die_words,
    heat_legend,
    i18n,
    model_history,
    page_context,
    pareto,
    queries,
    refusal_words,
    review_page,
    shift_report,
)
from castline.web.analytics import optional, plant_config
from castline.web.api import Admin, Engineer, Operator, Viewer, line_problems, line_status, scope
from castline.web.auth import (
    CSRF_FIELD,
    SESSION_KEY,
    attempt_login,
    audit,
    check_csrf,
    close_session,
    csrf_token,
    open_session,
    public,
)
from castline.web.overview import ranked
from castline.web.params import (
    ID,
    Cavity,
    FilterId,
    MachineId,
    PageNumber,
    PlantId,
    RowId,
    ShotNumber,
    UserName,
    WaitingVerdict,
)
from castline.web.part_views import part_views
from castline.web.plant_time import PlantClock

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


templates.env.filters["percent"] = _percent
templates.env.filters["beyond_score"] = review_page.beyond_score
page_context.install(templates.env)  # plant time, part keys, numbers


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    who = getattr(request.state, "principal", None)
    context |= {
        "who": who,
        "csrf_field": CSRF_FIELD,
        "csrf": csrf_token(request),
        "plants": queries.plants(request.app.state.engine, scope(who)) if who else [],
        "flash": (flash := request.session.pop("flash", None)),
        "flash_bad": bool(flash) and flash.startswith(NOT_DONE),
        "problems": line_problems(request.app) if who else {},  # health, on every page
        "overload": request.app.state.load.now() if who and request.app.state.load else None,
    }
    context = page_context.for_request(request) | context
    response = templates.TemplateResponse(request, name, context, status_code=status)
    page_context.remember_language(request, response)
    return response


NOT_DONE = tuple(i18n.Translator(lang)("flash.not_done", reason="") for lang in i18n.LANGS)


def words(request: Request) -> i18n.Translator:
    """The translator of this request, for messages made outside a template."""
    return i18n.Translator(i18n.of_request(request))


def clock(request: Request) -> PlantClock:
    return PlantClock.of(request.app.state.settings)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    said = refusal_words.page_error(words(request), message)  # access checks say English
    return render(request, "error.html", status=status, status_code=status, message=said)


def refusal(say: i18n.Translator, exc: actions.ActionError) -> str:
    """Why an action was refused, in the page's language (its English where no id)."""
    key = f"refusal.{exc.code}"
    return say(key, **exc.fields) if exc.code and say.has(key) else str(exc)


def not_done(request: Request, exc: actions.ActionError) -> str:
    say = words(request)
    return say("flash.not_done", reason=refusal(say, exc))


def back(url: str, request: Request, flash: str | None = None) -> RedirectResponse:
    if flash:
        request.session["flash"] = flash
    return RedirectResponse(url, status_code=303)


def attempt(request: Request, url: str, done: str, action: Any, *args: Any) -> Any:
    """Run an action for a form; on refusal go back to `url` and say why."""
    try:
        action(*args)
    except actions.ActionError as exc:
        return back(url, request, not_done(request, exc))
    return back(url, request, done)


# --- login -----------------------------------------------------------------------------


Next = Annotated[str, Query(max_length=2000)]


@router.get("/login", dependencies=[Depends(public)])
def login_page(request: Request, next: Next = "/") -> HTMLResponse:
    return render(request, "login.html", next=next)


@router.post("/login", dependencies=[Depends(public)])
async def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Password checks run in a worker thread: argon2 is slow on purpose, and this event
    loop may be the line's (`castline up`)."""
    await check_csrf(request)
    engine = request.app.state.engine
    address = request.client.host if request.client else "unknown"
    outcome = await run_in_threadpool(attempt_login, engine, username, password, address)
    if outcome.locked_s > 0:
        wait = words(request)("login.locked", seconds=math.ceil(outcome.locked_s))
        return render(request, "login.html", status=429, next=next, error=wait)
    who = outcome.principal
    if who is None:
        wrong = words(request)("login.wrong")
        return render(request, "login.html", status=401, next=next, error=wrong)
    session_id = await run_in_threadpool(open_session, engine, who.user_id)
    request.session.clear()  # a fresh session (and CSRF token) after login
    request.session[SESSION_KEY] = session_id
    await run_in_threadpool(audit, engine, who.username, "login", "", None, who.plants)
    safe = next if next.startswith("/") and not next.startswith("//") else "/"
    return RedirectResponse(safe, status_code=303)


@router.post("/logout")
def logout(request: Request, who: Viewer) -> Response:
    """Ends the session in the store too: a copy of the cookie no longer works."""
    engine = request.app.state.engine
    session_id = request.session.get(SESSION_KEY)
    if session_id:
        close_session(engine, str(session_id))
    audit(engine, who.username, "logout", "", None, who.plants)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# --- plant, machine, part ----------------------------------------------------------------


@router.get("/")
def home(request: Request, who: Viewer) -> Response:
    visible = queries.plants(request.app.state.engine, scope(who))
    if len(visible) == 1:
        return RedirectResponse(f"/plants/{visible[0]['id']}", status_code=303)
    return render(request, "plants.html", choices=visible)


@router.get("/plants/{plant}")
def overview(request: Request, plant: PlantId, who: Viewer) -> HTMLResponse:
    engine, plant_clock = request.app.state.engine, clock(request)
    since = plant_clock.start_of_day()
    tiles = queries.machine_tiles(engine, plant, since)
    shift = plant_clock.shift_at()
    shift_tiles = queries.machine_tiles(engine, plant, shift.start) if shift else []
    oee = request.app.state.oee_today(engine, plant, plant_config(request), since)
    line = line_status(request, plant)
    deadline = request.app.state.settings.verdict_deadline_s
    return render(
        request,
        "overview.html",
        plant=plant,
        ranked=ranked(tiles),
        oee=oee,
        line=line,
        line_text=page_context.line_text(words(request), line, deadline),
        deadline=f"{deadline:g}",
        since=since,
        shift=shift,
        shift_shots={tile["machine"]: tile["shots_today"] for tile in shift_tiles},
    )


@router.get("/plants/{plant}/machines/{machine}")
def machine(
    request: Request,
    plant: PlantId,
    machine: MachineId,
    who: Viewer,
    parameter: Annotated[str, Query(max_length=64)] = "melt_temp_c",
) -> HTMLResponse:
    engine = request.app.state.engine
    tile = next(
        (
            t
            for t in queries.machine_tiles(engine, plant, clock(request).start_of_day())
            if t["machine"] == machine
        ),
        None,
    )
    if tile is None:
        raise HTTPException(404, words(request)("refusal.no_machine", plant=plant, machine=machine))
    if parameter not in BY_NAME:
        parameter = "melt_temp_c"
    die_rows = [d for d in queries.dies(engine, [plant]) if d["code"] == tile["die"]]
    recent = Reads(engine).shots(plant, machine=machine, limit=25)
    config = plant_config(request)
    alarms = [a for a in queries.alarms(engine, [plant], open_only=True) if a["machine"] == machine]
    return render(
        request,
        "machine.html",
        plant=plant,
        tile=tile,
        parameter=parameter,
        parameters=PARAMETERS,
        die=die_rows[0] if die_rows else None,
        maintenance=queries.die_maintenance(engine, tile["die"]) if tile["die"] else [],
        recent=recent,
        alarms=alarms,
        spc=optional(spc.control_chart, engine, plant, machine, parameter, last=1, config=config),
        causes=optional(rootcause.report, engine, plant, machine=machine),
    )


@router.get("/parts")
def find_part(
    request: Request, who: Viewer, key: Annotated[str, Query(max_length=300)] = ""
) -> Response:
    """Search by part key plant/machine/shot_number."""
    try:
        part = PartKey.parse(key.strip())
    except ValueError:
        say = words(request)
        return back(
            request.headers.get("referer", "/"),
            request,
            say("refusal.part_key", key=key.strip()[:60]),
        )
    where = f"/plants/{quote(part.plant)}/parts/{quote(part.machine)}/{part.shot_number}"
    return RedirectResponse(
        where if part.cavity == 1 else f"{where}?cavity={part.cavity}", status_code=303
    )


@router.get("/plants/{plant}/parts/{machine}/{shot_number}")
def part(
    request: Request,
    plant: PlantId,
    machine: MachineId,
    shot_number: ShotNumber,
    who: Viewer,
    cavity: Cavity = 1,
) -> Response:
    key = PartKey(plant, machine, shot_number, cavity=cavity)
    found = Reads(request.app.state.engine).part(key)
    if found is None:
        raise HTTPException(404, words(request)("refusal.no_part", key=key))
    views = part_views(found["images"], found["verdict"], request.app.state.blobs)
    shot, told = found["shot"] or {}, found["verdict"] or {}
    readings = [(p, shot.get(p.name)) for p in PARAMETERS if shot.get(p.name) is not None]
    threshold = heat_legend.region_threshold(
        request.app.state.engine, shot.get("die"), told.get("model_version")
    )
    regions = [Region(**r) for r in told.get("regions") or []]
    return render(
        request,
        "part.html",
        key=key,
        part=found,
        views=views,
        heat=heat_legend.legend(regions, threshold),
        readings=readings,
        limits=analytics.part_limits(
            request.app.state.engine, shot, [p.name for p, _ in readings], plant_config(request)
        )
        if shot
        else {},
        catalogue=list(DefectCatalogue()),
    )


# --- review loop -------------------------------------------------------------------------


@router.get("/reviews")
def review_queue(
    request: Request,
    who: Viewer,
    page: PageNumber = 1,
    machine: FilterId = None,
    verdict: WaitingVerdict = None,
) -> HTMLResponse:
    """One page of the waiting parts, filtered by machine id and by verdict."""
    engine, visible = request.app.state.engine, scope(who)
    where = queries.QueueFilter(machine, Verdict(verdict) if verdict else None)
    matching = queries.review_queue_size(engine, visible, where)
    view = review_page.QueueView(machine, verdict, page, matching)
    return render(
        request,
        "reviews.html",
        queue=queries.review_queue(engine, visible, view.per_page, view.offset, where),
        view=view,
        machines=queries.review_queue_machines(engine, visible),
        done=queries.reviews(engine, visible, 20),
        catalogue=list(DefectCatalogue()),
    )


@router.post("/plants/{plant}/parts/{machine}/{shot_number}/review")
def review(
    request: Request,
    plant: PlantId,
    machine: MachineId,
    shot_number: ShotNumber,
    who: Operator,
    decision: Annotated[str, Form()],
    defect_type: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/reviews",
    confirmed: Annotated[str, Form(max_length=3)] = "",
    cavity: Cavity = 1,
) -> Response:
    key = PartKey(plant, machine, shot_number, cavity=cavity)
    url = next if next.startswith("/") and not next.startswith("//") else "/reviews"
    engine, say = request.app.state.engine, words(request)
    try:
        actions.review_part(
            engine, who, key, decision, defect_type or None, comment, None, confirmed == "yes"
        )
    except actions.NeedsConfirmation:
        action = f"/plants/{plant}/parts/{machine}/{shot_number}/review"
        action += f"?cavity={cavity}" if cavity > 1 else ""
        fields = {"decision": decision, "defect_type": defect_type, "next": url, "confirmed": "yes"}
        told = Reads(engine).verdict(key) or {}
        text = say("review.override_text", key=key, verdict=say.verdict(told.get("verdict")))
        return render(
            request, "confirm.html", action=action, title=say("review.override"),
            text=text, fields=fields, reason=comment, cancel=url,
        )  # fmt: skip
    except actions.ActionError as exc:
        return back(url, request, say("flash.not_done", reason=refusal(say, exc)))
    return back(url, request, say("review.done", key=key, decision=say.verdict(decision.upper())))


# --- alarms, models, dies, KPIs, plant IT ---------------------------------------------------


@router.get("/alarms")
def alarms(request: Request, who: Viewer) -> HTMLResponse:
    rows = queries.alarms(request.app.state.engine, scope(who))
    return render(request, "alarms.html", alarms=rows, causes=CAUSES)


@router.post("/alarms/{alarm_id}/ack")
def acknowledge(
    request: Request,
    alarm_id: RowId,
    who: Operator,
    cause: Annotated[str, Form(max_length=40)] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    return attempt(
        request,
        "/alarms",
        words(request)("alarms.done", id=alarm_id),
        actions.acknowledge,
        request.app.state.engine,
        who,
        alarm_id,
        cause,
        comment,
    )


@router.get("/models")
def models(request: Request, who: Viewer) -> HTMLResponse:
    rows = queries.models(request.app.state.engine)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["die"], row["view"]), []).append(row)
    rollback = model_history.can_roll_back(request.app.state.engine)
    return render(request, "models.html", groups=groups, can_roll_back=rollback)


@router.get("/models/{model_id}/promote")
def confirm_promote(request: Request, model_id: RowId, who: Engineer) -> HTMLResponse:
    model = queries.model(request.app.state.engine, model_id)
    if model is None:
        raise HTTPException(404, words(request)("refusal.no_model", model=model_id))
    return render(
        request,
        "confirm.html",
        title=words(request)("models.promote_q", version=model["version"]),
        text=words(request)(
            "models.promote_text", die=model["die"], view=model["view"], version=model["version"]
        ),
        action=f"/models/{model_id}/promote",
        fields={},
    )


@router.post("/models/{model_id}/promote")
def promote(request: Request, model_id: RowId, who: Engineer) -> Response:
    try:
        model = actions.promote(request.app.state.engine, who, model_id)
    except actions.ActionError as exc:
        return back("/models", request, not_done(request, exc))
    done = words(request)(
        "models.promoted", die=model["die"], view=model["view"], version=model["version"]
    )
    return back("/models", request, done)


@router.get("/models/rollback")
def confirm_rollback(
    request: Request,
    die: Annotated[str, Query(pattern=ID, max_length=64)],
    view: Annotated[str, Query(pattern=ID, max_length=64)],
    who: Engineer,
) -> HTMLResponse:
    return render(
        request,
        "confirm.html",
        title=words(request)("models.rollback_q", die=die, view=view),
        text=words(request)("models.rollback_text"),
        action="/models/rollback",
        fields={"die": die, "view": view},
    )


@router.post("/models/rollback")
def rollback(
    request: Request, who: Engineer, die: Annotated[str, Form()], view: Annotated[str, Form()]
) -> Response:
    return attempt(
        request,
        "/models",
        words(request)("models.rolled_back", die=die, view=view),
        actions.rollback,
        request.app.state.engine,
        who,
        die,
        view,
    )


@router.get("/dies")
def dies(request: Request, who: Viewer) -> HTMLResponse:
    engine = request.app.state.engine
    until, config = datetime.now(UTC), plant_config(request)
    reports = {
        plant["id"]: analytics_maintenance.report(
            engine, plant["id"], until - timedelta(days=7), until, config
        )
        for plant in queries.plants(engine, scope(who))
    }
    say = words(request)
    for report in reports.values():
        for die in report["dies"]:
            die["action_said"], die["reason_said"] = die_words.advise(say, die)
    cavities = {
        plant: rootcause.scrap_by_cavity(engine, plant, until - timedelta(days=7), until)
        for plant in reports
    }
    return render(
        request,
        "dies.html",
        dies=queries.dies(engine, scope(who)),
        reports=reports,
        cavities={plant: found for plant, found in cavities.items() if found},
    )


@router.get("/kpi")
def kpi(
    request: Request, who: Viewer, days: Annotated[int, Query(ge=1, le=366)] = 7
) -> HTMLResponse:
    """ISO 22400 KPIs of today; the benefit report and defect Pareto of the last `days`."""
    engine = request.app.state.engine
    now, config = datetime.now(UTC), plant_config(request)
    since = clock(request).start_of_day(now)
    reports = [
        {
            "plant": plant["id"],
            "kpis": optional(
                analytics_kpis.kpi_table, engine, plant["id"], since, now, config=config
            )
            or [],
            "pareto": pareto.of_plant(
                engine, plant["id"], now - timedelta(days=days), now, config.calendar
            ),
            "shifts": shift_report.today_and_yesterday(engine, plant["id"], config, now),
            "downstream": Reads(engine).downstream_counts(plant["id"], now - timedelta(days=days)),
        }
        for plant in queries.plants(engine, scope(who))
    ]
    return render(request, "kpi.html", reports=reports, days=days, since=since, notes=config.notes)


@router.get("/dead-letters")
def dead_letters(request: Request, who: Engineer) -> HTMLResponse:
    rows = queries.dead_letters(request.app.state.engine, scope(who))
    for row in rows:
        row["preview"] = row["payload"][:600].decode("utf-8", "replace")
    # Parked messages name no plant one can trust: counted for those who see every plant.
    watch = request.app.state.backlog
    parked = watch.parked if watch is not None and scope(who) is None else None
    return render(request, "dead_letters.html", letters=rows, parked=parked)


def users_page(request: Request, who: Admin, new_key: dict[str, str] | None = None) -> HTMLResponse:
    """Users and audit rows within the admin's plants; key buttons for its own keys."""
    engine = request.app.state.engine
    return render(
        request,
        "users.html",
        users=queries.users(engine, scope(who)),
        audit=queries.audit_log(engine, 50, scope(who)),
        new_key=new_key,
    )


@router.get("/users")
def users(request: Request, who: Admin) -> HTMLResponse:
    return users_page(request, who)


@router.post("/users")
def add_user(
    request: Request,
    who: Admin,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=1000)],
    role: Annotated[str, Form(max_length=16)],
    plants: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    scoped = [p.strip() for p in plants.split(",") if p.strip()]
    engine = request.app.state.engine
    return attempt(
        request,
        "/users",
        words(request)("users.added", user=username),
        actions.create_user,
        engine,
        who,
        username,
        password,
        role,
        scoped,
    )


@router.post("/users/{username}/keys/revoke")
def revoke_keys(request: Request, username: UserName, who: Admin) -> Response:
    try:
        revoked = actions.revoke(request.app.state.engine, who, username)
    except actions.ActionError as exc:
        return back("/users", request, not_done(request, exc))
    return back("/users", request, words(request)("users.revoked", n=revoked, user=username))


@router.post("/users/{username}/keys")
def add_key(request: Request, username: UserName, who: Admin) -> Response:
    """An admin's own new key, shown in this answer only (never in the cookie or the log)."""
    try:
        issued = actions.create_key(request.app.state.engine, who, username)
    except actions.ActionError as exc:
        return back("/users", request, not_done(request, exc))
    return users_page(request, who, {"username": username, "key": issued.key})
