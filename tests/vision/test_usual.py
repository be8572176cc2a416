"""With enough good photos, some measure the usual distance per place; maps divide by it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from castline.vision.train import MIN_USUAL_IMAGES, TrainConfig, train_model

from .conftest import write_parts
from .synthetic import part


@pytest.mark.slow
def test_usual_distance_is_measured_on_photos_the_memory_did_not_learn(tmp_path: Path) -> None:
    good = write_parts(tmp_path / "good", range(5 * MIN_USUAL_IMAGES))
    val = write_parts(tmp_path / "val", range(1000, 1020))
    config = TrainConfig(input_size=64, memory_rows=200, target_frr=0.05, review_frr=0.1)
    model = train_model(good, tmp_path / "m", val_paths=val, progress=False, config=config)
    training = model.manifest["training"]
    assert training["usual_images"] == MIN_USUAL_IMAGES
    assert training["bank_images"] == 4 * MIN_USUAL_IMAGES
    # Divided by the usual distance, good parts score about 1 (their places' mean).
    good_scores = [model.inspect(part(seed)).score for seed in range(2000, 2010)]
    assert 0.5 < float(np.median(good_scores)) < 3.0
    pitted = model.inspect(part(2100, pit=(40, 44, 5))).score
    assert pitted > max(good_scores)

    fewer = dataclasses.replace(config, usual_images=MIN_USUAL_IMAGES - 1)
    plain = train_model(good, tmp_path / "p", val_paths=val, progress=False, config=fewer)
    assert plain.manifest["training"]["usual_images"] == 0  # too few: not measured at all
