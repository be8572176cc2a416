"""An OPC UA server per simulated machine (asyncua), as a real die-casting machine offers.

There is no published die-casting companion specification, so the information model
borrows the ideas of the injection-moulding ones (OPC 40077/40079): a machine object with
its state mapped to ISO 22400 time categories, the die (mould) with its shot counter, the
parameters of the last cycle with engineering units, and a cycle-parameters event
emitted once per shot. Node ids are strings in the namespace `NAMESPACE`; the exact ids
and browse paths are in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta

from asyncua import Node, Server, ua

from castline.domain.states import MachineState
from castline.domain.units import MACHINE_PARAMETERS as PARAMETERS
from castline.messaging.opcua_model import EVENT_TYPE, NAMESPACE
from castline.sim.fleet import ShotEvent

# The machine reports its own parameters; the curve features are castline's measurement.
# UNECE Recommendation 20 codes of castline's units (OPC UA EUInformation.UnitId).
_UNECE = {"°C": "CEL", "m/s": "MTS", "bar": "BAR", "s": "SEC", "mm": "MMT", "mbar": "MBR"}
_UNITS_URI = "http://www.opcfoundation.org/UA/units/un/cefact"
_HISTORY = timedelta(hours=8)
_HISTORY_EVENTS = 20_000
_RESTART_S = 2.0  # how long an injected OPC UA restart keeps the server down

logging.getLogger("asyncua").setLevel(logging.WARNING)
_log = logging.getLogger(__name__)


def _eu(unit: str) -> ua.EUInformation:
    code = _UNECE[unit]
    unit_id = int.from_bytes(code.encode(), "big")
    return ua.EUInformation(
        NamespaceUri=_UNITS_URI,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(code),
    )


@dataclass(frozen=True, slots=True)
class _Names:
    """String node ids and browse names in castline's namespace (index `idx`)."""

    idx: int

    def nid(self, name: str) -> ua.NodeId:
        return ua.NodeId(ua.String(name), ua.Int16(self.idx))

    def qn(self, name: str) -> ua.QualifiedName:
        return ua.QualifiedName(name, self.idx)


async def _add_cycle_event_type(server: Server, names: _Names) -> Node:
    """The cycle-parameters event type; its fields get string node ids too, so clients can
    name them."""
    fields = [
        ("ShotNumber", ua.VariantType.Int64),
        ("ShotCounter", ua.VariantType.Int64),
        ("DieCode", ua.VariantType.String),
        ("Trial", ua.VariantType.Boolean),
    ] + [(p.name, ua.VariantType.Double) for p in PARAMETERS]
    base = server.get_node(ua.ObjectIds.BaseEventType)
    event_type = await base.add_object_type(names.nid(EVENT_TYPE), names.qn(EVENT_TYPE))
    for name, kind in fields:
        prop = await event_type.add_property(
            names.nid(f"{EVENT_TYPE}.{name}"), names.qn(name), ua.get_default_value(kind), kind
        )
        await prop.set_modelling_rule(True)
    return event_type


