"""`castline up`: a whole die-casting line on one machine, in one command.

Starts the embedded NATS (JetStream + MQTT) unless a NATS URL is configured, makes sure
every simulated die has an active inspection model (training the demo model on first
run), then runs the line runtime, the simulated hall and the web dashboard side by side
in one event loop. Ctrl-C (or --for SECONDS) stops the hall first, lets the runtime
finish what is in flight, then stops the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine

from castline import demo_history
from castline.cli_text import say
from castline.demo_model import ensure_models
from castline.line.runtime import LineRuntime
from castline.messaging import devices, jetstream
from castline.messaging.broker import BrokerError, EmbeddedNats
from castline.messaging.opcua_cell import CellServer
from castline.options import mqtt_url as settings_mqtt_url
from castline.settings import Settings
from castline.sim.downstream import DownstreamConfig
from castline.sim.fleet import FleetConfig, MachineModel, machine_id
from castline.sim.link import MqttAccess
from castline.sim.runner import CellReport, HallConfig, run_hall, views_of
from castline.store import tables as t
from castline.store.database import open_store
from castline.store.repository import Store
from castline.web import overload
from castline.web.app import LineLink, create_app
from castline.web.auth import ensure_admin
from castline.web.live import Hub

# After the hall stops, the runtime decides what is in flight: all of it at the end of
# --for (bounded, should the line be stuck); on Ctrl-C briefly, so castline stops in 5 s.
DRAIN_S = 60.0
DRAIN_INTERRUPTED_S = 1.5
# The simulated X-ray tests 1 in 20 castings sent on, a simulated hour later: results come
# in, a few of them escapes, for the KPIs and the part pages.
UP_DOWNSTREAM = DownstreamConfig(rate=0.05)


@dataclass
class UpOptions:
    duration_s: float | None = None
    summary: Path | None = None
    seed: int = 1


def die_codes(fleet: FleetConfig) -> list[str]:
    start = datetime.now(UTC)
    return [MachineModel(i, fleet, start).die.code for i in range(fleet.machines)]


async def _connect_ready(url: str, settings: Settings) -> None:
    """Create the stream, with its limits, before any device publishes: MQTT messages need
    it to be kept."""
    import nats

    nc = await nats.connect(servers=[url], max_reconnect_attempts=20, **_line_options(settings))
    await jetstream.ensure_stream(
        nc.jetstream(),
        max_bytes=settings.stream_max_bytes,
        max_age=timedelta(days=settings.stream_max_age_days),
    )
    await nc.close()


def _line_options(settings: Settings) -> dict[str, Any]:
    """The line's login to the embedded broker; a configured NATS has its own security."""
    return {} if settings.nats_url else devices.service_options(settings.home, settings.tls)


