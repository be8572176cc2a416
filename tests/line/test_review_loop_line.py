"""The review loop through the real line: a held good part, reviewed OK, teaches the model
the line then inspects the next parts with, without a restart.

The line runtime runs on a real embedded NATS with a small model of a synthetic part
whose notch always sits at one angle; a part turned by a quarter is held. A person passes
it (the dashboard's action), the review loop makes and activates a new version, and the
next turned parts are decided by that version, scoring lower than before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from castline.domain.shot import PartKey
from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats
from castline.settings import Settings
from castline.sim.photos import encode_jpeg
from castline.store import database
from castline.store.blobs import BlobStore
from castline.store.repository import Store
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry
from castline.vision.review_learning import LearnerConfig, ReviewLearner
from castline.vision.train import TrainConfig, train_model
from castline.web.actions import review_part
from castline.web.auth import Principal, Role
from tests.line.conftest import DIE, Device, until
from tests.vision.synthetic import part, save

QUICK = TrainConfig(input_size=64, memory_rows=128, folds=3, target_frr=0.05, review_frr=0.10)
TURNED = 90.0


@pytest.fixture(scope="module")
def notch_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("notch")
    paths = []
    for seed in range(20):
        path = root / f"good_{seed:02d}.png"
        save(part(seed), str(path))
        paths.append(path)
    train_model(paths, root / "model", progress=False, config=QUICK)
    return root / "model"


@dataclass
class Running:
    settings: Settings
    engine: Engine
    device: Device
    trained: InspectionModel


@pytest.fixture
async def running(
    tmp_path: Path, broker: EmbeddedNats, notch_model: Path
) -> AsyncIterator[Running]:
    settings = Settings(home=tmp_path / "home", join_window_s=1.5, verdict_deadline_s=5.0)
    engine = database.open_store(settings.db_url)
    trained = InspectionModel.load(notch_model)
    ModelRegistry(engine).register(DIE, "front", notch_model, trained.manifest, activate=True)
    runtime = LineRuntime(settings, engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    assert broker.mqtt_port is not None
    device = Device(broker.mqtt_port)
    device.state()
    yield Running(settings, engine, device, trained)
    device.close()
    stop.set()
    await asyncio.wait_for(task, 15)
    engine.dispose()


async def _decided(device: Device, n: int, photo: bytes) -> dict[str, object]:
    device.shot(n)
    device.image(n, photo)
    got = await asyncio.to_thread(device.wait_verdicts, {n})
    assert n in got, f"no verdict for shot {n}"
    return got[n]


async def test_a_reviewed_false_reject_changes_the_lines_next_verdicts(running: Running) -> None:
    trained, device = running.trained, running.device
    held = await _decided(device, 1, encode_jpeg(part(501, angle=TURNED)))
    assert held["verdict"] in ("NG", "REVIEW") and held["model_version"] == trained.version

    ana = Principal(1, "ana", Role.OPERATOR, ())
    key = PartKey(device.plant, device.machine, 1)
    store = Store(running.engine)
    await until(lambda: bool((store.part(key) or {}).get("images")))  # on the review queue
    review_part(running.engine, ana, key, "OK", None, "notch turned, good", confirmed=True)
    settings = running.settings
    learner = ReviewLearner(
        running.engine,
        BlobStore(settings.blobs),
        settings.models_dir,
        LearnerConfig(every_s=1, poll_s=1),
    )
    made = await asyncio.to_thread(learner.step)
    assert [m.parent for m in made] == [trained.version]

    # The line asks the registry every few seconds: the next parts meet the new version.
    like_it = encode_jpeg(part(502, angle=TURNED))
    for n in range(2, 30):
        told = await _decided(device, n, like_it)
        if told["model_version"] == made[0].version:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the line never inspected with the new version")
    before = trained.inspect_bytes(like_it).score
    assert isinstance(told["score"], float) and told["score"] < before