class MachineServer:
    """The OPC UA server of one machine."""

    def __init__(self, plant: str, machine: str, port: int) -> None:
        self.plant = plant
        self.machine = machine
        self.port = port
        self.server: Server | None = None
        self.nodes: dict[str, Node] = {}
        self.last: dict[str, object] = {}  # values to restore after a restart

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/castline/"

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://0.0.0.0:{self.port}/castline/")
        server.set_server_name(f"castline simulated die-casting machine {self.machine}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        names = _Names(await server.register_namespace(NAMESPACE))
        machine = await self._add_machine(server.nodes.objects, names)
        event_type = await _add_cycle_event_type(server, names)
        self.generator = await server.get_event_generator(event_type, machine.nodeid)
        await server.start()
        # Keep recent cycle events, so a client whose connection dropped can read back what
        # it missed (OPC UA historical access); a restart of the server empties it.
        await server.historize_node_event(
            [machine, server.nodes.server], period=_HISTORY, count=_HISTORY_EVENTS
        )
        self.server = server
        for name, value in self.last.items():
            await self.nodes[name].write_value(value, self._type(name))

    async def _add_machine(self, objects: Node, names: _Names) -> Node:
        """The machine object, its die and last cycle, into `self.nodes` by name."""
        nid, qn = names.nid, names.qn
        machine = await objects.add_object(nid("Machine"), qn("Machine"))
        await machine.set_event_notifier(
            [ua.EventNotifier.SubscribeToEvents, ua.EventNotifier.HistoryRead]
        )
        add = machine.add_variable
        n = self.nodes
        n["MachineId"] = await add(nid("Machine.MachineId"), qn("MachineId"), self.machine)
        n["Plant"] = await add(nid("Machine.Plant"), qn("Plant"), self.plant)
        n["State"] = await add(nid("Machine.State"), qn("State"), "offline")
        n["Iso22400Category"] = await add(
            nid("Machine.Iso22400Category"), qn("Iso22400Category"), "ADET"
        )
        die = await machine.add_object(nid("Machine.Die"), qn("Die"))
        n["DieCode"] = await die.add_variable(nid("Machine.Die.DieCode"), qn("DieCode"), "")
        n["ShotCounter"] = await die.add_variable(
            nid("Machine.Die.ShotCounter"), qn("ShotCounter"), 0, ua.VariantType.Int64
        )
        cycle = await machine.add_object(nid("Machine.LastCycle"), qn("LastCycle"))
        n["ShotNumber"] = await cycle.add_variable(
            nid("Machine.LastCycle.ShotNumber"), qn("ShotNumber"), 0, ua.VariantType.Int64
        )
        n["Trial"] = await cycle.add_variable(nid("Machine.LastCycle.Trial"), qn("Trial"), False)
        for p in PARAMETERS:
            var = await cycle.add_variable(
                nid(f"Machine.LastCycle.{p.name}"), qn(p.name), float("nan"), ua.VariantType.Double
            )
            await var.add_property(
                nid(f"Machine.LastCycle.{p.name}.EngineeringUnits"),
                ua.QualifiedName("EngineeringUnits", 0),
                _eu(p.unit),
            )
            n[p.name] = var
        return machine

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def restart(self) -> None:
        await self.stop()
        await asyncio.sleep(_RESTART_S)
        await self.start()

    async def write(self, values: dict[str, object]) -> None:
        self.last.update(values)
        if self.server is None:
            return  # down (restarting): the values are restored when it is back
        for name, value in values.items():
            await self.nodes[name].write_value(value, self._type(name))

    async def cycle(self, shot: ShotEvent) -> None:
        values: dict[str, object] = {
            "ShotNumber": shot.shot_number,
            "ShotCounter": shot.die_counter,
            "DieCode": shot.die,
            "Trial": shot.trial,
        }
        for p in PARAMETERS:
            reading = shot.params.get(p.name)
            values[p.name] = float("nan") if reading is None else float(reading)
        await self.write(values)
        if self.server is None:
            return
        event = self.generator.event
        for name, value in values.items():
            setattr(event, name, value)
        event.Message = ua.LocalizedText(f"cycle {shot.shot_number} of die {shot.die}")
        event.Severity = 100
        await self.generator.trigger()

    @staticmethod
    def _type(name: str) -> ua.VariantType:
        if name in ("ShotNumber", "ShotCounter"):
            return ua.VariantType.Int64
        if name in ("MachineId", "Plant", "State", "Iso22400Category", "DieCode"):
            return ua.VariantType.String
        if name == "Trial":
            return ua.VariantType.Boolean
        return ua.VariantType.Double


class MachineServers:
    """One server per machine on consecutive ports from `base_port`.

    The servers live in a thread of their own with its own event loop: asyncua builds
    its address space there (a second per server) without holding the hall's schedule.
    Updates go through one queue, so each server sees them in the hall's order.
    """

    def __init__(self, plant: str, machines: list[str], base_port: int) -> None:
        self.servers = {m: MachineServer(plant, m, base_port + i) for i, m in enumerate(machines)}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]] | None] | None = None
        self._thread: threading.Thread | None = None
        self._restarts: set[asyncio.Task[None]] = set()  # of the servers' own loop

    async def start(self) -> None:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),))
        self._thread.start()
        await asyncio.wrap_future(ready)

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._submit(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def state(self, machine: str, state: MachineState, die: str) -> None:
        values: dict[str, object] = {
            "State": state.value,
            "Iso22400Category": state.category.value,
            "DieCode": die,
        }
        self._submit(lambda: self.servers[machine].write(values))

    def cycle(self, shot: ShotEvent) -> None:
        self._submit(lambda: self.servers[shot.machine].cycle(shot))

    def restart(self, machine: str) -> None:
        """Fault injection: the server goes down and comes back; the others carry on."""

        async def begin() -> None:
            task = asyncio.create_task(self.servers[machine].restart())
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)

        self._submit(begin)

    def _submit(self, job: Callable[[], Awaitable[None]] | None) -> None:
        if self._loop is not None and self._queue is not None:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, job)

    async def _serve(self, ready: Future[None]) -> None:
        try:
            for server in self.servers.values():
                await server.start()
        except Exception as exc:  # handed to the thread that starts the servers
            ready.set_exception(exc)
            await self._stop_all()
            return
        self._queue = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        ready.set_result(None)
        while (job := await self._queue.get()) is not None:
            try:
                await job()
            except Exception:
                _log.exception("OPC UA update failed; the server carries on")
        await self._stop_all()

    async def _stop_all(self) -> None:
        for task in list(self._restarts):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in self.servers.values():
            await server.stop()
