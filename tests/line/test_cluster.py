"""A three-node NATS cluster with a replicated stream: a node dies mid-run, nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from castline.line.runtime import LineRuntime
from castline.messaging import jetstream
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ImageMessage, ShotMessage
from castline.settings import Settings
from castline.store import tables as t
from castline.store.database import open_store
from castline.store.repository import Store
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry
from tests.line.conftest import DIE, casting_jpeg, until


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[EmbeddedNats]]:
    routes = [free_port() for _ in range(3)]
    nodes = [
        EmbeddedNats(
            tmp_path / f"n{i}",
            port=free_port(),
            mqtt_port=None,
            name=f"n{i}",
            cluster_port=routes[i],
            routes=tuple(r for r in routes if r != routes[i]),
        )
        for i in range(3)
    ]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


async def replicated_stream(url: str) -> None:
    """Create the stream with three replicas once the cluster has elected its leader."""
    nc = await nats.connect(servers=url.split(","))
    js = nc.jetstream()
    for _ in range(100):
        try:
            await jetstream.ensure_stream(js, replicas=3)
            break
        except Exception:
            await asyncio.sleep(0.2)
    info = await js.stream_info(jetstream.STREAM)
    assert info.config.num_replicas == 3
    await nc.close()


async def publish_parts(url: str, shots: range) -> None:
    nc = await nats.connect(servers=url.split(","), max_reconnect_attempts=-1)
    js = nc.jetstream()
    now = datetime.now(UTC)
    for n in shots:
        shot = ShotMessage(plant="p1", machine="m1", shot_number=n, die=DIE, ts=now)
        image = ImageMessage.of("p1", "m1", n, "front", now, casting_jpeg(n))
        for subject, body in (
            ("castline.v1.p1.m1.shot", shot.to_json()),
            ("castline.v1.p1.m1.image.front", image.to_json()),
        ):
            for _ in range(50):  # a publish may meet the election after a node died
                try:
                    await js.publish(subject, body, timeout=2)
                    break
                except Exception:
                    await asyncio.sleep(0.2)
    await nc.close()


async def test_a_node_dies_and_nothing_is_lost(
    tmp_path: Path, cluster: list[EmbeddedNats], synthetic_model: Path
) -> None:
    url = ",".join(node.url for node in cluster)
    await replicated_stream(url)
    settings = Settings(home=tmp_path / "home", verdict_deadline_s=60)
    engine = open_store(settings.db_url)
    model = InspectionModel.load(synthetic_model)
    ModelRegistry(engine).register(DIE, "front", synthetic_model, model.manifest, activate=True)
    runtime = LineRuntime(settings, engine, url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await ready.wait()
    store = Store(engine)
    await publish_parts(url, range(1, 11))
    await until(lambda: store.count(t.verdicts) >= 3)
    cluster[2].stop(kill=True)  # a node dies while the line works
    await publish_parts(",".join(node.url for node in cluster[:2]), range(11, 21))
    # A photo held back by the election may come after its shot was settled without it:
    # it is recorded then, with the verdict the part was told.
    await until(lambda: store.count(t.verdicts) == 20 and store.count(t.images) == 20, 90)
    stop.set()
    await task
    assert store.count(t.shots) == 20 and store.count(t.images) == 20
    assert store.count(t.verdicts) == 20
    engine.dispose()
