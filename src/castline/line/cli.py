"""`castline line ...`: the line runtime and the MQTT bridge as their own processes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="The line runtime: ingest, join, inspect, decide, publish, record.", no_args_is_help=True
)


UplinkOption = Annotated[
    str | None,
    typer.Option(help="central hub's leafnode URL, nats://HOST:PORT (see `castline hub`)"),
]


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


@app.command("run")
def run(
    nats_url: Annotated[
        str, typer.Option("--nats", help="NATS server with JetStream")
    ] = "nats://127.0.0.1:14222",
    plant: Annotated[str | None, typer.Option(help="only this plant's messages")] = None,
    json_logs: Annotated[bool, typer.Option("--json-logs", help="one JSON object a line")] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Run one line-runtime worker on an existing NATS server (workers share the work)."""
    from nats.errors import NoServersError

    from castline import logs
    from castline.cli import settings_or_exit
    from castline.line.runtime import LineRuntime
    from castline.store.database import open_store

    logs.setup(json_logs)
    settings = settings_or_exit(config)

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        runtime = LineRuntime(settings, open_store(settings.db_url), nats_url, plant=plant)
        await runtime.run(stop)

    try:
        asyncio.run(main())
    except (NoServersError, OSError) as exc:
        typer.echo(
            f"cannot reach NATS at {nats_url} ({exc.__class__.__name__}): start it with "
            "`castline up`, or give the right server with --nats",
            err=True,
        )
        raise typer.Exit(1) from None


@app.command("broker")
def broker(
    uplink: UplinkOption = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Run the plant's NATS (JetStream + MQTT) alone, for `line run` workers and bridges."""
    from castline.app import plant_broker
    from castline.cli import settings_or_exit
    from castline.messaging.broker import BrokerError

    settings = settings_or_exit(config, **({"uplink_url": uplink} if uplink else {}))
    server = plant_broker(settings)
    try:
        server.start()
    except BrokerError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"plant {settings.plant}: NATS {server.url}, MQTT {server.mqtt_url}")
    if settings.uplink_url:
        typer.echo(f"uplink: leaf node of {settings.uplink_url}")
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # after start: the server keeps them
    try:
        signal.sigwait(stop_signals)
    finally:
        server.stop()


@app.command("bridge")
def bridge(
    mqtt_url: Annotated[str, typer.Argument(help="the plant's broker, mqtt://host:1883")],
    nats_url: Annotated[str, typer.Option("--nats")] = "nats://127.0.0.1:14222",
    plant: Annotated[str, typer.Option(help="bridge only this plant ('+' = all)")] = "+",
) -> None:
    """Bridge a plant's MQTT broker into castline: devices in, verdicts out."""
    from castline import logs
    from castline.messaging.mqtt_bridge import MqttBridge

    logs.setup()

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await MqttBridge(mqtt_url, nats_url, plant).run(stop)

    asyncio.run(main())


@app.command("opcua")
def opcua(
    endpoints: Annotated[list[str], typer.Argument(help="opc.tcp://host:port/path, one a machine")],
    nats_url: Annotated[str, typer.Option("--nats")] = "nats://127.0.0.1:14222",
) -> None:
    """Read machines over OPC UA into castline (cycles become shot records)."""
    from castline import logs
    from castline.messaging.opcua_client import OpcUaReader

    logs.setup()

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        readers = [OpcUaReader(endpoint, nats_url) for endpoint in endpoints]
        await asyncio.gather(*(reader.run(stop) for reader in readers))
        for reader in readers:
            typer.echo(f"{reader.endpoint}: {reader.stats}")

    asyncio.run(main())


def up(
    seconds: Annotated[float | None, typer.Option("--for", help="run this long, then stop")] = None,
    summary: Annotated[
        Path | None, typer.Option(help="write a JSON summary here at the end")
    ] = None,
    machines: Annotated[int | None, typer.Option(help="simulated machines (default 9)")] = None,
    speed: Annotated[float | None, typer.Option(help="simulator acceleration (default 60)")] = None,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 1,
    uplink: UplinkOption = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Run everything: embedded broker, simulated hall, line runtime and web dashboard."""
    from castline import logs
    from castline.app import UpOptions
    from castline.app import run as run_up
    from castline.cli import settings_or_exit

    logs.setup()
    overrides = {
        k: v for k, v in {"machines": machines, "speed": speed, "uplink_url": uplink}.items() if v
    }
    settings = settings_or_exit(config, **overrides)
    run_up(settings, UpOptions(duration_s=seconds, summary=summary, seed=seed))
