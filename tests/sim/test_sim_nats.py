"""The simulator against castline's embedded broker (NATS and its MQTT listener), as
`castline up` runs it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from castline.messaging.broker import BrokerError, EmbeddedNats, free_port, server_binary
from castline.messaging.schema import ShotMessage, decode
from castline.sim.fleet import FleetConfig
from castline.sim.runner import HallConfig, run_hall

from .conftest import missing


async def test_hall_publishes_through_the_nats_mqtt_listener(tmp_path: Path) -> None:
    try:
        server_binary()
    except BrokerError as exc:
        missing(str(exc))
    nats = EmbeddedNats(tmp_path / "nats", port=free_port(), mqtt_port=free_port())
    nats.start()
    received: list[tuple[str, bytes]] = []
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    subscriber.on_message = lambda c, u, m: received.append((m.topic, bytes(m.payload)))
    subscriber.on_connect = lambda c, *_: c.subscribe("castline/v1/natsplant/+/shot", qos=1)
    try:
        subscriber.connect("127.0.0.1", nats.mqtt_port)
        subscriber.loop_start()
        await asyncio.sleep(1.0)  # subscribed before the hall starts
        config = HallConfig(
            plant="natsplant",
            fleet=FleetConfig(machines=2, seed=4),
            speed=600,
            duration_s=2,
            first_shot=1,
            image_size=96,
        )
        report = await run_hall(config, nats.mqtt_url, asyncio.Event())
        end = time.monotonic() + 10
        while len(received) < report.shots and time.monotonic() < end:
            await asyncio.sleep(0.1)
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()
        nats.stop()
    shots = [decode(t, p)[1] for t, p in received]
    assert len(shots) == report.shots > 0
    assert all(isinstance(s, ShotMessage) and s.plant == "natsplant" for s in shots)
