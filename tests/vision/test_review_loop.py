"""The review loop: photos confirmed good after castline held them join the memory.

A small model learns synthetic parts whose notch always sits at the same angle; a part
turned by a quarter (good, but a look the memory never saw) is held. Reviewed as OK in
the dashboard, it becomes a new active version, through the real database, registry and
the web app's background task; the line's `ActiveModels` serves it without a restart,
a rollback returns to the trained version, and a photo like the reviewed one scores
lower while a real defect is still rejected.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, select

from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict, Verdict
from castline.line.inspection import ActiveModels
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.blobs import BlobStore
from castline.store.repository import PhotoRecord, Store
from castline.vision.head import MIN_DEFECTS
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry
from castline.vision.review_learning import LearnerConfig, ReviewLearner
from castline.vision.train import TrainConfig, train_model
from castline.vision.update import ReviewedPhoto, UpdateConfig, update_model
from castline.web.app import create_app
from castline.web.auth import Role, add_user, new_api_key

from .synthetic import part, save

# Small and quick: 64 px input, 128 rows per cell, 3 folds (about 2 s on one core).
QUICK = TrainConfig(
    input_size=64, memory_rows=128, folds=3, target_frr=0.05, review_frr=0.10, threads=1
)
TURNED = 90.0  # the notch a quarter turn away from where every training part has it
WAIT_S = 60.0  # bound on the wait for the review loop's version


@dataclass
class Quick:
    model: InspectionModel
    folder: Path


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Quick:
    root = tmp_path_factory.mktemp("review-loop")
    paths = []
    for seed in range(20):
        path = root / f"good_{seed:02d}.png"
        save(part(seed), str(path))
        paths.append(path)
    model = train_model(paths, root / "trained", progress=False, config=QUICK)
    return Quick(model, root / "trained")


def test_an_update_adds_the_reviewed_look_and_keeps_defects_out(
    quick: Quick, tmp_path: Path
) -> None:
    trained = quick.model
    review, ng = trained.thresholds
    turned = [part(seed, angle=TURNED) for seed in range(100, 104)]
    normal = [part(seed) for seed in range(200, 203)]
    pitted = part(300, pit=(40, 50, 4))
    assert all(trained.inspect(p).score >= review for p in turned)  # held: a false reject
    assert trained.inspect(pitted).score >= ng

    reviewed = ReviewedPhoto(turned[0], "d" * 64, "p1/m1/7/1", review=7, reviewer="ana")
    updated = update_model(quick.folder, tmp_path / "updated", [reviewed], last_review=9)

    learnt = updated.manifest["learnt_from_reviews"]
    assert learnt["parent"] == trained.version and learnt["root"] == trained.version
    assert learnt["last_review"] == 9 and learnt["photos"][0]["part"] == "p1/m1/7/1"
    assert updated.thresholds == trained.thresholds  # kept as calibrated out of fold
    memory = learnt["memory"]
    assert memory["rows_added"] > 0 and memory["rows_after"] <= 128 * 1.25
    assert memory["scores_after"][0] < review <= memory["scores_before"][0]
    # Photos like the reviewed one (other parts, same turn) now score lower; none higher.
    for photo in turned[1:]:
        assert updated.inspect(photo).score < trained.inspect(photo).score
    for photo in [*normal, pitted]:
        assert updated.inspect(photo).score <= trained.inspect(photo).score + 1e-5
    assert updated.inspect(pitted).verdict is Verdict.NG  # a real defect is still rejected
    again = InspectionModel.load(tmp_path / "updated")  # the folder alone loads
    assert again.version == updated.version
    assert again.inspect(turned[1]).score == pytest.approx(updated.inspect(turned[1]).score)


@pytest.mark.parametrize("cell", [None, 0])  # per-cell memory, one for the whole photo
def test_a_model_of_oblong_photos_learns_from_reviews_too(tmp_path: Path, cell: int | None) -> None:
    def oblong(seed: int, angle: float = 0.0) -> np.ndarray:
        """The part beside a plain strip of its own background: 128 x 192 photos."""
        photo = part(seed, angle=angle)
        return np.concatenate([photo, np.repeat(photo[:, :1], 64, axis=1)], axis=1)

    paths = []
    for seed in range(20):
        paths.append(tmp_path / f"good_{seed:02d}.png")
        save(oblong(seed), str(paths[-1]))
    config = replace(QUICK, cell=cell)
    trained = train_model(paths, tmp_path / "trained", progress=False, config=config)
    assert trained.manifest["input_size"] == [48, 80]  # shaped like the photos
    turned = [oblong(seed, angle=TURNED) for seed in range(100, 103)]
    reviewed = ReviewedPhoto(turned[0], "e" * 64, "p1/m1/8/1", review=8, reviewer="ana")
    updated = update_model(tmp_path / "trained", tmp_path / "updated", [reviewed], last_review=8)
    memory = updated.manifest["learnt_from_reviews"]["memory"]
    assert memory["rows_added"] > 0
    assert memory["scores_after"][0] < memory["scores_before"][0]
    assert updated.inspect(turned[1]).score < trained.inspect(turned[1]).score


def test_growth_is_bounded_and_redundant_rows_give_way(quick: Quick, tmp_path: Path) -> None:
    photos = [
        ReviewedPhoto(part(seed, angle=angle), f"{seed:064d}", review=seed)
        for seed, angle in zip(range(400, 406), (30, 60, 90, 120, 150, 180), strict=True)
    ]
    config = UpdateConfig(growth=0.125)
    first = update_model(quick.folder, tmp_path / "a", photos[:3], config=config)
    second = update_model(tmp_path / "a", tmp_path / "b", photos[3:], config=config)
    cap = round(128 * 1.125)
    assert first.manifest["learnt_from_reviews"]["memory"]["rows_after"] <= cap
    grown = second.manifest["learnt_from_reviews"]["memory"]
    assert grown["rows_after"] <= cap and grown["rows_dropped"] > 0
    assert second.manifest["learnt_from_reviews"]["good_total"] == 6


# --- through the store, the registry, the web app's background task and the line -----


def _jpeg(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")  # lossless: the photo the model saw
    return out.getvalue()


def _held_part(store: Store, blobs: BlobStore, model: InspectionModel, number: int) -> PartKey:
    """A turned good part as the line records it: held by the model, photo stored."""
    key = PartKey("p1", "m1", number)
    at = datetime.now(UTC) - timedelta(minutes=5)
    store.record_shots([Shot(key, "D1", at, {"melt_temp_c": 660.0})])
    image = part(500 + number, angle=TURNED)
    found = model.inspect(image)
    assert found.verdict is not Verdict.OK
    told = PartVerdict(found.verdict, at, "", found.score, model.version)
    store.record_part(key, told, PhotoRecord("front", at, blobs.put(_jpeg(image)), "image/png"))
    return key


@pytest.fixture
def served(
    quick: Quick, pg_engine: Engine, tmp_path: Path
) -> Iterator[tuple[TestClient, Engine, dict[str, str]]]:
    database.upgrade(pg_engine)
    settings = Settings(
        home=tmp_path, secret_key="test-secret-not-for-production", review_learning_every_s=1
    )
    ModelRegistry(pg_engine).register(
        "D1", "front", quick.folder, quick.model.manifest, activate=True
    )
    add_user(pg_engine, "ana", "correct horse battery", Role.ENGINEER)
    headers = {"X-API-Key": new_api_key(pg_engine, "ana")}
    with TestClient(create_app(settings, pg_engine)) as client:
        yield client, pg_engine, headers


def _wait_for_version(registry: ModelRegistry, other_than: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        active = registry.active("D1", "front")
        if active is not None and active["version"] != other_than:
            return str(active["version"])
        time.sleep(0.2)
    raise AssertionError(f"no new version within {WAIT_S:.0f} s")


def test_a_false_reject_reviewed_ok_becomes_the_lines_model_and_rolls_back(
    quick: Quick, served: tuple[TestClient, Engine, dict[str, str]], tmp_path: Path
) -> None:
    client, engine, headers = served
    trained = quick.model
    store, blobs = Store(engine), BlobStore(tmp_path / "blobs")
    line = ActiveModels(engine, refresh_s=0)  # the line's view of the registry
    assert line.get("D1", "front").version == trained.version  # type: ignore[union-attr]
    key = _held_part(store, blobs, trained, 1)
    like_it = part(777, angle=TURNED)

    answer = client.post(
        f"/api/v1/plants/p1/parts/m1/{key.shot_number}/review",
        json={"decision": "OK", "comment": "notch turned, part is good", "confirmed": True},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    registry = ModelRegistry(engine)
    version = _wait_for_version(registry, trained.version)

    served_now = line.get("D1", "front")  # no restart: the next part meets the new version
    assert served_now is not None and served_now.version == version
    learnt = served_now.manifest["learnt_from_reviews"]
    assert learnt["photos"][0]["part"] == "p1/m1/1/1" and learnt["photos"][0]["reviewer"] == "ana"
    assert served_now.inspect(like_it).score < trained.inspect(like_it).score
    with engine.connect() as conn:
        audit = conn.execute(select(t.audit_log).where(t.audit_log.c.action == "model.learn")).one()
    assert (audit.actor, audit.target) == ("castline", "D1/front")

    back = client.post(
        "/api/v1/models/rollback", json={"die": "D1", "view": "front"}, headers=headers
    )
    assert back.status_code == 200, back.text
    assert back.json()["version"] == trained.version
    assert line.get("D1", "front").version == trained.version  # type: ignore[union-attr]
    # The rolled-back review is not learnt again: the loop waits for new confirmations.
    time.sleep(2.5)
    assert registry.active("D1", "front")["version"] == trained.version  # type: ignore[index]
    assert len(registry.versions("D1", "front")) == 2


def test_the_loop_waits_for_enough_confirmations_and_learns_each_once(
    quick: Quick, sqlite_engine: Engine, tmp_path: Path
) -> None:
    database.upgrade(sqlite_engine)
    store, blobs = Store(sqlite_engine), BlobStore(tmp_path / "blobs")
    registry = ModelRegistry(sqlite_engine)
    registry.register("D1", "front", quick.folder, quick.model.manifest, activate=True)
    at = datetime.now(UTC)
    for number in (1, 2):
        key = _held_part(store, blobs, quick.model, number)
        store.record_review(key, Verdict.OK, "ana", at, comment="good")
    ok_part = PartKey("p1", "m1", 3)  # passed by castline and by the person: nothing to learn
    store.record_shots([Shot(ok_part, "D1", at, {"melt_temp_c": 660.0})])
    image = _jpeg(part(3))
    store.record_part(
        ok_part,
        PartVerdict(Verdict.OK, at, "", 0.5, quick.model.version),
        PhotoRecord("front", at, blobs.put(image), "image/png"),
    )
    store.record_review(ok_part, Verdict.OK, "ana", at)

    def learner(min_new: int) -> ReviewLearner:
        config = LearnerConfig(every_s=0, min_new=min_new)
        return ReviewLearner(sqlite_engine, blobs, tmp_path / "models", config)

    assert learner(3).step() == []  # two false rejects wait for a third
    made = learner(2).step()
    assert [(m.good, m.parent) for m in made] == [(2, quick.model.version)]
    assert made[0].version.endswith(".r2")  # the last false reject read
    assert learner(1).step() == []  # another process finds them learnt already
    assert registry.active("D1", "front")["version"] == made[0].version  # type: ignore[index]


def test_confirmed_defects_wait_for_a_first_head_and_teach_it_only_this_views_photos(
    quick: Quick, sqlite_engine: Engine, tmp_path: Path
) -> None:
    database.upgrade(sqlite_engine)
    store, blobs = Store(sqlite_engine), BlobStore(tmp_path / "blobs")
    registry = ModelRegistry(sqlite_engine)
    registry.register("D1", "front", quick.folder, quick.model.manifest, activate=True)
    at = datetime.now(UTC)

    def confirmed_ng(number: int, views: dict[str, Verdict]) -> None:
        """A part whose views castline judged so; a person then says NG (cold shut)."""
        key = PartKey("p1", "m1", number)
        store.record_shots([Shot(key, "D1", at, {"melt_temp_c": 660.0})])
        worst = Verdict.NG if Verdict.NG in views.values() else max(views.values())
        told = PartVerdict(worst, at, "", 0.5, quick.model.version)
        for view, verdict in views.items():
            photo = blobs.put(_jpeg(part(600 + number, pit=(64, 26, 3))))
            store.record_part(key, told, PhotoRecord(view, at, photo, "image/png", verdict=verdict))
        assert store.record_review(key, Verdict.NG, "ana", at, "cold_shut")

    for number in range(1, MIN_DEFECTS):  # passed by castline: escapes
        confirmed_ng(number, {"front": Verdict.OK})
    # Two views, held for the back one: the front photo need not show the defect.
    confirmed_ng(MIN_DEFECTS, {"front": Verdict.OK, "back": Verdict.NG})
    learner = ReviewLearner(
        sqlite_engine, blobs, tmp_path / "models", LearnerConfig(every_s=0, min_new=1)
    )
    assert learner.step() == []  # 9 on this view: a good-only model waits for 10
    confirmed_ng(MIN_DEFECTS + 1, {"front": Verdict.REVIEW})
    made = learner.step()
    assert [(m.good, m.defects, m.head) for m in made] == [(0, MIN_DEFECTS, True)]
    headed = InspectionModel.load(made[0].path)
    learnt = headed.manifest["learnt_from_reviews"]
    parts = {p["part"] for p in learnt["defects_confirmed"]}
    assert f"p1/m1/{MIN_DEFECTS}/1" not in parts and len(parts) == MIN_DEFECTS
    assert headed.manifest["score"] == "head" and learnt["last_review"] == MIN_DEFECTS + 1
    assert registry.active("D1", "front")["version"] == made[0].version  # type: ignore[index]
    assert learner.step() == []  # learnt once
