"""`castline sim`: run the simulated die-casting hall (or replay real telemetry) over MQTT.

Imports stay light here: the simulator loads when the command runs, so `castline --help`
stays fast.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from castline.options import ConfigOption, mqtt_url, settings_or_exit

if TYPE_CHECKING:
    from castline.settings import Settings
    from castline.sim.faults import Fault
    from castline.sim.link import MqttAccess
    from castline.sim.runner import HallConfig

sim_app = typer.Typer(help="Simulate a die-casting hall, or replay real telemetry, over MQTT.")


# The command's options, one alias each, so the command reads as what it does.
Machines = Annotated[
    int | None, typer.Option(min=1, help="Machines in the hall (default: setting machines).")
]
Speed = Annotated[
    float | None,
    typer.Option(min=0.01, help="Simulated seconds per second (default: setting speed)."),
]
Broker = Annotated[
    str | None,
    typer.Option(
        help="MQTT broker URL (default: the embedded broker, mqtt://127.0.0.1:<mqtt_port>)."
    ),
]
PlantId = Annotated[
    str | None, typer.Option(help="Plant id in the topics (default: setting plant).")
]
Seed = Annotated[int, typer.Option(help="Random seed: same seed, same hall.")]
Duration = Annotated[float | None, typer.Option(help="Stop after this many wall-clock seconds.")]
Replay = Annotated[bool, typer.Option(help="Stream the real KAMP shots instead.")]
OpcuaPort = Annotated[
    int | None, typer.Option(help="Serve OPC UA per machine on ports BASE, BASE+1, ...")
]
Faults = Annotated[
    list[str] | None,
    typer.Option(
        help="Inject a fault (late, duplicate, out_of_order, malformed, "
        "camera_stop, disconnect, opcua_restart); repeat for several."
    ),
]
FaultRate = Annotated[float, typer.Option(min=0, max=1, help="Share of shots hit.")]
CameraDelay = Annotated[float, typer.Option(help="Seconds from shot to photograph.")]
Deadline = Annotated[
    float | None,
    typer.Option(
        help="Seconds a robot cell waits for a verdict (default: setting verdict_deadline_s)."
    ),
]
DataFolder = Annotated[Path | None, typer.Option(help="Real data folder (CASTLINE_DATA).")]
TruthLog = Annotated[
    Path | None, typer.Option(help="Append every part's ground truth (JSON lines).")
]
CoolingRack = Annotated[
    int,
    typer.Option(
        min=0,
        max=1000,
        help="Castings cool in a rack of N places and reach the camera in random order; "
        "shots carry data-matrix codes and photos name parts by them (0: no rack).",
    ),
]
Cavities = Annotated[
    list[str] | None,
    typer.Option(
        help="A die of several cavities, as DIE=N (one casting per cavity and shot, each "
        "photographed and decided); repeat for several (adds to setting cavities_per_die)."
    ),
]
DownstreamRate = Annotated[
    float,
    typer.Option(
        min=0,
        max=1,
        help="Share of the castings sent on that a simulated X-ray station tests a simulated "
        "hour later and posts a result for (defective ones NG: escapes); 0: no station.",
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the hall that would run, then stop.")
]


@sim_app.callback(invoke_without_command=True)
def sim(
    machines: Machines = None,
    speed: Speed = None,
    broker: Broker = None,
    plant: PlantId = None,
    seed: Seed = 1,
    duration: Duration = None,
    replay: Replay = False,
    opcua_port: OpcuaPort = None,
    fault: Faults = None,
    fault_rate: FaultRate = 0.05,
    camera_delay: CameraDelay = 0.3,
    deadline: Deadline = None,
    data: DataFolder = None,
    truth_log: TruthLog = None,
    cooling_rack: CoolingRack = 0,
    cavities: Cavities = None,
    downstream_rate: DownstreamRate = 0.0,
    dry_run: DryRun = False,
    config: ConfigOption = None,
) -> None:
    """Run the hall until the duration has passed or Ctrl-C, then print the robot cells' counts."""
    from castline.sim.downstream import DownstreamConfig
    from castline.sim.fleet import FleetConfig
    from castline.sim.runner import HallConfig, views_of

    faults = _faults(fault)
    settings = settings_or_exit(
        config, plant=plant, machines=machines, speed=speed, verdict_deadline_s=deadline, data=data
    )
    embedded = broker is None
    broker = _broker(broker or mqtt_url(settings))
    hall = HallConfig(
        plant=settings.plant,
        fleet=FleetConfig(machines=settings.machines, seed=seed),
        speed=settings.speed,
        duration_s=duration,
        camera_delay_s=camera_delay,
        verdict_deadline_s=settings.verdict_deadline_s,
        data=settings.data,
        replay=replay,
        opcua_port=opcua_port,
        faults=faults,
        fault_rate=fault_rate,
        truth_log=truth_log,
        cooling_rack=cooling_rack,
        views_of=views_of(settings.views_per_part),
        cavities_of=settings.cavities_per_die | _cavities(cavities),
        downstream=DownstreamConfig(rate=downstream_rate),
    )

    if dry_run:
        typer.echo(
            f"plant {hall.plant}: {hall.fleet.machines} machines at {hall.speed:g}x, "
            f"seed {seed}, broker {broker}, verdict deadline {hall.verdict_deadline_s:g} s"
        )
        return

    _run(hall, broker, _device_logins(settings, hall) if embedded else None)