class BrokerLost:
    """Called by the broker's supervisor when it gives up: the hall stops, and `castline
    up` ends with the reason and exit code 1 instead of running on without a broker."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.reason: str | None = None
        self.event = asyncio.Event()

    def __call__(self, reason: str) -> None:  # from the supervisor's thread
        self.reason = reason
        self.loop.call_soon_threadsafe(self.event.set)

    def check(self) -> None:
        if self.reason is not None:
            raise BrokerError(self.reason)

    async def stop_on_loss(self, stop: asyncio.Event) -> None:
        await self.event.wait()
        stop.set()


def summary(
    report: CellReport | None, runtime: LineRuntime, store: Store, plant: str
) -> dict[str, Any]:
    line = runtime.summary()
    cells = report.total if report else None
    return {
        "shots": report.shots if report else store.count(t.shots, plant=plant),
        "verdicts": line["verdicts"],
        "escapes": cells.escapes if cells else None,
        "false_rejects": cells.false_rejects if cells else None,
        "missing_verdicts": cells.missing_verdicts if cells else None,
        "dead_letters": line["dead_letters"],
        "latency_ms_p50": line["latency_ms_p50"],
        "latency_ms_p99": line["latency_ms_p99"],
        "parts_by_cell": {
            "next_station": cells.next_station,
            "reject_chute": cells.reject_chute,
            "quarantine_rack": cells.quarantined,
        }
        if cells
        else None,
    }


async def up(settings: Settings, options: UpOptions) -> dict[str, Any]:
    engine = open_store(settings.db_url)
    broker = None
    nats_url = settings.nats_url
    lost = BrokerLost(asyncio.get_running_loop())
    access = None
    if not nats_url:
        access = await asyncio.to_thread(_simulator_access, settings, options)  # bcrypt: slow
        broker = plant_broker(settings)
        broker.start()
        broker.supervise(lost)
        if settings.uplink_url:
            print(say("up.uplink", uplink=settings.uplink_url, plant=settings.plant))
        nats_url = broker.url
    try:
        result = await _run(settings, options, engine, nats_url, broker, access, lost)
    except Exception:
        lost.check()  # the broker's loss is the reason, whatever failed after it
        raise
    finally:
        if broker:
            broker.stop()
        engine.dispose()
    lost.check()
    return result


def _simulator_access(settings: Settings, options: UpOptions) -> MqttAccess:
    """A login per simulated machine (kept under home, reused on the next run)."""
    machines = FleetConfig(machines=settings.machines, seed=options.seed).machine_ids()
    machines.append(UP_DOWNSTREAM.station)  # the simulated X-ray posts its results too
    registry = devices.provision(settings.home, settings.plant, machines)
    logins = {m: registry.device(settings.plant, m) for m in machines}
    return MqttAccess(logins, tls=settings.tls is not None, tls_ca=settings.tls_ca)


def plant_broker(settings: Settings) -> EmbeddedNats:
    """The plant's embedded NATS; with an uplink, its own JetStream domain and a leaf node
    of the central hub, so the line never depends on the uplink (`messaging/uplink.py`)."""
    uplink = settings.uplink_url
    registry = devices.provision(settings.home, settings.plant)  # no anonymous clients
    return EmbeddedNats(
        settings.home / "nats",
        settings.nats_port,
        settings.mqtt_port,
        domain=settings.plant if uplink else None,
        leaf_remotes=(uplink,) if uplink else (),
        authorization=registry.authorization(),
        tls=settings.tls,
    )


async def _run(
    settings: Settings,
    options: UpOptions,
    engine: Engine,
    nats_url: str,
    broker: EmbeddedNats | None,
    access: MqttAccess | None,
    lost: BrokerLost,
) -> dict[str, Any]:
    await _connect_ready(nats_url, settings)
    line_options = _line_options(settings)
    fleet = FleetConfig(machines=settings.machines, seed=options.seed)
    settings, history = await demo_history.start(settings, engine, fleet, _start_of_day())
    await asyncio.to_thread(ensure_models, engine, settings, die_codes(fleet))
    runtime = LineRuntime(settings, engine, nats_url, connect_options=line_options)
    line_task: asyncio.Task[None] | None = None
    checks = {"line": lambda: _line_problem(runtime, line_task)}
    if broker is not None:
        checks["broker"] = lambda: _broker_problem(broker)
    link = LineLink(nats_url, line_options, checks)
    app = create_app(settings, engine, Hub(), link, runtime.metrics.registry)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="warning")
    )
    password = ensure_admin(engine, settings.home)

    stop_hall, stop_line = asyncio.Event(), asyncio.Event()
    watch_broker = asyncio.create_task(lost.stop_on_loss(stop_hall))
    line_ready = asyncio.Event()
    line_task = asyncio.create_task(runtime.run(stop_line, line_ready))
    web_task = asyncio.create_task(server.serve())
    await asyncio.wait_for(line_ready.wait(), 30)
    cells = await _start_cells(settings, nats_url, line_options, fleet, stop_line)
    await _dashboard_started(settings, server, web_task, stop_line)
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop_by_signal, stop_hall, interrupted)
    mqtt_url = broker.mqtt_url if broker else settings_mqtt_url(settings)  # the NATS of nats_url
    _announce(settings, mqtt_url, password)
    behind = overload.warn_while_overloaded(
        app.state.load, settings.machines, settings.speed, stop_line
    )
    watch_load = asyncio.create_task(behind)  # says so, with what to change, when behind

    report = await run_hall(_hall(settings, options, fleet), mqtt_url, stop_hall, access=access)
    watch_broker.cancel()
    watch_load.cancel()
    print(say("up.stopping"))
    await _drain(runtime, DRAIN_INTERRUPTED_S if interrupted.is_set() else DRAIN_S)
    stop_line.set()
    server.should_exit = True
    await asyncio.gather(line_task, web_task, *([cells] if cells else []))
    result = summary(report, runtime, Store(engine), settings.plant)
    result["benefit"] = await demo_history.finish(history, engine, settings)
    print("\n".join(report.lines()))
    print(json.dumps(result, indent=2))
    if options.summary:
        options.summary.write_text(json.dumps(result, indent=2) + "\n")
    return result


async def _dashboard_started(
    settings: Settings, server: uvicorn.Server, task: asyncio.Task[None], stop: asyncio.Event
) -> None:
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if task.done():
        stop.set()
        raise RuntimeError(
            f"the dashboard could not start on {settings.http_host}:"
            f"{settings.http_port}; give a free port with --port or CASTLINE_HTTP_PORT"
        )


def _hall(settings: Settings, options: UpOptions, fleet: FleetConfig) -> HallConfig:
    return HallConfig(
        plant=settings.plant,
        fleet=fleet,
        speed=settings.speed,
        duration_s=options.duration_s,
        verdict_deadline_s=settings.verdict_deadline_s,
        data=settings.data if settings.data.is_dir() else None,
        start=_start_of_day(),
        views_of=views_of(settings.views_per_part),
        cavities_of=settings.cavities_per_die,
        downstream=UP_DOWNSTREAM,
    )


async def _start_cells(
    settings: Settings,
    nats_url: str,
    line_options: dict[str, Any],
    fleet: FleetConfig,
    stop: asyncio.Event,
) -> asyncio.Task[None] | None:
    """The OPC UA server robot-cell PLCs ask for verdicts; started after the line, so the
    verdict journal has the line's replicas. Its failure to start ends `castline up`."""
    if not settings.opcua_cell_port:
        return None
    endpoint = f"opc.tcp://{settings.opcua_cell_host}:{settings.opcua_cell_port}/castline/cells/"
    machines = [machine_id(i) for i in range(fleet.machines)]
    server = CellServer(
        nats_url, settings.plant, machines, endpoint, line_options,
        deadline_s=settings.verdict_deadline_s,
    )  # fmt: skip
    ready = asyncio.Event()
    task = asyncio.create_task(server.run(stop, ready))
    waiting = asyncio.ensure_future(ready.wait())
    await asyncio.wait({task, waiting}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():
        task.result()  # raises why it could not start (a port taken, ...)
    print(say("up.cells", endpoint=endpoint))
    return task


def _line_problem(runtime: LineRuntime, task: asyncio.Task[None] | None) -> str | None:
    """What /api/v1/health says of the line runtime: stopped, or its database away."""
    if task is not None and task.done():
        return "the line runtime stopped: parts are not being decided"
    if runtime.health.down_since is not None:
        away = time.monotonic() - runtime.health.down_since
        return f"database unreachable for {away:.0f} s: verdicts are journaled, not recorded"
    return None


def _broker_problem(broker: EmbeddedNats) -> str | None:
    health = broker.health()
    if health.ok:
        return None
    last = f" (last exit: {health.last_exit})" if health.last_exit else ""
    return f"embedded NATS {health.status} after {health.restarts} restarts{last}"


def _stop_by_signal(stop_hall: asyncio.Event, interrupted: asyncio.Event) -> None:
    interrupted.set()
    stop_hall.set()


async def _drain(runtime: LineRuntime, limit_s: float) -> None:
    """Let the runtime decide what the hall sent last, up to `limit_s`."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if runtime.backlog == 0 and runtime.in_flight == 0:
            return
        await asyncio.sleep(0.1)
    print(say("up.undecided", n=runtime.backlog + runtime.in_flight))


def _start_of_day() -> datetime:
    """The accelerated hall runs from midnight, so for a while its shots lie in today's past
    and the dashboard's "today" figures (OEE, shots) fill as a plant's would."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _announce(settings: Settings, mqtt_url: str, password: str | None) -> None:
    """The lines a person starting castline needs, in the terminal's language (CASTLINE_LANG,
    else the locale), flushed so a log file has them while castline runs."""
    url = f"http://{settings.http_host}:{settings.http_port}"
    said = [say("up.ready", url=url)]
    tls = say("up.tls") if settings.tls and not settings.nats_url else ""
    said.append(say("up.devices", mqtt=mqtt_url, tls=tls, plant=settings.plant))
    if not settings.nats_url:
        said.append(say("up.device_login"))
    if password:
        path = settings.home / "initial-admin-password"
        said.append(say("up.first_login", password=password, path=path))
    said.append(say("up.ctrl_c"))
    print("\n".join(said), flush=True)


def run(settings: Settings, options: UpOptions) -> dict[str, Any]:
    # Each line reaches a log file at once (the URL, the first password), not at exit.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(up(settings, options))
    return {}
