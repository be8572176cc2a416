"""The review loop through the real line: a held good part, reviewed OK, teaches the model
the line then inspects the next parts with, without a restart.

The line runtime runs on a real embedded NATS with a small model of a synthetic part
whose notch always sits at one angle; a part turned by a quarter is held. A person passes
it (the dashboard's action), the review loop makes and activates a new version, and the
next turned parts are decided by that version, scoring lower than before. Parts a person
confirms NG (naming the defect) give the model, trained on good photos only, a supervised
head once enough are confirmed: the line then decides on the head's probability.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
from castline.vision.head import MIN_DEFECTS
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry
from castline.vision.review_learning import LearnerConfig, ReviewLearner
from castline.vision.train import TrainConfig, train_model
from castline.web.actions import review_part
from castline.web.auth import Principal, Role
from tests.line.conftest import DIE, Device, line_running, until
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
    async with line_running(runtime, broker) as device:
        yield Running(settings, engine, device, trained)
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


def _pitted(seed: int) -> bytes:
    """A part with a pit on its rim, somewhere around it."""
    angle = 2.0 * np.pi * (seed % 7) / 7.0
    pit = (int(64 + 38 * np.cos(angle)), int(64 + 38 * np.sin(angle)), 3)
    return encode_jpeg(part(seed, pit=pit))


async def test_confirmed_defects_give_the_line_a_model_with_a_head(running: Running) -> None:
    trained, device, engine = running.trained, running.device, running.engine
    assert trained.manifest["score"] == "anomaly"  # trained on good photos only
    shots = set(range(1, MIN_DEFECTS + 1))
    for n in sorted(shots):
        device.shot(n)
        device.image(n, _pitted(600 + n))
    got = await asyncio.to_thread(device.wait_verdicts, shots)
    assert set(got) == shots
    store, ana = Store(engine), Principal(1, "ana", Role.OPERATOR, ())
    keys = [PartKey(device.plant, device.machine, n) for n in sorted(shots)]
    await until(lambda: all((store.part(k) or {}).get("images") for k in keys))
    for key in keys:  # the part as castline held it, or passed it: a person says NG
        review_part(engine, ana, key, "NG", "cold_shut", "pit on the rim")
    settings = running.settings
    learner = ReviewLearner(
        engine, BlobStore(settings.blobs), settings.models_dir, LearnerConfig(every_s=1)
    )
    made = await asyncio.to_thread(learner.step)
    assert [(m.parent, m.defects, m.head) for m in made] == [(trained.version, MIN_DEFECTS, True)]
    headed = InspectionModel.load(made[0].path)
    learnt = headed.manifest["learnt_from_reviews"]
    assert headed.manifest["score"] == "head" and learnt["head_update"] == "created"
    assert {p["defect_type"] for p in learnt["defects_confirmed"]} == {"cold_shut"}

    probe = _pitted(700)
    for n in range(100, 130):
        told = await _decided(device, n, probe)
        if told["model_version"] == made[0].version:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the line never inspected with the version that has a head")
    assert told["score"] == pytest.approx(headed.inspect_bytes(probe).score, abs=1e-4)
    assert 0.0 <= float(told["score"]) <= 1.0  # type: ignore[arg-type]
    assert told["verdict"] == "NG"
    # A rollback, like any version's, returns the line to the trained model.
    registry = ModelRegistry(engine)
    assert registry.rollback(DIE, "front") == trained.version
