"""The bridge from a plant's own MQTT broker (the real Mosquitto of this machine)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path

import nats
import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner

from castline.cli import app
from castline.messaging import jetstream, limits, parking
from castline.messaging.broker import EmbeddedNats, free_port, port_free
from castline.messaging.mqtt_bridge import MqttBridge, refusal
from castline.messaging.topics import Kind
from tests.conftest import missing

MOSQUITTO = "mqtt://127.0.0.1:1883"


@pytest.fixture
def mosquitto() -> str:
    if port_free(1883):
        missing("Mosquitto is not running on 127.0.0.1:1883")
    return MOSQUITTO


def publish(topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


async def run_bridge(bridge: MqttBridge, stop: asyncio.Event) -> asyncio.Task[None]:
    ready = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    return task


async def until_forwarded(bridge: MqttBridge, count: int, timeout_s: float = 10.0) -> None:
    """Until `count` messages were acknowledged to the plant broker (stored or parked)."""
    for _ in range(int(timeout_s / 0.05)):
        if bridge.forwarded >= count:
            return
        await asyncio.sleep(0.05)


async def test_messages_cross_into_jetstream_and_verdicts_come_back(
    mosquitto: str, broker: EmbeddedNats
) -> None:
    plant = f"p{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(broker.url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    stop = asyncio.Event()
    bridge = MqttBridge(mosquitto, broker.url, plant, client_id=f"bridge-{plant}")
    task = await run_bridge(bridge, stop)
    await asyncio.sleep(0.5)  # subscriptions in place
    await asyncio.to_thread(publish, f"castline/v1/{plant}/m1/shot", b'{"shot": 1}')
    await until_forwarded(bridge, 1)
    stored = await js.get_last_msg(jetstream.STREAM, f"castline.v1.{plant}.m1.shot")
    assert stored.data == b'{"shot": 1}'

    got = threading.Event()
    cell = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    cell.on_message = lambda *_: got.set()
    cell.connect("127.0.0.1", 1883)
    cell.subscribe(f"castline/out/v1/{plant}/m1/verdict", qos=1)
    cell.loop_start()
    await asyncio.sleep(0.3)
    await nc.publish(f"castline.out.v1.{plant}.m1.verdict", b'{"verdict": "OK"}')
    assert await asyncio.to_thread(got.wait, 10), "verdict did not reach the plant broker"
    cell.loop_stop()
    stop.set()
    await task
    await nc.drain()


async def test_bridge_down_loses_nothing(mosquitto: str, broker: EmbeddedNats) -> None:
    """Messages sent while the bridge is down wait in the plant broker's persistent session."""
    plant = f"p{uuid.uuid4().hex[:8]}"
    client_id = f"bridge-{plant}"
    stop = asyncio.Event()
    task = await run_bridge(MqttBridge(mosquitto, broker.url, plant, client_id), stop)
    await asyncio.sleep(0.5)
    stop.set()
    await task  # the session stays on Mosquitto (clean_session=False)
    for n in range(5):
        await asyncio.to_thread(publish, f"castline/v1/{plant}/m1/shot", f"{n}".encode())
    stop = asyncio.Event()
    bridge = MqttBridge(mosquitto, broker.url, plant, client_id)
    task = await run_bridge(bridge, stop)
    await until_forwarded(bridge, 5)
    stop.set()
    await task
    nc = await nats.connect(broker.url)
    info = await nc.jetstream().stream_info(jetstream.STREAM)
    assert info.state.messages == 5
    await nc.drain()


async def test_what_can_never_be_stored_is_parked_and_the_flow_goes_on(
    mosquitto: str, broker: EmbeddedNats, tmp_path: Path
) -> None:
    """A topic that can be no NATS subject (a space, an empty level) is parked with its
    reason and acknowledged; what the line will refuse (a dot in a level, a payload over its
    kind's bound) is carried for the line to dead-letter; the good message behind is stored."""
    plant = f"p{uuid.uuid4().hex[:8]}"
    stop = asyncio.Event()
    bridge = MqttBridge(mosquitto, broker.url, plant, client_id=f"bridge-{plant}")
    task = await run_bridge(bridge, stop)
    await asyncio.sleep(0.5)  # subscriptions in place
    unstorable = [(f"castline/v1/{plant}/m 1/shot", b"{}"), (f"castline/v1/{plant}//shot", b"{}")]
    refused_by_line = [
        (f"castline/v1/{plant}/m.1/shot", b"{}"),
        (f"castline/v1/{plant}/m1/state", b"x" * (limits.MAX_BYTES[Kind.STATE] + 1)),
    ]
    good = (f"castline/v1/{plant}/m1/shot", b'{"shot": 2}')
    for topic, payload in [*unstorable, *refused_by_line, good]:
        await asyncio.to_thread(publish, topic, payload)
    await until_forwarded(bridge, 5)
    stop.set()
    await task
    assert (bridge.forwarded, bridge.parked) == (5, 2)
    nc = await nats.connect(broker.url)
    js = nc.jetstream()
    for topic, payload in [*refused_by_line, good]:
        stored = await js.get_last_msg(jetstream.STREAM, topic.replace("/", "."))
        assert stored.data == payload
    parked = [await js.get_msg(parking.STREAM, seq) for seq in (1, 2)]
    headers = [m.headers or {} for m in parked]
    assert sorted(h["Castline-Subject"] for h in headers) == sorted(t for t, _ in unstorable)
    assert all("cannot be a NATS subject" in h["Castline-Reason"] for h in headers), headers
    await nc.drain()
    # what an operator reads: the newest parked messages, with where from and why
    home = {"CASTLINE_HOME": str(tmp_path / "home")}
    shown = await asyncio.to_thread(
        CliRunner().invoke, app, ["line", "parked", "--nats", broker.url, "--last", "1"], env=home
    )
    assert shown.exit_code == 0, shown.output
    assert f"castline/v1/{plant}//shot" in shown.output
    assert "cannot be a NATS subject" in shown.output
    assert "m 1" not in shown.output  # the newest one only


def test_a_payload_over_the_servers_max_payload_is_refused_before_it_is_sent() -> None:
    image = "castline/v1/p1/m1/image/front"
    assert refusal(image, 900 * 1024, 1024**2) is None
    assert "max_payload" in str(refusal(image, 2 * 1024**2, 1024**2))
    assert refusal("castline/v1/p1/m.1/shot", 10, 1024**2) is None  # the line refuses it
    for bad in ("castline/v1/p1/m\t1/shot", "castline/v1/p1/*/shot", "castline/v1/p1/m1/>"):
        assert "NATS subject" in str(refusal(bad, 10, 1024**2))


async def test_a_bridge_whose_nats_is_away_says_so_and_stops_when_told(
    mosquitto: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong --nats or a broker that is down: retried and said in the log, never a silent
    hang, and SIGTERM (the stop) still ends it."""
    stop = asyncio.Event()
    url = f"nats://127.0.0.1:{free_port()}"
    task = asyncio.create_task(MqttBridge(mosquitto, url, client_id="bridge-away").run(stop))
    await asyncio.sleep(1.5)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert any("retrying; is the broker up?" in r.getMessage() for r in caplog.records)
