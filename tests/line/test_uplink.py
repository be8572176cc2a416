"""Edge to cloud: a plant keeps working with its uplink cut, the hub catches up exactly once.

Real nats-server processes on loopback: a hub (JetStream domain "hub") and a plant (domain
"p1") that is its leaf node. The leaf connection runs through a TCP proxy that the test
closes to cut the uplink; the second test kills the hub itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from castline.app import plant_broker
from castline.line.runtime import LineRuntime
from castline.messaging import jetstream, uplink
from castline.messaging.broker import EmbeddedNats, free_port, port_free
from castline.messaging.devices import service_options
from castline.messaging.schema import ImageMessage, ShotMessage
from castline.settings import Settings
from castline.store import tables as t
from castline.store.database import open_store
from castline.store.repository import Store
from castline.testing.link_proxy import LinkProxy
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry
from tests.line.conftest import DIE, casting_jpeg, until

Message = tuple[str, bytes]


def hub_server(tmp_path: Path, leaf_port: int, advertise: str | None = None) -> EmbeddedNats:
    return EmbeddedNats(
        tmp_path / "hub",
        port=free_port(),
        mqtt_port=None,
        name="hub",
        domain=uplink.HUB_DOMAIN,
        leaf_port=leaf_port,
        leaf_advertise=advertise,
    )


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedNats, LinkProxy]]:
    """A hub whose plants reach it (and reconnect to it) only through the proxy."""
    leaf = LinkProxy(free_port())
    hub = hub_server(tmp_path, leaf.target_port, advertise=f"127.0.0.1:{leaf.port}")
    hub.start()
    await leaf.open()
    yield hub, leaf
    await leaf.cut()
    hub.stop()


def plant_server(tmp_path: Path, leaf_port: int) -> EmbeddedNats:
    return EmbeddedNats(
        tmp_path / "p1",
        port=free_port(),
        mqtt_port=None,
        name="p1",
        domain="p1",
        leaf_remotes=(f"nats://127.0.0.1:{leaf_port}",),
    )


async def publish_parts(nc: NATS, shots: range) -> None:
    js = nc.jetstream()
    now = datetime.now(UTC)
    for n in shots:
        shot = ShotMessage(plant="p1", machine="m1", shot_number=n, die=DIE, ts=now)
        image = ImageMessage.of("p1", "m1", n, "front", now, casting_jpeg(n))
        await js.publish("castline.v1.p1.m1.shot", shot.to_json())
        await js.publish("castline.v1.p1.m1.image.front", image.to_json())


async def stream_count(nc: NATS, stream: str) -> int:
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    except NotFoundError:  # not created yet
        return 0


def is_photo(subject: str) -> bool:
    """A camera's photo, which the hub copies only for plants told to (`--with-photos`)."""
    levels = subject.split(".")
    return len(levels) == 6 and levels[:2] == ["castline", "v1"] and levels[4] == "image"


async def messages(nc: NATS, stream: str, count: int) -> list[tuple[Message, str | None]]:
    js = nc.jetstream()
    out = []
    for seq in range(1, count + 1):
        msg = await js.get_msg(stream, seq)
        source = (msg.headers or {}).get("Nats-Stream-Source")
        out.append(((msg.subject, msg.data or b""), source))
    return out


async def travelling(plant: NATS, photos: bool) -> list[tuple[Message, int]]:
    """The plant's messages that the hub copies, each with its plant sequence."""
    count = await stream_count(plant, jetstream.STREAM)
    listed = [m for m, _ in await messages(plant, jetstream.STREAM, count)]
    return [(m, seq) for seq, m in enumerate(listed, 1) if photos or not is_photo(m[0])]


async def caught_up(plant: NATS, hub: NATS, timeout: float = 60.0, photos: bool = False) -> int:
    """Wait until the central stream holds as many messages as the plant has to give."""
    for _ in range(int(timeout / 0.1)):
        expected = await stream_count(plant, jetstream.STREAM)
        if not photos:  # less the photos the plant holds
            info = await plant.jetstream().stream_info(jetstream.STREAM, uplink.PHOTOS)
            expected -= sum((info.state.subjects or {}).values())
        if await stream_count(hub, uplink.CENTRAL_STREAM) >= expected:
            return expected
        await asyncio.sleep(0.1)
    raise AssertionError("the central stream did not catch up in time")


def plant_seq(source: str | None) -> int:
    """The plant sequence a copy came from, as its Nats-Stream-Source header says."""
    return int(str(source).split()[1])


async def assert_exact_copy(
    plant: NATS, hub: NATS, timeout: float = 60.0, photos: bool = False
) -> int:
    """Every plant message the hub copies (photos only if asked) once, with no gap; with
    photos only, their source and the records' each keep the plant's order."""
    count = await caught_up(plant, hub, timeout, photos)
    await asyncio.sleep(1.0)  # a duplicate would arrive after the count matched
    assert await stream_count(hub, uplink.CENTRAL_STREAM) == count
    original = await travelling(plant, photos)
    central = [(m, plant_seq(s)) for m, s in await messages(hub, uplink.CENTRAL_STREAM, count)]
    if photos:  # two sources: records and photos each in order, interleaved as they came
        for kind in (True, False):
            mine = [(m, seq) for m, seq in central if is_photo(m[0]) == kind]
            assert [seq for _, seq in mine] == sorted(seq for _, seq in mine)
        central.sort(key=lambda copy: copy[1])
    # the header names the plant sequence of each copy: the same ones, none missing or twice
    assert central == original
    return count


