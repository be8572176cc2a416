"""Fixtures of the line tests: a real embedded NATS, a real (small) inspection model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ImageMessage, ShotMessage, StateMessage
from castline.sim.photos import encode_jpeg, render_casting
from castline.vision.train import TrainConfig, train_model

DIE = "D1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedNats]:
    nats = EmbeddedNats(tmp_path / "nats", port=free_port(), mqtt_port=free_port())
    nats.start()
    yield nats
    nats.stop()


@pytest.fixture(scope="session")
def synthetic_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model of the synthetic casting, trained the way the product trains."""
    folder = tmp_path_factory.mktemp("good")
    rng = np.random.default_rng(3)
    for i in range(60):
        image, _ = render_casting(rng, None, size=128)
        (folder / f"good{i:03d}.jpeg").write_bytes(encode_jpeg(image))
    config = TrainConfig(input_size=128, bank_images=20, placements_per_image=1, memory_rows=256)
    out = tmp_path_factory.mktemp("model") / "model"
    train_model(sorted(folder.iterdir()), out, progress=False, config=config)
    return out


def casting_jpeg(seed: int, defect: str | None = None) -> bytes:
    image, _ = render_casting(np.random.default_rng(seed), defect, size=128)
    return encode_jpeg(image)


class Device:
    """A machine, camera and robot cell in one: a real MQTT client of the embedded broker."""

    def __init__(self, port: int, plant: str = "p1", machine: str = "m1") -> None:
        self.plant, self.machine = plant, machine
        self.verdicts: dict[int, dict[str, object]] = {}
        self.received: list[dict[str, object]] = []
        self._got = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{machine}-{port}"
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.connected = threading.Event()
        self.client.reconnect_delay_set(1, 2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(10), "device could not connect to the broker"

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(f"castline/out/v1/{self.plant}/{self.machine}/verdict", qos=1)
        self.connected.set()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload)
        with self._got:
            self.received.append(body)
            self.verdicts.setdefault(int(body["shot_number"]), body)
            self._got.notify_all()

    def send(self, kind: str, payload: bytes) -> None:
        topic = f"castline/v1/{self.plant}/{self.machine}/{kind}"
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def state(self, state: str = "running", die: str = DIE) -> None:
        msg = StateMessage(
            plant=self.plant,
            machine=self.machine,
            state=state,  # type: ignore[arg-type]
            ts=datetime.now(UTC),
            die=die,
        )
        self.send("state", msg.to_json())

    def shot(self, n: int, die: str = DIE, **params: float) -> None:
        msg = ShotMessage(
            plant=self.plant,
            machine=self.machine,
            shot_number=n,
            die=die,
            ts=datetime.now(UTC),
            params=params or {"melt_temp_c": 680.0},
        )
        self.send("shot", msg.to_json())

    def image(self, n: int, jpeg: bytes, view: str = "front") -> None:
        msg = ImageMessage.of(self.plant, self.machine, n, view, datetime.now(UTC), jpeg)
        self.send(f"image/{view}", msg.to_json())

    def wait_verdicts(self, shots: set[int], timeout: float = 30.0) -> dict[int, dict[str, object]]:
        with self._got:
            self._got.wait_for(lambda: shots <= set(self.verdicts), timeout)
        return {n: self.verdicts[n] for n in shots if n in self.verdicts}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def until(predicate: object, timeout: float = 30.0) -> None:
    """Wait in the event loop until `predicate()` is true."""
    assert callable(predicate)
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@contextlib.asynccontextmanager
async def line_running(
    runtime: LineRuntime, broker: EmbeddedNats, tell_state: bool = True
) -> AsyncIterator[Device]:
    """`runtime` running on `broker`, and a machine (camera and cell) that has told its
    state and die unless `tell_state` is False; both stopped after."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    assert broker.mqtt_port is not None
    device = Device(broker.mqtt_port)
    if tell_state:
        device.state()
    try:
        yield device
    finally:
        device.close()
        stop.set()
        await asyncio.wait_for(task, 15)
