"""`castline line ...`: a line-runtime worker, the MQTT bridge and the OPC UA reader as
their own processes. `castline line broker` lives in `castline.cli`: it needs the
composition root."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from castline.options import ConfigOption, NatsOption, nats_url, settings_or_exit

if TYPE_CHECKING:
    from castline.settings import Settings

app = typer.Typer(
    help="The line runtime: ingest, join, inspect, decide, publish, record.", no_args_is_help=True
)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def _login(settings: Settings, role: str = "line") -> dict[str, Any]:
    """castline's own login (`role`) where this home's broker made one; a NATS of the plant's
    own has its own security."""
    from castline.messaging import devices

    if settings.nats_url:
        return devices.connect_options(None, settings.tls)
    if role == "line":
        return devices.home_options(settings.home, settings.tls)
    return devices.service_options(settings.home, settings.tls, devices.Role(role))


def _unreachable(url: str) -> typer.Exit:
    typer.echo(
        f"cannot reach NATS at {url}: start it with `castline up` or `castline line broker`, "
        "or give the right server with --nats (or the setting nats_url)",
        err=True,
    )
    return typer.Exit(1)


@app.command("run")
def run(
    nats: NatsOption = None,
    plant: Annotated[str | None, typer.Option(help="only this plant's messages")] = None,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="one JSON object a line")] = False,
    config: ConfigOption = None,
) -> None:
    """Run one line-runtime worker on an existing NATS server (workers share the work)."""
    from nats.errors import NoServersError

    from castline import logs
    from castline.line.runtime import LineRuntime
    from castline.store.database import open_store

    logs.setup(json_logs)
    settings = settings_or_exit(config)
    url = nats or nats_url(settings)
    login = _login(settings)

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        engine = open_store(settings.db_url)
        runtime = LineRuntime(settings, engine, url, plant=plant, connect_options=login)
        await runtime.run(stop)

    try:
        asyncio.run(main())
    except (NoServersError, OSError):
        raise _unreachable(url) from None


@app.command("bridge")
def bridge(
    mqtt_url: Annotated[str, typer.Argument(help="the plant's broker, mqtt://host:1883")],
    nats: NatsOption = None,
    plant: Annotated[str, typer.Option(help="bridge only this plant ('+' = all)")] = "+",
    config: ConfigOption = None,
) -> None:
    """Bridge a plant's MQTT broker into castline: devices in, verdicts out."""
    from castline import logs
    from castline.messaging.mqtt_bridge import MqttBridge

    logs.setup()
    settings = settings_or_exit(config)
    url = nats or nats_url(settings)
    # checks the URL before anything starts
    bridge = MqttBridge(mqtt_url, url, plant, connect_options=_login(settings, "bridge"))

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await bridge.run(stop)

    asyncio.run(main())


@app.command("opcua")
def opcua(
    endpoints: Annotated[list[str], typer.Argument(help="opc.tcp://host:port/path, one a machine")],
    nats: NatsOption = None,
    config: ConfigOption = None,
) -> None:
    """Read machines over OPC UA into castline (cycles become shot records)."""
    from castline import logs
    from castline.messaging.opcua_client import OpcUaReader

    for endpoint in endpoints:
        parsed = urlsplit(endpoint)
        if parsed.scheme != "opc.tcp" or not parsed.hostname:
            raise typer.BadParameter(
                f"{endpoint[:200]!r} is no OPC UA endpoint: give opc.tcp://host:4840/path",
                param_hint="ENDPOINTS",
            )
    logs.setup()
    settings = settings_or_exit(config)
    url = nats or nats_url(settings)

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        login = _login(settings)
        readers = [OpcUaReader(endpoint, url, connect_options=login) for endpoint in endpoints]
        await asyncio.gather(*(reader.run(stop) for reader in readers))
        for reader in readers:
            typer.echo(f"{reader.endpoint}: {reader.stats}")

    asyncio.run(main())


@app.command("parked")
def parked(
    last: Annotated[int, typer.Option(min=1, max=10_000, help="the newest N")] = 20,
    nats: NatsOption = None,
    config: ConfigOption = None,
) -> None:
    """Messages parked in the broker: they could not even be stored as dead letters."""
    from nats.errors import NoServersError

    from castline.cli_text import say
    from castline.messaging import parking
    from castline.messaging.connect import connect_once

    settings = settings_or_exit(config)
    url = nats or nats_url(settings)

    async def main() -> list[parking.Parked]:
        nc = await connect_once(url, **_login(settings))
        try:
            return await parking.latest(nc.jetstream(), last)
        finally:
            await nc.close()

    try:
        found = asyncio.run(main())
    except (NoServersError, OSError, TimeoutError):
        raise _unreachable(url) from None
    if not found:
        typer.echo(say("parked.none"))
    for p in found:
        at = f"{p.at:%Y-%m-%d %H:%M:%S}"
        typer.echo(say("parked.line", at=at, subject=p.subject, size=p.size))
        typer.echo(f"  {p.reason}")
        typer.echo(f"  {p.head!r}")