def _faults(fault: list[str] | None) -> tuple[Fault, ...]:
    from castline.sim.faults import parse_faults

    try:
        return parse_faults(fault or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fault") from None


def _broker(url: str) -> str:
    from castline.messaging.address import BrokerAddress

    try:
        BrokerAddress.parse(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--broker") from None
    return url


def _cavities(given: list[str] | None) -> dict[str, int]:
    """`--cavities D1=2 --cavities D3=4` -> {"D1": 2, "D3": 4}; a mistake is one line."""
    from castline.domain.ids import check_id
    from castline.domain.shot import MAX_CAVITIES

    out = {}
    for text in given or []:
        die, _, count = text.partition("=")
        try:
            check_id(die, "die")
            number = int(count)
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_CAVITIES:
            raise typer.BadParameter(
                f"{text!r}: give DIE=N, N from 1 to {MAX_CAVITIES}", param_hint="--cavities"
            )
        out[die] = number
    return out


def _device_logins(settings: Settings, hall: HallConfig) -> MqttAccess:
    """Each simulated machine logs in to the embedded broker with its own device user, as
    under `castline up`; another broker is reached anonymously or as the URL's user."""
    from castline.messaging import devices
    from castline.sim.link import MqttAccess

    machines = hall.fleet.machine_ids()
    if hall.downstream.on:
        machines.append(hall.downstream.station)  # the X-ray station logs in too
    known = set(devices.Registry.load(settings.home).accounts)
    registry = devices.provision(settings.home, settings.plant, machines)
    logins = {m: registry.device(settings.plant, m) for m in machines}
    if new := sorted(login.user for login in logins.values() if login.user not in known):
        typer.echo(
            f"new device logins {', '.join(new)}: a broker started before now does not know "
            "them yet; restart it (`castline line broker`) if they are refused",
            err=True,
        )
    return MqttAccess(logins, tls=settings.tls is not None, tls_ca=settings.tls_ca)


def _run(hall: HallConfig, broker: str, access: MqttAccess | None) -> None:
    """Run the hall with a progress bar until it ends or Ctrl-C; print the cells' counts."""
    from tqdm import tqdm

    from castline.sim.runner import run_hall

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        with tqdm(unit=" shots", desc="replaying" if hall.replay else "simulating") as bar:

            def tick() -> None:
                bar.update(1)

            report = await run_hall(hall, broker, stop, progress=tick, access=access)
        for line in report.lines():
            typer.echo(line)

    try:
        asyncio.run(main())
    except (ConnectionError, FileNotFoundError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
