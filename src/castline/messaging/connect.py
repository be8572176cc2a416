"""How castline reaches NATS. Long-running services try again while the broker is away,
each failure said in the log, and give up only when told to stop (a wrong address or a
broker that is down never leaves a service silent, nor deaf to SIGTERM). One-shot
commands try once and say what failed in one line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.aio.client import Client as NATS

from castline.messaging.devices import redact

log = logging.getLogger(__name__)
RETRY_S = 0.5
ONCE_TIMEOUT_S = 30.0  # a one-shot command's whole connect, whatever the server does


async def connect_until_stopped(
    servers: str, stop: asyncio.Event, name: str, **options: Any
) -> NATS | None:
    """A connection to `servers` (comma-separated: a cluster's nodes), or None once `stop`
    is set first. Options go to `nats.connect` (credentials, TLS, callbacks)."""
    shown = redact(servers)  # people read the log: no password

    async def said(exc: Exception) -> None:
        log.warning("NATS %s: %s (retrying; is the broker up?)", shown, exc)

    options.setdefault("error_cb", said)
    connecting = asyncio.ensure_future(
        nats.connect(
            servers=servers.split(","),
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RETRY_S,
            allow_reconnect=True,
            **options,
        )
    )
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not connecting.done():
        connecting.cancel()
        return None
    return connecting.result()


async def connect_once(servers: str, **options: Any) -> NATS:
    """A connection for a one-shot command: one try a server, nothing logged (the command
    says what failed: `nats.errors.Error`, OSError or TimeoutError)."""

    async def quiet(_exc: Exception) -> None:
        return None

    connecting = nats.connect(
        servers=servers.split(","),
        error_cb=quiet,
        allow_reconnect=False,
        max_reconnect_attempts=1,  # without it a refused connect waits on (nats-py)
        reconnect_time_wait=RETRY_S,
        connect_timeout=3,
        **options,
    )
    return await asyncio.wait_for(connecting, ONCE_TIMEOUT_S)
