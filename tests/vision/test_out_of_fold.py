"""Every good photo teaches and calibrates: its calibration score comes from other folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from castline.vision.calibration import threshold_for_frr
from castline.vision.images import read_image
from castline.vision.train import (
    CALIBRATION_FILE,
    Pools,
    TrainConfig,
    fold_of,
    train_model,
    usual_distance,
)

from .conftest import write_parts
from .synthetic import part


@pytest.mark.slow
def test_every_photo_is_in_the_memory_and_scored_out_of_fold(tmp_path: Path) -> None:
    good = write_parts(tmp_path / "good", range(40))
    config = TrainConfig(
        input_size=64, memory_rows=4000, folds=4, holdout=6, target_frr=0.05, review_frr=0.1
    )
    model = train_model(good, tmp_path / "m", progress=False, config=config)
    used = model.manifest["training"]["photos"]
    assert used["good_given"] == 40 and used["holdout"] == 6
    assert used["memory_and_calibration"] == 34 and used["folds"] == 4
    records = json.loads((tmp_path / "m" / CALIBRATION_FILE).read_text())["images"]
    learnt = [r for r in records if r["role"] == "memory+calibration"]
    assert len(learnt) == 34 and sorted({r["fold"] for r in learnt}) == [0, 1, 2, 3]
    assert sum(r["role"] == "holdout" for r in records) == 6

    # The final memory holds every patch of these photos (4000 rows per cell keep them
    # all): it finds them at distance ~0, while their recorded score came from a memory
    # without them.
    by_name = {p.name: p for p in good}
    for record in learnt[:8]:
        final = model.run(read_image(by_name[record["name"]]))["anomaly"][0]
        assert final < 0.5 * record["score"], record

    # Divided by the usual distance (mean of the out-of-fold maps), good parts score about 1.
    fresh = [model.inspect(part(seed)).score for seed in range(2000, 2010)]
    assert 0.5 < float(np.median(fresh)) < 3.0
    assert model.inspect(part(2100, pit=(40, 44, 5))).score > max(fresh)
    oof = model.manifest["metrics"]["out_of_fold"]
    low, high = oof["false_reject_rate_interval"]
    assert low <= oof["false_reject_rate"] <= high and high < 1
    assert model.manifest["metrics"]["holdout"]["n_ok"] == 6


def test_a_fold_memory_holds_no_patch_of_its_own_fold_and_the_final_one_all_folds() -> None:
    rng = np.random.default_rng(0)
    photos, folds, cells = 20, 4, 3
    fold = fold_of(photos, folds)

    def shown(photo: int) -> np.ndarray:  # column 0 says which photo a row came from
        noise = rng.normal(size=(30, 4)).astype(np.float32)
        return np.column_stack([np.full(30, photo, np.float32), noise])

    pools = Pools([[shown(i) for i in range(photos)] for _ in range(cells)], 2, None, 16)
    kept = pools.by_fold(fold, seed=0)
    for f in range(folds):
        bank = kept.memory(g for g in range(folds) if g != f).bank
        assert bank.shape == (cells, 16, 5)
        assert not np.isin(bank[..., 0], np.flatnonzero(fold == f)).any()
    final = kept.memory(range(folds)).bank
    assert set(fold[np.unique(final[..., 0]).astype(int)]) == set(range(folds))


def test_too_few_photos_are_refused_with_a_reason(tmp_path: Path) -> None:
    good = write_parts(tmp_path / "good", range(6))
    with pytest.raises(ValueError, match="at least 10"):
        train_model(good, tmp_path / "m", progress=False, config=TrainConfig(input_size=64))


def test_a_negative_number_of_copies_is_refused(tmp_path: Path) -> None:
    good = write_parts(tmp_path / "good", range(12))
    config = TrainConfig(input_size=64, placements_per_image=-1)
    with pytest.raises(ValueError, match="copies of a photo cannot be -1"):
        train_model(good, tmp_path / "m", progress=False, config=config)


def test_a_place_where_good_photos_vary_tolerates_their_worst() -> None:
    maps = np.ones((40, 8, 8), np.float32)
    maps[3, 2, 2] = 5.0  # one good photo far from the memory at one place (glare, a scratch)
    tolerant = usual_distance(maps, "max")
    assert tolerant[2, 2] > 1.5 * tolerant[6, 6]  # smoothed over about a patch
    assert tolerant[6, 6] == pytest.approx(1.0, abs=1e-3)  # elsewhere: what all of them show
    assert usual_distance(maps, "mean")[2, 2] == pytest.approx(1.1)


@pytest.mark.slow
def test_thresholds_are_set_for_the_final_memory_which_knows_more_photos(
    tmp_path: Path,
) -> None:
    good = write_parts(tmp_path / "good", range(40))
    config = TrainConfig(input_size=64, memory_rows=4000, folds=4, target_frr=0.1, review_frr=0.2)
    model = train_model(good, tmp_path / "m", progress=False, config=config)
    records = json.loads((tmp_path / "m" / CALIBRATION_FILE).read_text())["images"]
    out_of_fold = np.asarray([r["score"] for r in records if r["role"] == "memory+calibration"])
    # Set on the fold memories' own scores, the thresholds would sit too high: the final
    # memory has learnt a third more photos, so new parts score lower.
    thresholds = model.manifest["thresholds"]
    assert thresholds["ng"] < threshold_for_frr(out_of_fold, 0.1)
    assert thresholds["review"] < threshold_for_frr(out_of_fold, 0.2)
    fresh = np.asarray([model.inspect(part(seed)).score for seed in range(3000, 3200)])
    assert np.median(fresh) < np.median(out_of_fold)
    # ...and where the fold memories put them, fewer new good parts than the 20 % asked
    # for would be held: the corrected REVIEW threshold comes closer to it.
    held = float(np.mean(fresh >= thresholds["review"]))
    held_uncorrected = float(np.mean(fresh >= threshold_for_frr(out_of_fold, 0.2)))
    assert abs(held - 0.2) < abs(held_uncorrected - 0.2)
