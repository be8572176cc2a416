"""`castline sim`: run the simulated die-casting hall (or replay real telemetry) over MQTT.

Imports stay light here: the simulator loads when the command runs, so `castline --help`
stays fast.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

sim_app = typer.Typer(help="Simulate a die-casting hall, or replay real telemetry, over MQTT.")


@sim_app.callback(invoke_without_command=True)
def sim(
    machines: Annotated[int, typer.Option(min=1, help="Machines in the hall.")] = 9,
    speed: Annotated[float, typer.Option(min=0.01, help="Simulated seconds per second.")] = 60.0,
    broker: Annotated[str, typer.Option(help="MQTT broker URL.")] = "mqtt://127.0.0.1:1883",
    plant: Annotated[str, typer.Option(help="Plant id in the topics.")] = "plant1",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same hall.")] = 1,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many wall-clock seconds.")
    ] = None,
    replay: Annotated[bool, typer.Option(help="Stream the real KAMP shots instead.")] = False,
    opcua_port: Annotated[
        int | None, typer.Option(help="Serve OPC UA per machine on ports BASE, BASE+1, ...")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject a fault (late, duplicate, out_of_order, malformed, "
            "camera_stop, disconnect, opcua_restart); repeat for several."
        ),
    ] = None,
    fault_rate: Annotated[float, typer.Option(min=0, max=1, help="Share of shots hit.")] = 0.05,
    camera_delay: Annotated[float, typer.Option(help="Seconds from shot to photograph.")] = 0.3,
    deadline: Annotated[
        float, typer.Option(help="Seconds a robot cell waits for a verdict.")
    ] = 2.0,
    data: Annotated[Path | None, typer.Option(help="Real data folder (CASTLINE_DATA).")] = None,
    truth_log: Annotated[
        Path | None, typer.Option(help="Append every part's ground truth (JSON lines).")
    ] = None,
) -> None:
    """Run the hall until the duration has passed or Ctrl-C, then print the robot cells' counts."""
    from tqdm import tqdm

    from castline.cli import settings_or_exit
    from castline.sim.faults import parse_faults
    from castline.sim.fleet import FleetConfig
    from castline.sim.runner import HallConfig, run_hall

    try:
        faults = parse_faults(fault or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None
    overrides = {"data": data} if data is not None else {}
    settings = settings_or_exit(None, plant=plant, **overrides)
    config = HallConfig(
        plant=settings.plant,
        fleet=FleetConfig(machines=machines, seed=seed),
        speed=speed,
        duration_s=duration,
        camera_delay_s=camera_delay,
        verdict_deadline_s=deadline,
        data=settings.data,
        replay=replay,
        opcua_port=opcua_port,
        faults=faults,
        fault_rate=fault_rate,
        truth_log=truth_log,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        with tqdm(unit=" shots", desc="replaying" if replay else "simulating") as bar:

            def tick() -> None:
                bar.update(1)

            report = await run_hall(config, broker, stop, progress=tick)
        for line in report.lines():
            typer.echo(line)

    try:
        asyncio.run(main())
    except (ConnectionError, FileNotFoundError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
