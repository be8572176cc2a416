"""Read a die-casting machine over OPC UA into castline's stream, and never lose it.

Each cycle event of the machine (docs/protocol.md, OPC UA section) becomes a protocol-v1
shot message in JetStream, each state change a state message, so the line treats OPC UA
and MQTT machines alike. The reader is built for the connections that real plants lose:

- a heartbeat read every second notices a dead connection even when no cycle comes;
- it reconnects with backoff for as long as it runs, and subscribes again each time;
- the machine's shot number is the cycle counter: a jump means missed cycles, which are
  read back from the server's event history (OPC UA historical access) and published
  in order; cycles the server itself no longer has are counted as missed and logged.

JetStream de-duplicates by message id (plant, machine, shot), so a cycle seen both live
and in history is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import Client, Node, ua
from nats.js import JetStreamContext

from castline.domain.states import MachineState
from castline.domain.units import NAMES
from castline.messaging import jetstream, opcua_model, topics
from castline.messaging.connect import connect_until_stopped
from castline.messaging.schema import ShotMessage, StateMessage
from castline.messaging.topics import Kind

log = logging.getLogger(__name__)


@dataclass
class ReaderStats:
    connects: int = 0
    shots: int = 0
    backfilled: int = 0
    missed: int = 0  # cycles neither live nor in the server's history
    states: int = 0


class _Events:
    """asyncua subscription handler: hands events and state changes to the reader's loop."""

    def __init__(self, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        self.queue = queue

    def event_notification(self, event: Any) -> None:
        self.queue.put_nowait(("cycle", event))

    def datachange_notification(self, _node: Node, value: Any, _data: Any) -> None:
        self.queue.put_nowait(("state", value))

    def status_change_notification(self, status: Any) -> None:
        self.queue.put_nowait(("status", status))


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class OpcUaReader:
    def __init__(
        self,
        endpoint: str,
        nats_url: str,
        *,
        heartbeat_s: float = 1.0,
        timeout_s: float = 4.0,
        max_backoff_s: float = 5.0,
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self.connect_options = connect_options or {}  # castline's login, TLS
        self.endpoint = endpoint
        self.nats_url = nats_url
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.stats = ReaderStats()
        self.plant = ""
        self.machine = ""
        self.last_shot: int | None = None
        self.last_time: datetime | None = None
        self.connected = asyncio.Event()
        self.first_contact = datetime.now(UTC)

    async def run(self, stop: asyncio.Event) -> None:
        name = f"castline-opcua {self.endpoint}"
        nc = await connect_until_stopped(self.nats_url, stop, name, **self.connect_options)
        if nc is None:
            return  # stopped before the broker answered
        js = nc.jetstream()
        await jetstream.ensure_stream(js)
        backoff = 0.5
        try:
            while not stop.is_set():
                try:
                    await self._session(js, stop)
                    backoff = 0.5
                except (OSError, TimeoutError, ua.UaError, ConnectionError) as exc:
                    log.warning(
                        "OPC UA %s: connection lost or refused (%s); retrying in %.1f s",
                        self.endpoint,
                        exc.__class__.__name__,
                        backoff,
                    )
                finally:
                    self.connected.clear()
                if not stop.is_set():
                    await _sleep_unless(stop, backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
        finally:
            await nc.close()

    async def _session(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        client = Client(self.endpoint, timeout=self.timeout_s)
        client.session_timeout = 10_000
        await client.connect()
        try:
            idx = await client.get_namespace_index(opcua_model.NAMESPACE)

            def node(name: str) -> Node:
                return client.get_node(ua.NodeId(ua.String(name), ua.Int16(idx)))

            self.machine = str(await node(opcua_model.MACHINE_ID).read_value())
            self.plant = str(await node(opcua_model.PLANT).read_value())
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            subscription = await client.create_subscription(200, _Events(queue))
            event_type = node(opcua_model.EVENT_TYPE)
            await subscription.subscribe_events(node(opcua_model.MACHINE), event_type)
            await subscription.subscribe_data_change(node(opcua_model.STATE))
            self.stats.connects += 1
            log.info("OPC UA %s: reading %s/%s", self.endpoint, self.plant, self.machine)
            counter = node(opcua_model.SHOT_NUMBER)
            present = int(await counter.read_value())
            if self.stats.connects == 1:
                self.first_contact = datetime.now(UTC)
                if present > 0:
                    self.last_shot = present  # first contact: start from the present
            await self._catch_up(js, node(opcua_model.MACHINE), event_type, present)
            self.connected.set()  # from here on every cycle is read
            await self._pump(js, queue, counter, node, event_type, stop)
        finally:
            try:
                await asyncio.wait_for(client.disconnect(), 2)
            except Exception:
                client.disconnect_socket()

    async def _pump(
        self,
        js: JetStreamContext,
        queue: asyncio.Queue[tuple[str, Any]],
        counter: Node,
        node: Any,
        event_type: Node,
        stop: asyncio.Event,
    ) -> None:
        die = node(opcua_model.DIE_CODE)
        while not stop.is_set():
            try:
                kind, item = await asyncio.wait_for(queue.get(), self.heartbeat_s)
            except TimeoutError:
                # Heartbeat: a dead connection raises here; a jump means missed cycles.
                now = int(await asyncio.wait_for(counter.read_value(), self.timeout_s))
                await self._catch_up(js, node(opcua_model.MACHINE), event_type, now)
                continue
            if kind == "cycle":
                await self._cycle(js, item, node(opcua_model.MACHINE), event_type)
            elif kind == "state":
                await self._state(js, str(item), str(await die.read_value()))
            elif kind == "status":
                raise ConnectionError(f"subscription status {item}")

    async def _cycle(
        self, js: JetStreamContext, event: Any, machine: Node, event_type: Node
    ) -> None:
        shot = int(event.ShotNumber)
        if self.last_shot is not None and shot > self.last_shot + 1:
            await self._catch_up(js, machine, event_type, shot - 1)
        if self.last_shot is None or shot > self.last_shot:
            await self._publish_cycle(js, event)

    async def _catch_up(
        self, js: JetStreamContext, machine: Node, event_type: Node, upto: int
    ) -> None:
        """Publish cycles after the last one seen, up to `upto`, from the event history."""
        if upto <= 0 or (self.last_shot is not None and upto <= self.last_shot):
            return
        after = self.last_shot
        since = (self.last_time or self.first_contact) - timedelta(seconds=1)
        events = await self._history(machine, event_type, since)
        found = sorted(
            (
                e
                for e in events
                if (after is None or after < int(e.ShotNumber)) and int(e.ShotNumber) <= upto
            ),
            key=lambda e: int(e.ShotNumber),
        )
        # With no cycle seen yet, the machine's first cycles are those in the history.
        wanted = upto - after if after is not None else len(found) or 1
        for event in found:
            await self._publish_cycle(js, event)
            self.stats.backfilled += 1
        missed = wanted - len(found)
        if missed > 0:
            self.stats.missed += missed
            log.error(
                "OPC UA %s/%s: %d cycles up to shot %d are lost on the machine side too "
                "(not in its history); the MQTT shot record is the reference",
                self.plant,
                self.machine,
                missed,
                upto,
            )
        self.last_shot = max(self.last_shot or 0, upto)

    async def _history(self, machine: Node, event_type: Node, since: datetime) -> list[Any]:
        """Cycle events since `since`, from the machine object or else the Server object
        (some servers, asyncua's among them, keep the history of events there)."""
        until = datetime.now(UTC) + timedelta(seconds=1)
        server = Node(machine.session, ua.NodeId(ua.Int32(ua.ObjectIds.Server)))
        for source in (machine, server):
            try:
                events = await source.read_event_history(since, until, 0, event_type)
            except ua.UaError as exc:
                log.warning("OPC UA %s: no event history on %s (%s)", self.endpoint, source, exc)
                continue
            if events:
                return list(events)
        return []

    async def _publish_cycle(self, js: JetStreamContext, event: Any) -> None:
        params: dict[str, float | None] = {}
        for name in NAMES:
            value = getattr(event, name, None)
            params[name] = None if value is None or math.isnan(float(value)) else float(value)
        message = ShotMessage.model_validate(
            {
                "plant": self.plant,
                "machine": self.machine,
                "shot_number": int(event.ShotNumber),
                "die": str(event.DieCode),
                "ts": _utc(getattr(event, "Time", None)),
                "params": params,
                "trial": bool(event.Trial),
                "die_counter": int(event.ShotCounter),  # kept as an extra field of the shot
            }
        )
        subject = topics.to_subject(topics.topic(self.plant, self.machine, Kind.SHOT))
        msg_id = f"opcua:{self.plant}:{self.machine}:{message.shot_number}"
        await js.publish(subject, message.to_json(), headers={"Nats-Msg-Id": msg_id})
        self.last_shot = max(self.last_shot or 0, message.shot_number)
        self.last_time = message.ts
        self.stats.shots += 1

    async def _state(self, js: JetStreamContext, state: str, die: str) -> None:
        try:
            machine_state = MachineState(state)
        except ValueError:
            log.warning("OPC UA %s: unknown machine state %r", self.endpoint, state)
            return
        message = StateMessage(
            plant=self.plant,
            machine=self.machine,
            state=machine_state,
            ts=datetime.now(UTC),
            die=die or None,
            reason="OPC UA",
        )
        subject = topics.to_subject(topics.topic(self.plant, self.machine, Kind.STATE))
        await js.publish(subject, message.to_json())
        self.stats.states += 1


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
