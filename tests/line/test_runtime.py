"""The line runtime end to end through a real NATS (JetStream + MQTT) and a real model."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from PIL import Image
from sqlalchemy import Engine, select

from castline.domain.shot import PartKey
from castline.domain.verdict import Thresholds, decide
from castline.line.runtime import LineRuntime
from castline.messaging import jetstream, thumbnails
from castline.messaging.broker import EmbeddedNats
from castline.messaging.thumbnails import HeatmapThumbnail
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.blobs import BlobStore
from castline.store.repository import Store
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry
from tests.line.conftest import DIE, Device, casting_jpeg, line_running, until


async def create_stream(url: str) -> None:
    nc = await nats.connect(url)
    await jetstream.ensure_stream(nc.jetstream())
    await nc.close()


@dataclass
class Line:
    runtime: LineRuntime
    store: Store
    device: Device
    model: InspectionModel
    settings: Settings


def activate(engine: Engine, model_path: Path, die: str = DIE) -> InspectionModel:
    model = InspectionModel.load(model_path)
    ModelRegistry(engine).register(die, "front", model_path, model.manifest, {}, activate=True)
    return model


@pytest.fixture
async def line(tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path) -> AsyncIterator[Line]:
    settings = Settings(home=tmp_path / "home", join_window_s=1.5, verdict_deadline_s=5.0)
    engine = database.open_store(settings.db_url)
    model = activate(engine, synthetic_model)
    runtime = LineRuntime(settings, engine, broker.url)
    async with line_running(runtime, broker) as device:
        yield Line(runtime, Store(engine), device, model, settings)
    engine.dispose()


async def verdicts(line: Line, shots: set[int]) -> dict[int, dict[str, object]]:
    got = await asyncio.to_thread(line.device.wait_verdicts, shots)
    assert set(got) == shots, f"verdicts missing for {shots - set(got)}"
    return got


async def test_each_casting_is_inspected_decided_published_and_recorded(line: Line) -> None:
    defects = {3: "crack", 4: "gas_porosity", 5: "misrun"}
    for n in range(1, 6):
        line.device.shot(n)
        line.device.image(n, casting_jpeg(100 + n, defects.get(n)))
    got = await verdicts(line, set(range(1, 6)))
    review, ng = line.model.thresholds
    for body in got.values():
        score = body["score"]
        assert isinstance(score, float)
        assert body["verdict"] == decide(score, Thresholds(review, ng)).value
        assert body["model_version"] == line.model.version
    assert min(got[n]["score"] for n in defects) > max(got[n]["score"] for n in (1, 2))  # type: ignore[type-var]
    blobs = BlobStore(line.settings.blobs)
    drawn = lambda n: (line.store.verdict(line_key(line, n)) or {}).get("heatmap")  # noqa: E731
    await until(lambda: all(drawn(n) for n in range(1, 6)))  # overlays follow the verdicts
    await asyncio.sleep(0.5)
    sent = [b["shot_number"] for b in line.device.received]
    assert sorted(sent) == list(range(1, 6)), "each part gets exactly one verdict message"
    for n in range(1, 6):
        part = line.store.part(line_key(line, n))
        assert part is not None and part["shot"] is not None and len(part["images"]) == 1
        assert part["images"][0]["blob"] in blobs
        assert part["verdict"]["heatmap"] in blobs  # the overlay the UI shows
        assert part["verdict"]["timings"]["inspect_ms"] > 0


def line_key(line: Line, n: int) -> PartKey:
    return PartKey(line.device.plant, line.device.machine, n)


async def test_invalid_messages_are_dead_lettered_and_the_line_goes_on(line: Line) -> None:
    line.device.send("shot", b"\x00 not json")
    line.device.send("nonsense", b"{}")
    line.device.send("shot", json.dumps({"v": 1, "plant": "p1", "machine": "m1"}).encode())
    line.device.send("verdict", b'{"verdict": "OK"}')  # a device posing as the line
    line.device.send("availability", b"\x00garbage")
    line.device.shot(10)
    line.device.image(10, casting_jpeg(10))
    await verdicts(line, {10})
    await until(lambda: line.runtime.dead_letter_count >= 5)
    reasons = sorted(r["reason"] for r in line.store.dead_letters())
    assert len(reasons) == 5
    assert any("only castline publishes" in r for r in reasons)
    assert any("availability" in r or "online" in r for r in reasons)
    assert any("not JSON" in r for r in reasons)
    assert any("not a known castline/v1 topic" in r for r in reasons)
    assert any("shot_number" in r for r in reasons)


async def test_duplicates_and_out_of_order_give_one_verdict(line: Line) -> None:
    jpeg = casting_jpeg(20)
    line.device.image(20, jpeg)  # the camera was faster than the PLC
    line.device.shot(20)
    line.device.image(20, jpeg)  # and sent twice
    line.device.shot(20)
    await verdicts(line, {20})
    await until(lambda: len([b for b in line.device.received if b["shot_number"] == 20]) >= 2)
    sent = [b for b in line.device.received if b["shot_number"] == 20]
    assert {b["verdict"] for b in sent} == {sent[0]["verdict"]}  # repeated, never changed
    # The photo is stored after the verdict is out: wait for it, then count.
    await until(lambda: line.store.count(t.images, shot_number=20) >= 1)
    await asyncio.sleep(0.5)  # room for a second (wrong) copy to arrive
    assert line.store.count(t.verdicts, shot_number=20) == 1
    assert line.store.count(t.shots, shot_number=20) == 1
    assert line.store.count(t.images, shot_number=20) == 1


async def test_no_part_passes_without_a_trustworthy_verdict(line: Line) -> None:
    line.device.shot(30, die="UNKNOWN-DIE")  # no model for this die
    await until(lambda: line.store.count(t.shots, shot_number=30) == 1)
    line.device.image(30, casting_jpeg(30))
    line.device.shot(31)  # the camera never sends this part's image
    got = await verdicts(line, {30, 31})
    assert got[30]["verdict"] == "QUARANTINE" and "no active model" in str(got[30]["reason"])
    assert got[31]["verdict"] == "QUARANTINE" and "no casting image" in str(got[31]["reason"])
    line.device.shot(32)
    line.device.image(32, b"\xff\xd8 this is no jpeg")  # refused at the door, decided at once
    got = await verdicts(line, {32})
    assert got[32]["verdict"] == "QUARANTINE" and "photo refused" in str(got[32]["reason"])
    # and the refused photo is kept as a dead letter, once the part is decided
    await until(lambda: any("image" in r["reason"] for r in line.store.dead_letters()))


def test_runtime_killed_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path
) -> None:
    """kill -9 the runtime process while it works; after a restart every shot has one verdict."""
    home = tmp_path / "home"
    env = os.environ | {"CASTLINE_HOME": str(home), "CASTLINE_VERDICT_DEADLINE_S": "60"}
    engine = database.open_store(Settings(home=home).db_url)
    activate(engine, synthetic_model)
    assert broker.mqtt_port is not None
    asyncio.run(create_stream(broker.url))  # as `castline up` does before devices connect
    device = Device(broker.mqtt_port)
    device.state()
    parts = range(1, 41)
    for n in parts:
        device.shot(n)
        device.image(n, casting_jpeg(n))
    command = [sys.executable, "-m", "castline.cli", "line", "run", "--nats", broker.url]
    worker = subprocess.Popen(command, env=env)
    store = Store(engine)
    while store.count(t.verdicts) < 5:
        assert worker.poll() is None, "runtime died on its own"
        device.wait_verdicts({1}, timeout=0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed_at = store.count(t.verdicts)
    assert killed_at < len(parts), "the runtime finished before it could be killed"
    worker = subprocess.Popen(command, env=env)
    try:
        device.wait_verdicts(set(parts), timeout=120)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        device.close()
    with engine.connect() as conn:
        rows = conn.execute(select(t.verdicts.c.shot_number)).scalars().all()
    assert sorted(rows) == list(parts)
    assert store.count(t.shots) == len(parts) and store.count(t.images) == len(parts)


async def test_broker_restart_mid_run_loses_nothing(line: Line, broker: EmbeddedNats) -> None:
    for n in (40, 41):
        line.device.shot(n)
        line.device.image(n, casting_jpeg(n))
    await verdicts(line, {40, 41})
    broker.stop()  # the embedded NATS goes down; its JetStream store stays on disk
    line.device.connected.clear()
    await asyncio.sleep(1.0)
    broker.start()
    assert await asyncio.to_thread(line.device.connected.wait, 20), "device did not reconnect"
    await asyncio.sleep(1.0)  # the runtime's NATS client reconnects too
    for n in (42, 43):
        line.device.shot(n)
        line.device.image(n, casting_jpeg(n))
    await verdicts(line, {42, 43})
    # The journal is durable before the cell hears; the record follows a moment later.
    await until(lambda: line.store.count(t.verdicts) == 4)
    assert line.store.count(t.shots) == 4


async def test_parts_not_judged_ok_send_a_heat_map_thumbnail_for_the_hub(
    line: Line, broker: EmbeddedNats
) -> None:
    nc = await nats.connect(broker.url)
    thumbs: list[HeatmapThumbnail] = []

    async def got(msg: Any) -> None:
        thumbs.append(HeatmapThumbnail.model_validate_json(msg.data))

    await nc.subscribe(thumbnails.subject("p1", "m1"), cb=got)
    defects = {23: "crack", 24: "gas_porosity", 25: "misrun"}
    for n in range(21, 26):
        line.device.shot(n)
        line.device.image(n, casting_jpeg(100 + n, defects.get(n)))
    told = await verdicts(line, set(range(21, 26)))
    not_ok = {n for n, body in told.items() if body["verdict"] != "OK"}
    assert not_ok, "no part was judged other than OK: nothing tested"
    await until(lambda: len(thumbs) >= len(not_ok))
    await asyncio.sleep(0.5)  # an OK part's thumbnail would show now
    assert sorted(t.shot_number for t in thumbs) == sorted(not_ok)
    for thumb in thumbs:
        assert thumb.verdict.value == told[thumb.shot_number]["verdict"]
        with Image.open(io.BytesIO(thumb.jpeg())) as picture:
            assert picture.format == "JPEG" and max(picture.size) <= thumbnails.SIDE_PX
    stored = await nc.jetstream().get_last_msg("CASTLINE", thumbnails.subject("p1", "m1"))
    assert stored.data is not None  # in the plant's stream: the hub's records copy it
    await nc.close()


async def test_a_thumbnail_that_cannot_be_made_never_stops_the_record(
    line: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> bytes:
        raise OSError("no space left for the thumbnail")

    monkeypatch.setattr("castline.line.output.thumbnail_jpeg", broken)
    line.device.shot(31)
    line.device.image(31, casting_jpeg(131, "crack"))
    told = await verdicts(line, {31})
    assert told[31]["verdict"] != "OK", "the part must be one that gets a thumbnail"
    await until(lambda: (line.store.verdict(line_key(line, 31)) or {}).get("heatmap"))