async def until_reachable(hub: NATS, plant: str, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.2)):
        if await uplink.plant_reachable(hub, plant, timeout=0.2):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{plant} did not reconnect to the hub in time")


async def test_cut_uplink_buffers_and_catches_up_in_order(
    tmp_path: Path, proxy: tuple[EmbeddedNats, LinkProxy], synthetic_model: Path
) -> None:
    hub, leaf = proxy
    plant = plant_server(tmp_path, leaf.port)
    plant.start()
    settings = Settings(home=tmp_path / "home", plant="p1", verdict_deadline_s=60)
    engine = open_store(settings.db_url)
    model = InspectionModel.load(synthetic_model)
    ModelRegistry(engine).register(DIE, "front", synthetic_model, model.manifest, activate=True)
    store = Store(engine)
    runtime = LineRuntime(settings, engine, plant.url, plant="p1")
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    pc, hc = await nats.connect(plant.url), await nats.connect(hub.url)
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await uplink.ensure_central(hc, ["p1"])
        await publish_parts(pc, range(1, 11))
        await until(lambda: store.count(t.verdicts) == 10)
        await caught_up(pc, hc)

        await leaf.cut()
        at_cut = await stream_count(hc, uplink.CENTRAL_STREAM)
        await publish_parts(pc, range(11, 31))  # the plant's stream keeps accepting
        await until(lambda: store.count(t.verdicts) == 30, 60)  # and the line deciding
        buffered = 0
        for _ in range(100):  # a verdict reaches the stream just after its record
            buffered = await stream_count(pc, jetstream.STREAM)
            if buffered >= at_cut + 60:
                break
            await asyncio.sleep(0.1)
        assert buffered >= at_cut + 60  # 20 shots, 20 images, 20 verdicts
        assert await stream_count(hc, uplink.CENTRAL_STREAM) == at_cut  # nothing got through
        assert [lag.plant for lag in await uplink.plant_lags(hc)] == ["p1"]

        await leaf.open()
        await publish_parts(pc, range(31, 36))
        await until(lambda: store.count(t.verdicts) == 35, 60)
        stop.set()
        await task
        assert await assert_exact_copy(pc, hc) >= 35 * 2  # shots and verdicts, no photos
        (lag,) = await uplink.plant_lags(hc)
        assert lag.lag == 0 and lag.error is None
    finally:
        stop.set()
        await task
        await pc.close()
        await hc.close()
        plant.stop()
        engine.dispose()


async def test_hub_crash_and_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    hub = hub_server(tmp_path, free_port())
    assert hub.leaf_port
    plant = plant_server(tmp_path, hub.leaf_port)
    hub.start()
    plant.start()
    pc = await nats.connect(plant.url)
    try:
        js = pc.jetstream()
        await jetstream.ensure_stream(js)
        hc = await nats.connect(hub.url)
        await uplink.ensure_central(hc, ["p1"], photos=["p1"])  # two sources: each resumes
        kinds = ("shot", "image.front", "state")
        for n in range(200):
            await js.publish(f"castline.v1.p1.m1.{kinds[n % 3]}", b"%d" % n)
        await hc.close()
        hub.stop(kill=True)  # the central site dies mid-copy
        for n in range(200, 500):
            await js.publish(f"castline.v1.p1.m1.{kinds[n % 3]}", b"%d" % n)
        hub.start()
        hc = await nats.connect(hub.url)
        # the restarted hub may back off before it retries the plant: the hub's watch
        # re-attaches the source as soon as the plant answers
        await until_reachable(hc, "p1")
        assert await uplink.resume_stalled(hc) in ([], ["p1"])
        assert await assert_exact_copy(pc, hc, timeout=20, photos=True) == 500
        await hc.close()
    finally:
        await pc.close()
        plant.stop()
        hub.stop()


async def test_hub_command_copies_a_plant_started_with_an_uplink(tmp_path: Path) -> None:
    """`castline hub` and the plant broker of `castline up --uplink`, as a user runs them."""
    port, leaf_port = free_port(), free_port()
    command = [sys.executable, "-m", "castline.cli", "hub", "--plant", "p1", "--port",
               str(port), "--leaf-port", str(leaf_port), "--every", "1", "--for", "60"]  # fmt: skip
    env = {**os.environ, "CASTLINE_HOME": str(tmp_path / "central")}
    hub = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    uplink_url = f"nats://127.0.0.1:{leaf_port}"
    settings = Settings(home=tmp_path / "plant", plant="p1", nats_port=free_port(),
                        mqtt_port=free_port(), uplink_url=uplink_url)  # fmt: skip
    plant = plant_broker(settings)  # as `castline up`: no anonymous clients
    plant.start()
    try:
        pc = await nats.connect(plant.url, **service_options(settings.home, None))
        await jetstream.ensure_stream(pc.jetstream())
        for n in range(20):
            await pc.jetstream().publish("castline.v1.p1.m1.shot", b"%d" % n)
        await until(lambda: not port_free(port), 30)  # the command has started its server
        hc = await nats.connect(f"nats://127.0.0.1:{port}")
        assert await assert_exact_copy(pc, hc, timeout=30) == 20
        await hc.close()
        await pc.close()
    finally:
        plant.stop()
        hub.terminate()
        out, _ = hub.communicate(timeout=20)
    assert "p1: 0 messages behind, last heard" in out
