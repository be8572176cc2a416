"""One machine's MQTT connection (paho-mqtt v2, MQTT 3.1.1, QoS 1).

Each simulated machine connects as its own client, as a real machine and robot cell
would: its availability is retained "online", and its last will sets it "offline" when
the connection dies. Verdicts for the machine are handed to `on_verdict` from paho's
network thread; the caller moves them to its own loop.
"""

from __future__ import annotations

import contextlib
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

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def publish(self, topic_name: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic_name, payload, qos=QOS, retain=retain)

    def drop(self) -> None:
        """Fault injection: lose the connection (paho reconnects by itself)."""
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """Say offline and leave once that (and so all before it) is delivered."""
        if self.ever_connected:
            self.connected.wait(5)  # a dropped link comes back to deliver what it queued
            info = self.client.publish(self.availability, b"offline", qos=QOS, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=5)
        self.client.disconnect()
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
        self.connected.clear()

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._on_verdict(bytes(message.payload))
