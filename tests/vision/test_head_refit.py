"""Confirmed defects teach the supervised head, without training from scratch.

On descriptors alone: a head refitted with confirmed defects of a new type scores that
type higher than the head that never saw it, and its NG threshold keeps the false-reject
target, on the training photos (cross-fitted) and on good descriptors drawn afresh.
Through a small model: the model folder keeps what a refit needs, a model trained on good
photos only gets a head once `MIN_DEFECTS` defects are confirmed (fewer wait, kept), and
the head placed in the graph is the one the refit made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from castline.domain.verdict import Verdict
from castline.vision.head import (
    HEAD_DATA_FILE,
    MIN_DEFECTS,
    HeadData,
    fit_head,
    refit_head,
)
from castline.vision.model import InspectionModel
from castline.vision.train import TrainConfig, train_model
from castline.vision.update import ReviewedPhoto, UpdateError, update_model

from .synthetic import part, save

DIM, FOLDS, TARGET = 12, 5, 0.02


def _good(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, DIM))


def _defects(rng: np.random.Generator, n: int, along: int) -> np.ndarray:
    """Defects of one type: good descriptors pushed along one direction."""
    found = rng.normal(size=(n, DIM))
    found[:, along] += 5.0
    return found


def _trained_data(rng: np.random.Generator) -> HeadData:
    """As training keeps it: 300 good photos (out of fold) and 40 defects of type 0."""
    good, bad = _good(rng, 300), _defects(rng, 40, along=0)
    return HeadData(
        good=good.astype(np.float32),
        good_fold=np.arange(len(good)) % FOLDS,
        bad=bad.astype(np.float32),
        bad_fold=np.arange(len(bad)) % FOLDS,
        bad_confirmed=np.zeros(len(bad), bool),
        reviewed_good=np.zeros((0, DIM), np.float32),
    )


def test_a_refit_scores_confirmed_defect_types_higher_and_keeps_the_false_reject_target() -> None:
    rng = np.random.default_rng(7)
    trained = _trained_data(rng)
    before = fit_head(trained.good, trained.bad)  # the head training made
    confirmed = _defects(rng, 20, along=1)  # a type training never saw
    data = trained.with_confirmed(confirmed, np.zeros((0, DIM)))
    assert int(data.bad_confirmed.sum()) == 20
    assert np.bincount(data.bad_fold, minlength=FOLDS).min() >= 10  # dealt over all folds

    refit = refit_head(data, target_frr=TARGET, review_frr=0.05, target_escape=None)

    fresh_type_1 = _defects(rng, 500, along=1)
    assert np.median(refit.head.probability(fresh_type_1)) > 0.5
    assert np.median(refit.head.probability(fresh_type_1)) > np.median(
        before.probability(fresh_type_1)
    )
    ng = refit.calibration.ng
    escaped_before = np.mean(before.probability(fresh_type_1) < ng)
    assert np.mean(refit.head.probability(fresh_type_1) < ng) < escaped_before / 2
    assert np.mean(refit.head.probability(_defects(rng, 500, along=0)) >= ng) > 0.8  # kept
    # The target holds on the training photos, each scored by a head without its fold...
    assert refit.calibration.false_reject_rate <= TARGET
    assert refit.confirmed_defects == 20 and refit.defects == 60
    # ...and on good descriptors no head saw (at most a few points above, by chance).
    assert np.mean(refit.head.probability(_good(rng, 4000)) >= ng) <= TARGET + 0.02


def test_reviewed_good_descriptors_pull_the_head_towards_ok() -> None:
    rng = np.random.default_rng(8)
    trained = _trained_data(rng)
    unusual_good = _defects(rng, 60, along=2)  # a normal look training lacked
    plain = refit_head(trained, target_frr=TARGET, review_frr=0.05, target_escape=None)
    taught = refit_head(
        trained.with_confirmed(np.zeros((0, DIM)), unusual_good),
        target_frr=TARGET,
        review_frr=0.05,
        target_escape=None,
    )
    like_them = _defects(rng, 200, along=2)
    assert np.mean(taught.head.probability(like_them)) < np.mean(plain.head.probability(like_them))


# --- through a small model trained on good photos only ------------------------------

QUICK = TrainConfig(
    input_size=64, memory_rows=128, folds=3, target_frr=0.05, review_frr=0.10, threads=1
)


@dataclass
class GoodOnly:
    model: InspectionModel
    folder: Path


@pytest.fixture(scope="module")
def good_only(tmp_path_factory: pytest.TempPathFactory) -> GoodOnly:
    root = tmp_path_factory.mktemp("good-only")
    paths = []
    for seed in range(20):
        path = root / f"good_{seed:02d}.png"
        save(part(seed), str(path))
        paths.append(path)
    model = train_model(paths, root / "trained", progress=False, config=QUICK)
    return GoodOnly(model, root / "trained")


def _pitted(seeds: range) -> list[ReviewedPhoto]:
    rng = np.random.default_rng(seeds.start)
    photos = []
    for seed in seeds:
        angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(30, 45)
        pit = (int(64 + radius * np.cos(angle)), int(64 + radius * np.sin(angle)), 3)
        image = part(seed, pit=pit)
        photos.append(ReviewedPhoto(image, f"{seed:064d}", review=seed, defect_type="cold_shut"))
    return photos


def test_training_keeps_what_a_refit_needs(good_only: GoodOnly) -> None:
    data = HeadData.load(good_only.folder)
    assert data is not None and (good_only.folder / HEAD_DATA_FILE).is_file()
    assert data.folds == 3 and len(data.good) == 20 and len(data.bad) == 0
    assert data.good.shape[1] == good_only.model.run(part(1))["descriptor"].shape[1]
    assert data.good_smaller is not None and data.sizes is not None  # for calibration.grown
    with np.load(good_only.folder / HEAD_DATA_FILE, allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)


def test_a_good_only_model_gets_a_head_once_enough_defects_are_confirmed(
    good_only: GoodOnly, tmp_path: Path
) -> None:
    trained = good_only.model
    few = update_model(good_only.folder, tmp_path / "few", [], _pitted(range(900, 903)))
    learnt = few.manifest["learnt_from_reviews"]
    assert learnt["head_update"] == "pending" and few.manifest["score"] == "anomaly"
    assert few.thresholds == trained.thresholds
    kept = HeadData.load(tmp_path / "few")
    assert kept is not None and int(kept.bad_confirmed.sum()) == 3  # they wait, kept

    more = _pitted(range(910, 910 + MIN_DEFECTS - 3))
    headed = update_model(tmp_path / "few", tmp_path / "headed", [], more)
    learnt = headed.manifest["learnt_from_reviews"]
    assert learnt["head_update"] == "created" and headed.manifest["score"] == "head"
    assert learnt["head"]["defects"] == MIN_DEFECTS and learnt["parent"] == few.version
    review, ng = headed.thresholds
    calibration = learnt["head"]["calibration"]
    assert (review, ng) == (calibration["review"], calibration["ng"])
    assert learnt["head"]["calibration"]["false_reject_rate"] <= QUICK.target_frr

    # The graph decides on the head's probability of its own descriptor.
    data = HeadData.load(tmp_path / "headed")
    assert data is not None and len(data.bad) == MIN_DEFECTS
    photo = part(950, pit=(40, 50, 3))
    out = headed.run(photo)
    expected = _head_probability(headed, out["descriptor"][0])
    assert float(out["score"][0]) == pytest.approx(expected, abs=1e-4)
    assert 0.0 <= float(out["score"][0]) <= 1.0
    confirmed = [headed.inspect(p.image) for p in more]
    assert np.mean([r.verdict is Verdict.NG for r in confirmed]) >= 0.8
    again = InspectionModel.load(tmp_path / "headed")  # the folder alone loads
    assert again.inspect(photo).score == pytest.approx(headed.inspect(photo).score)


def _head_probability(model: InspectionModel, descriptor: np.ndarray) -> float:
    """What the head's initializers in the graph give for a descriptor, by hand."""
    proto = onnx.load_from_string(model.graph)
    found = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    weights = next(v for k, v in found.items() if k.startswith("head_w_"))[:, 0]
    bias = next(v for k, v in found.items() if k.startswith("head_b_"))[0]
    logit = float(descriptor.astype(np.float64) @ weights.astype(np.float64) + bias)
    return 1.0 / (1.0 + np.exp(-logit))


def test_a_model_folder_without_head_data_says_so(good_only: GoodOnly, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("manifest.json", "model.onnx"):
        (bare / name).write_bytes((good_only.folder / name).read_bytes())
    with pytest.raises(UpdateError, match=r"head_descriptors\.npz"):
        update_model(bare, tmp_path / "out", [], _pitted(range(960, 962)))
