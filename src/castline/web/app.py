"""The castline web application: JSON API, dashboard pages, live updates, access control."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, make_asgi_app
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from castline import __version__
from castline.analytics import config as analytics_config
from castline.messaging.backlog import BacklogWatch
from castline.settings import Settings
from castline.store.blobs import BlobStore
from castline.store.database import open_store
from castline.vision.review_learning import LearnerConfig, ReviewLearner
from castline.web import actions, api, curve_api, labour_page, pages, risk_api, stops_page
from castline.web.analytics import OeeToday
from castline.web.auth import SESSION_HOURS, Role, require, session_secret
from castline.web.live import Hub, NatsFeed
from castline.web.overload import LoadMonitor
from castline.web.security import METRICS_PATH, MetricsGuard, SecurityHeaders

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class LineLink:
    """How the dashboard reaches the line: its NATS (with a login where the broker asks for
    one), and checks of the parts that whoever runs the dashboard also runs (the embedded
    broker, the line runtime): each returns what is wrong, or None."""

    nats_url: str
    connect_options: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Callable[[], str | None]] = field(default_factory=dict)


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    hub: Hub | None = None,
    line: LineLink | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> FastAPI:
    """Build the dashboard on a store (default: the configured one) and an event hub
    (default: a new one). With `line` the dashboard shows the line's live events and
    backlog, read from its NATS, and its health. With `metrics_registry`
    it serves those Prometheus metrics at /metrics, to the bearer of `metrics_token`
    (or, without one, to admins).

    The caller makes the first admin with `castline.web.auth.ensure_admin` and tells the
    person starting castline where its password is."""
    analytics_config.of(settings)  # a broken analytics file is said at start, not per page
    engine = engine or open_store(settings.db_url)
    app = FastAPI(
        title="castline",
        version=__version__,
        description="Trace every shot, inspect every casting, explain defects, prove the KPIs.",
        docs_url=None,  # served below, behind login like everything else
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.hub = hub or Hub()
    app.state.blobs = BlobStore(settings.blobs)
    app.state.oee_today = OeeToday()
    app.state.line = line
    app.state.backlog = (
        BacklogWatch(line.nats_url, connect_options=line.connect_options) if line else None
    )
    app.state.feed = NatsFeed(app.state.hub, line.nats_url, line.connect_options) if line else None
    app.state.load = LoadMonitor(app.state.hub, app.state.backlog) if app.state.backlog else None
    app.state.learner = _review_loop(settings, engine)
    # Added innermost first: the metrics guard reads the session the middleware opens.
    app.add_middleware(MetricsGuard, token=settings.metrics_token)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings.secret_key, settings.home),
        session_cookie="castline_session",
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if metrics_registry is not None:
        app.mount(METRICS_PATH, make_asgi_app(metrics_registry))
    apis = (api.router, stops_page.api, labour_page.api, curve_api.api, risk_api.api)
    for router in (*apis, pages.router, stops_page.router, labour_page.router):
        app.include_router(router)
    _docs(app)
    app.add_exception_handler(StarletteHTTPException, _error)  # unknown routes too
    return app


def _review_loop(settings: Settings, engine: Engine) -> ReviewLearner | None:
    """Reviews are made here, so the dashboard's process learns from them (setting
    `review_learning`); the line picks up each new version from the registry."""
    if not settings.review_learning:
        return None
    every = settings.review_learning_every_s
    config = LearnerConfig(every, settings.review_learning_min, poll_s=min(5.0, every))
    return ReviewLearner(engine, BlobStore(settings.blobs), settings.models_dir, config)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The review loop; with a NATS URL also the line's backlog and live events, from
    wherever the line runs."""
    stop = asyncio.Event()
    tasks = []
    learner: ReviewLearner | None = app.state.learner
    if learner is not None:
        told = partial(actions.learnt_from_reviews, app.state.engine)
        tasks.append(asyncio.create_task(learner.run(stop, told)))
    watch: BacklogWatch | None = app.state.backlog
    if watch is not None:
        tasks.append(asyncio.create_task(watch.run(stop)))
        tasks.append(asyncio.create_task(app.state.feed.run(stop)))
        tasks.append(asyncio.create_task(app.state.load.run(stop)))  # can the line keep up?
    yield
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)


def _docs(app: FastAPI) -> None:
    viewer = [Depends(require(Role.VIEWER))]

    @app.get("/api/v1/openapi.json", dependencies=viewer, include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", dependencies=viewer, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        """The API reference from the OpenAPI schema, served here: no CDN on a plant LAN."""
        return pages.render(request, "api_docs.html", operations=operations(app.openapi()))


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation of an OpenAPI schema, flattened for the reference page."""
    out = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            answers = []
            for status, answer in op.get("responses", {}).items():
                for media, content in answer.get("content", {}).items():
                    answers.append(f"{status} {media}: {_schema_name(content.get('schema', {}))}")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            "name": p["name"],
                            "where": p["in"],
                            "required": p.get("required", False),
                            "schema": _schema_name(p.get("schema", {})),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": _schema_name(body["schema"]) if body else None,
                    "answers": answers,
                }
            )
    return out


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_schema_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    limits = [
        f"{k} {schema[k]}" for k in ("minimum", "maximum", "maxLength", "pattern") if k in schema
    ]
    kind = str(schema.get("format") or schema.get("type") or "any")
    return kind + (f" ({', '.join(limits)})" if limits else "")


async def _error(request: Request, exc: Exception) -> Response:
    """The API answers JSON; a page sends the browser to the login or shows the error."""
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/api/"):
        return await http_exception_handler(request, exc)
    if exc.status_code == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={target}", status_code=303)
    if "text/html" not in request.headers.get("accept", "text/html"):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    return pages.error_page(request, exc.status_code, str(exc.detail))
