"""What every response carries, and who may read the line's metrics.

Both are plain ASGI middleware, so they also cover what no route declares: static files,
error pages, server-sent events, and a `/metrics` app mounted by the composition root.
"""

from __future__ import annotations

import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from castline.web.auth import Role, principal_of

# Pages use only their own scripts and styles (no inline code, no CDN); images may be
# data: URLs (none today, but browsers show a broken icon rather than fail).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
METRICS_PATH = "/metrics"


class SecurityHeaders:
    """Adds the headers above to every HTTP response (an app's own value wins)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def is_metrics(path: str) -> bool:
    return path == METRICS_PATH or path.startswith(METRICS_PATH + "/")


class MetricsGuard:
    """`/metrics` (and below) answers only with `Authorization: Bearer <metrics_token>`;
    without a configured token, only to an admin (API key or session).

    Must sit inside the session middleware, which it reads."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_metrics(scope["path"]):
            await self.app(scope, receive, send)
            return
        refusal = await self._refusal(Request(scope))
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    async def _refusal(self, request: Request) -> JSONResponse | None:
        challenge = {"WWW-Authenticate": 'Bearer realm="castline metrics"'}
        if self.expected is not None:
            sent = request.headers.get("authorization", "").encode()
            if hmac.compare_digest(sent, self.expected):
                return None
            return JSONResponse(
                {"detail": "send the metrics token: Authorization: Bearer <metrics_token>"},
                status_code=401,
                headers=challenge,
            )
        who = await run_in_threadpool(principal_of, request)
        if who is None:
            detail = "metrics need an admin's API key or session (or set metrics_token)"
            return JSONResponse({"detail": detail}, status_code=401, headers=challenge)
        if who.role < Role.ADMIN:
            return JSONResponse({"detail": "metrics need the admin role"}, status_code=403)
        return None
