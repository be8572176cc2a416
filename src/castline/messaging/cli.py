"""`castline hub`: the central site's NATS, which copies every plant's stream."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated, Any

import typer

from castline.options import ConfigOption, settings_or_exit


def hub(
    plants: Annotated[
        list[str] | None, typer.Option("--plant", help="plant id to copy (repeat for more)")
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: all)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="NATS client port of the hub")] = 24222,
    leaf_port: Annotated[int, typer.Option(help="leafnode port the plants connect to")] = 17422,
    every: Annotated[float, typer.Option(help="seconds between lag reports")] = 10.0,
    seconds: Annotated[float | None, typer.Option("--for", help="run this long, then stop")] = None,
    config: ConfigOption = None,
) -> None:
    """Run the central hub: plants connect with `castline up --uplink nats://HOST:LEAF_PORT`."""
    from castline import logs
    from castline.messaging import uplink
    from castline.messaging.broker import BrokerError, EmbeddedNats
    from castline.messaging.devices import connect_options

    logs.setup()
    settings = settings_or_exit(config)
    server = EmbeddedNats(
        settings.home / "hub",
        port=port,
        mqtt_port=None,
        host=host,
        name="castline-hub",
        domain=uplink.HUB_DOMAIN,
        leaf_port=leaf_port,
        tls=settings.tls,  # plants then connect with tls://
    )
    try:
        server.start()
    except BrokerError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    server.supervise()  # restarted when it dies; gives up (and says so in the log) after 5
    scheme = "tls" if settings.tls else "nats"
    typer.echo(f"hub: clients {server.url}, plants connect to {scheme}://{host}:{leaf_port}")
    options = connect_options(None, settings.tls)
    try:
        asyncio.run(_watch(server.url, plants or [], every, seconds, options))
    except ValueError as exc:  # a plant id that cannot be a JetStream domain
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        server.stop()


async def _watch(
    url: str, plants: list[str], every: float, seconds: float | None, options: dict[str, Any]
) -> None:
    """Report each plant's lag; re-attach a plant's source when it stalls after a cut."""
    import nats

    from castline.messaging import uplink

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds is not None:
        loop.call_later(seconds, stop.set)
    nc = await nats.connect(url, **options)
    try:
        await uplink.ensure_central(nc, plants)
        reported = 0.0
        while not stop.is_set():
            for plant in await uplink.resume_stalled(nc):
                typer.echo(f"{plant}: answers again; its copy resumes")
            if loop.time() - reported >= every:
                reported = loop.time()
                for lag in await uplink.plant_lags(nc):
                    typer.echo(lag.line())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(every, uplink.WATCH_S))
    finally:
        await nc.close()
