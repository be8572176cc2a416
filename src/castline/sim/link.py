"""One machine's MQTT connection (paho-mqtt v2, MQTT 3.1.1, QoS 1).

Each simulated machine connects as its own client, as a real machine and robot cell
would: its availability is retained "online", and its last will sets it "offline" when
the connection dies. Started inside an asyncio loop, the client's socket is driven by that
loop (no thread and no select() per machine, so one process holds a thousand machines);
started outside one, by paho's own network thread. Verdicts for the machine are handed to
`on_verdict` from whichever runs the socket; the caller moves them to its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from castline.messaging.address import BrokerAddress
from castline.messaging.devices import Login, client_tls
from castline.messaging.topics import Kind, output_topic, topic

QOS = 1


@dataclass(frozen=True)
class MqttAccess:
    """How the simulated machines log in: each its own user (as `castline up` provisions
    them), and TLS checked against `tls_ca` when the broker serves TLS."""

    logins: Mapping[str, Login] = field(default_factory=dict)
    tls: bool = False
    tls_ca: Path | None = None

    def context(self) -> ssl.SSLContext | None:
        return client_tls(self.tls_ca) if self.tls else None


class MachineLink:
    def __init__(
        self,
        broker_url: str,
        plant: str,
        machine: str,
        on_verdict: Callable[[bytes], None],
        access: MqttAccess | None = None,
    ) -> None:
        address = BrokerAddress.parse(broker_url)
        self.host, self.port = address.host, address.port
        user, password = address.username, address.password
        login = access.logins.get(machine) if access else None
        if login is not None:
            user, password = login.user, login.password
        self.availability = topic(plant, machine, Kind.AVAILABILITY)
        self.verdicts = output_topic(plant, machine)
        self.connected = threading.Event()
        self.ever_connected = False
        self.disconnects = 0  # connections lost after being made (what it sent is resent)
        self.refused: str | None = None
        self._on_verdict = on_verdict
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"castline-sim-{plant}-{machine}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if user:
            self.client.username_pw_set(user, password)
        context = access.context() if access else None
        if context is not None:
            self.client.tls_set_context(context)
        self.client.max_queued_messages_set(0)  # keep everything while disconnected
        self.client.will_set(self.availability, b"offline", qos=QOS, retain=True)
        self.client.reconnect_delay_set(1, 10)
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self._driver: LoopDriver | None = None

    def start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.client.connect_async(self.host, self.port, keepalive=30)
            self.client.loop_start()
            return
        self._driver = LoopDriver(self.client, loop, self.host, self.port)
        self._driver.start()

    def publish(self, topic_name: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic_name, payload, qos=QOS, retain=retain)

    def drop(self) -> None:
        """Fault injection: lose the connection."""
        sock = self.client.socket()
        # Shut, not closed: whoever runs the socket reads its end at once (paho reconnects
        # by itself; the loop driver, within a second).
        if isinstance(sock, socket.socket | ssl.SSLSocket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Say offline and leave once that (and so all before it) is delivered."""
        if self.ever_connected:
            self.connected.wait(5)  # a dropped link comes back to deliver what it queued
            info = self.client.publish(self.availability, b"offline", qos=QOS, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=5)
        self.client.disconnect()
        if self._driver is not None:
            self._driver.stop()
        else:
            self.client.loop_stop()

    def _connected(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)  # e.g. "Not authorized": said when the hall gives up
            return
        client.subscribe(self.verdicts, qos=QOS)
        client.publish(self.availability, b"online", qos=QOS, retain=True)
        self.ever_connected = True
        self.connected.set()

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any) -> None:
        if self.connected.is_set():
            self.disconnects += 1
        self.connected.clear()

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._on_verdict(bytes(message.payload))


class LoopDriver:
    """Runs one paho client's socket from an asyncio loop: reads when the socket is
    readable, writes while paho has bytes to send, keepalive and reconnection once a
    second. Paho calls the socket hooks from whichever thread touches the client; the
    loop's own calls are made on the loop."""

    RECONNECT_S = (1.0, 10.0)  # first and longest wait before connecting again

    def __init__(self, client: mqtt.Client, loop: asyncio.AbstractEventLoop, host: str, port: int):
        self.client, self.loop, self.host, self.port = client, loop, host, port
        self._ticking: asyncio.Task[None] | None = None
        self._stopped = False
        # The descriptor is read where paho calls: done later on the loop, the socket may
        # be closed by then.
        client.on_socket_open = lambda _c, _u, sock: self._on_loop(self._watch, sock.fileno())
        client.on_socket_close = lambda _c, _u, sock: self._on_loop(self._forget, sock.fileno())
        client.on_socket_register_write = lambda _c, _u, sock: self._on_loop(
            self.loop.add_writer, sock.fileno(), self._write
        )
        client.on_socket_unregister_write = lambda _c, _u, sock: self._on_loop(
            self.loop.remove_writer, sock.fileno()
        )

    def start(self) -> None:
        self._ticking = self.loop.create_task(self._tick())

    def stop(self) -> None:
        self._stopped = True
        if self._ticking is not None:
            self.loop.call_soon_threadsafe(self._ticking.cancel)

    async def _tick(self) -> None:
        wait = self.RECONNECT_S[0]
        while not self._stopped:
            if self.client.socket() is None:
                try:
                    self.client.connect(self.host, self.port, keepalive=30)
                    wait = self.RECONNECT_S[0]
                except Exception:  # refused, unreachable, TLS: tried again, later each time
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, self.RECONNECT_S[1])
                    continue
            self.client.loop_misc()  # keepalive; notices a connection that went quiet
            await asyncio.sleep(1.0)

    def _watch(self, fd: int) -> None:
        self.loop.add_reader(fd, self._read)

    def _forget(self, fd: int) -> None:
        self.loop.remove_reader(fd)
        self.loop.remove_writer(fd)

    def _read(self) -> None:
        self.client.loop_read()

    def _write(self) -> None:
        self.client.loop_write()

    def _on_loop(self, fn: Any, *args: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            fn(*args)
        elif not self.loop.is_closed():  # a client collected after its loop: nothing to undo
            self.loop.call_soon_threadsafe(fn, *args)
