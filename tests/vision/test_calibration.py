"""Thresholds meet their false-reject and escape targets; metrics are what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from castline.vision.calibration import calibrate, grown, threshold_for_frr
from castline.vision.graph_builder import FLOAT, GraphBuilder
from castline.vision.memory import (
    Scorer,
    cell_windows,
    greedy_coreset,
)
from castline.vision.metrics import auroc, escape_at_frr
from castline.vision.model import session


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


def test_cell_windows_reach_around_each_cell() -> None:
    windows = cell_windows(grid=(6, 6), cell=3, reach=1)
    assert len(windows) == 4
    first = {(int(i) // 6, int(i) % 6) for i in windows[0]}
    assert first == {(y, x) for y in range(4) for x in range(4)}


def test_maps_are_divided_by_the_usual_distance_inside_the_band() -> None:
    grid = 6
    usual = np.arange(1, grid * grid + 1, dtype=np.float32).reshape(grid, grid)
    scorer = Scorer(sigma=0, margin=1 / 6, usual=usual)
    g = GraphBuilder()
    g.rename(scorer.anomaly_map(g, "map", (grid, grid)), "out")
    inputs = [helper.make_tensor_value_info("map", FLOAT, [1, 1, grid, grid])]
    graph = g.model(inputs, [("out", FLOAT, [1, 1, grid, grid])], "usual")
    ones = np.ones((1, 1, grid, grid), dtype=np.float32)
    got = session(graph.SerializeToString(), 1).run(["out"], {"map": ones})[0][0, 0]
    assert got[0].max() == 0 and got[:, 0].max() == 0  # the edge band does not count
    np.testing.assert_allclose(got[1:-1, 1:-1], 1 / usual[1:-1, 1:-1], rtol=1e-6)


def test_scores_are_carried_on_along_their_trend_in_memory_size() -> None:
    # A power law in memory size: score = c * n ** -0.5, one c per photo.
    rng = np.random.default_rng(3)
    c = rng.gamma(4.0, 2.0, 500)
    far, near, final = c * 240.0**-0.5, c * 320.0**-0.5, c * 400.0**-0.5
    carried = grown(near, far, (320.0, 240.0, 400.0))
    gap = np.abs(np.sort(near) - np.sort(final)).max()
    assert np.abs(carried - np.sort(final)).max() < 1e-6 * gap
    assert threshold_for_frr(carried, 0.02) < threshold_for_frr(near, 0.02)
    with pytest.raises(ValueError, match="far < near"):
        grown(near, far, (240.0, 320.0, 400.0))
