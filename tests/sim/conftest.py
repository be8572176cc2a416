"""Fixtures of the simulator tests: the real local Mosquitto and a recording subscriber."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

BROKER = "mqtt://127.0.0.1:1883"


def missing(what: str) -> None:
    """As tests/conftest.py: fail in CI, skip elsewhere (that module is not importable)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI must provide it)")
    pytest.skip(what)


class Recorder:
    """Subscribes to everything of one plant and keeps (topic, payload, retained)."""

    def __init__(self, plant: str) -> None:
        self.plant = plant
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *_: c.subscribe(f"castline/v1/{plant}/#", qos=1)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._message

    def _message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def of(self, kind: str) -> list[tuple[str, bytes]]:
        """Messages whose topic ends with kind (or holds /image/ for "image")."""
        with self.lock:
            if kind == "image":
                return [(t, p) for t, p, _ in self.messages if "/image/" in t]
            return [(t, p) for t, p, _ in self.messages if t.endswith("/" + kind)]

    def wait_offline(self, machines: int, limit_s: float = 20.0) -> None:
        """Wait until each machine's last message is its final "offline": all it sent before
        has arrived too (a broker keeps the order of one connection's messages)."""
        end = time.monotonic() + limit_s
        done: set[str] = set()
        while time.monotonic() < end:
            last: dict[str, tuple[str, bytes]] = {}
            with self.lock:
                for t, p, _ in self.messages:
                    last[t.split("/")[3]] = (t, p)
            done = {m for m, (t, p) in last.items() if t.endswith("/availability")}
            done = {m for m in done if last[m][1] == b"offline"}
            if len(done) >= machines:
                return
            time.sleep(0.05)
        raise AssertionError(f"only {len(done)} of {machines} machines said offline at the end")

    def settle(self, quiet_s: float = 0.5, limit_s: float = 10.0) -> None:
        """Wait until no message has arrived for `quiet_s` (the run's tail is delivered)."""
        end = time.monotonic() + limit_s
        count = -1
        while time.monotonic() < end:
            with self.lock:
                now = len(self.messages)
            if now == count:
                return
            count = now
            time.sleep(quiet_s)


def _broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def plant() -> str:
    """A plant id of its own, so parallel runs on the shared broker do not mix."""
    return f"simtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def recorder(plant: str) -> Iterator[Recorder]:
    if not _broker_up():
        missing("Mosquitto not reachable at 127.0.0.1:1883")
    rec = Recorder(plant)
    rec.client.connect("127.0.0.1", 1883)
    rec.client.loop_start()
    assert rec.ready.wait(10), "the test subscriber got no SUBACK from Mosquitto"
    yield rec
    rec.client.disconnect()
    rec.client.loop_stop()
    # Retained states and availability of this plant would linger on the shared broker.
    cleaner = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    cleaner.connect("127.0.0.1", 1883)
    cleaner.loop_start()
    for topic in {t for t, _, retained in rec.messages if t.endswith(("/state", "/availability"))}:
        cleaner.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    cleaner.disconnect()
    cleaner.loop_stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
