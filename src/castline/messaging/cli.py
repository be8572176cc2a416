"""`castline hub`: the central site's NATS, which copies every plant's stream.

`castline hub --plant north` runs it; `castline hub add-plant`, `remove-plant`, `photos`
and `plants` change and show what a running hub copies, without a restart: they update
the central stream's sources, which the server acts on at once and the hub's watch
reads back on its next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from castline.cli_text import say
from castline.options import ConfigOption, settings_or_exit
from castline.settings import check_nats_urls

if TYPE_CHECKING:
    from castline.messaging.uplink import PlantLag

T = TypeVar("T")
HUB_PORT = 24222
DEFAULT_HUB = f"nats://127.0.0.1:{HUB_PORT}"  # where `castline hub` listens by default

hub_app = typer.Typer(
    help="Run the central hub, which copies each plant's records and verdicts (photos only "
    "if asked); plants connect with `castline up --uplink nats://HOST:LEAF_PORT`. The "
    "commands below change the plants of a running hub.",
    invoke_without_command=True,
)

HubOption = Annotated[
    str, typer.Option("--hub", help="the running hub's NATS client URL (see `castline hub`)")
]
PlantArgument = Annotated[str, typer.Argument(help="plant id (its JetStream domain)")]


@hub_app.callback()
def hub(
    ctx: typer.Context,
    plants: Annotated[
        list[str] | None, typer.Option("--plant", help="plant id to copy (repeat for more)")
    ] = None,
    photos: Annotated[
        list[str] | None,
        typer.Option("--with-photos", help="plant id whose photos are copied too (repeat)"),
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: all)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="NATS client port of the hub")] = HUB_PORT,
    leaf_port: Annotated[int, typer.Option(help="leafnode port the plants connect to")] = 17422,
    every: Annotated[float, typer.Option(help="seconds between lag reports")] = 10.0,
    seconds: Annotated[float | None, typer.Option("--for", help="run this long, then stop")] = None,
    config: ConfigOption = None,
) -> None:
    """Run the central hub: plants connect with `castline up --uplink nats://HOST:LEAF_PORT`."""
    if ctx.invoked_subcommand is not None:
        return
    from castline import logs
    from castline.messaging import uplink
    from castline.messaging.broker import BrokerError, EmbeddedNats
    from castline.messaging.devices import connect_options

    for plant in [*(plants or []), *(photos or [])]:
        _checked(plant)
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
        asyncio.run(_watch(server.url, plants or [], photos or [], every, seconds, options))
    finally:
        server.stop()


async def _watch(
    url: str,
    plants: list[str],
    photos: list[str],
    every: float,
    seconds: float | None,
    options: dict[str, Any],
) -> None:
    """Report each plant's lag; re-attach a plant's source when it stalls after a cut.
    Plants added or removed live are seen here: each round reads the stream's sources."""
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
        await uplink.ensure_central(nc, plants, photos)
        reported = 0.0
        while not stop.is_set():
            for plant in await uplink.resume_stalled(nc):
                typer.echo(f"{plant}: answers again; its copy resumes")
            if loop.time() - reported >= every:
                reported = loop.time()
                for lag in await uplink.plant_lags(nc):
                    typer.echo(lag_line(lag))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(every, uplink.WATCH_S))
    finally:
        await nc.close()


def lag_line(lag: PlantLag) -> str:
    """One plant's copy as a person reads it, in their language."""
    heard = say("hub.never") if lag.last_heard_s is None else say("hub.ago", s=lag.last_heard_s)
    return say(
        "hub.lag",
        plant=lag.plant,
        lag=lag.lag,
        heard=heard,
        photos=say("hub.with_photos") if lag.photos else "",
        error=say("hub.source_error", error=lag.error) if lag.error else "",
    )


@hub_app.command("add-plant")
def add_plant(
    plant: PlantArgument,
    with_photos: Annotated[
        bool, typer.Option("--with-photos", help="copy its photos too (default: not)")
    ] = False,
    hub_url: HubOption = DEFAULT_HUB,
    config: ConfigOption = None,
) -> None:
    """Start copying a plant on the running hub, at once, without a restart."""
    from castline.messaging import uplink

    _checked(plant)
    added = _on_hub(hub_url, config, lambda nc: uplink.add_plant(nc, plant, with_photos))
    photos = say("hub.and_photos") if with_photos else ""
    typer.echo(say("hub.added" if added else "hub.already", plant=plant, photos=photos))


@hub_app.command("remove-plant")
def remove_plant(plant: PlantArgument, hub_url: HubOption = DEFAULT_HUB,
                 config: ConfigOption = None) -> None:  # fmt: skip
    """Stop copying a plant; what was copied stays, and adding it again resumes the copy."""
    from castline.messaging import uplink

    _checked(plant)
    _on_hub(hub_url, config, lambda nc: uplink.remove_plant(nc, plant), plant)
    typer.echo(say("hub.removed", plant=plant))


@hub_app.command("photos")
def photos(
    plant: PlantArgument,
    state: Annotated[str, typer.Argument(help="on: copy the plant's photos too; off: not")],
    hub_url: HubOption = DEFAULT_HUB,
    config: ConfigOption = None,
) -> None:
    """Copy a plant's photos, or stop; its records' copy goes on where it is."""
    from castline.messaging import uplink

    _checked(plant)
    if state not in ("on", "off"):
        _fail(say("hub.on_off", state=state[:40]), 2)
    on = state == "on"
    changed = _on_hub(hub_url, config, lambda nc: uplink.set_photos(nc, plant, on), plant)
    key = ("hub.photos_on" if on else "hub.photos_off") if changed else "hub.unchanged"
    typer.echo(say(key, plant=plant))


@hub_app.command("plants")
def plants(hub_url: HubOption = DEFAULT_HUB, config: ConfigOption = None) -> None:
    """The plants the running hub copies: photos or not, how far behind, when last heard."""
    from castline.messaging import uplink

    lags = _on_hub(hub_url, config, uplink.plant_lags)
    for lag in lags:
        typer.echo(lag_line(lag))
    if not lags:
        typer.echo(say("hub.none"))


def _checked(plant: str) -> str:
    from castline.messaging.uplink import check_plant

    try:
        return check_plant(plant)
    except ValueError:
        _fail(say("hub.bad_plant", plant=repr(plant[:40])), 2)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(say("error", message=message), err=True)
    raise typer.Exit(code)


def _on_hub(url: str, config: Any, act: Callable[[Any], Awaitable[T]], plant: str = "") -> T:
    """Run `act` with a connection to the hub; any failure ends in one line."""
    from nats.errors import Error as NatsError
    from nats.js.errors import NotFoundError

    try:
        check_nats_urls(url)
    except ValueError:
        _fail(say("hub.bad_url", url=url[:80]), 2)
    settings = settings_or_exit(config)

    async def run() -> T:
        from castline.messaging.connect import connect_once
        from castline.messaging.devices import connect_options

        nc = await connect_once(url, **connect_options(None, settings.tls))
        try:
            return await act(nc)
        finally:
            await nc.close()

    try:
        return asyncio.run(run())
    except LookupError:
        _fail(say("hub.unknown_plant", plant=plant), 2)
    except NotFoundError:  # the central stream: no `castline hub` ever ran there
        _fail(say("hub.no_central", url=url), 1)
    except ValueError:  # photos off for a source that copies everything (uplink.set_photos)
        _fail(say("hub.legacy", plant=plant), 2)
    except (NatsError, OSError, TimeoutError) as exc:
        _fail(say("hub.unreachable", url=url, detail=str(exc) or type(exc).__name__), 1)
