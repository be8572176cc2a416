"""Thresholds meet their false-reject and escape targets; metrics are what they claim."""

from __future__ import annotations

import numpy as np
import pytest

from castline.vision.calibration import calibrate, threshold_for_frr
from castline.vision.memory import greedy_coreset
from castline.vision.metrics import auroc, escape_at_frr


def test_ng_threshold_rejects_about_the_target_share_of_good_parts() -> None:
    rng = np.random.default_rng(1)
    calibration_set, fresh = rng.gamma(4.0, 2.0, 5000), rng.gamma(4.0, 2.0, 20000)
    result = calibrate(calibration_set, target_frr=0.02, review_frr=0.05)
    assert result.false_reject_rate <= 0.02
    assert np.mean(fresh >= result.ng) == pytest.approx(0.02, abs=0.005)
    assert result.review < result.ng
    assert result.review_rate == pytest.approx(0.03, abs=0.002)
    assert result.escape_rate is None


def test_escape_target_lowers_the_ng_threshold() -> None:
    rng = np.random.default_rng(2)
    good, bad = rng.normal(0, 1, 2000), rng.normal(2.5, 1, 500)
    loose = calibrate(good, bad, target_frr=0.02)
    strict = calibrate(good, bad, target_frr=0.02, target_escape=0.05)
    assert loose.escape_rate is not None and loose.escape_rate > 0.05
    assert strict.escape_rate is not None and strict.escape_rate <= 0.05
    assert strict.ng < loose.ng and strict.review <= strict.ng


def test_threshold_with_few_images_rejects_none_of_them() -> None:
    good = np.array([1.0, 2.0, 3.0])
    assert threshold_for_frr(good, 0.02) > 3.0
    with pytest.raises(ValueError, match="no good calibration images"):
        threshold_for_frr(np.array([]), 0.02)


def test_auroc_and_escape_rate() -> None:
    assert auroc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert auroc(np.array([0.3, 0.4]), np.array([0.1, 0.2])) == 0.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 300), rng.normal(1, 1, 300)
    pairs = (b[:, None] > a[None, :]).mean() + 0.5 * (b[:, None] == a[None, :]).mean()
    assert auroc(a, b) == pytest.approx(pairs)
    ok = np.arange(100, dtype=float)  # rejecting 2 of 100 (98, 99): NG from just above 97
    assert escape_at_frr(ok, np.array([96.5, 97.5, 120.0])) == pytest.approx(1 / 3)


def test_coreset_covers_every_cluster() -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(0, 50, (8, 16))
    rows = np.concatenate([c + rng.normal(0, 0.1, (500, 16)) for c in centres]).astype(np.float32)
    chosen = rows[greedy_coreset(rows, 8, projection_dim=8)]
    nearest = np.linalg.norm(centres[:, None] - chosen[None], axis=2).min(axis=1)
    assert nearest.max() < 2.0  # one chosen row per cluster, though 4000 rows were offered
