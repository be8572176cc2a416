"""Defects anywhere in photos of any shape: no blind border, letterbox not squash, auto memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from castline.domain.verdict import Verdict
from castline.vision.align import choose, input_shape, thumbnail
from castline.vision.train import TrainConfig, train_model

from .conftest import Trained
from .synthetic import SIZE, part, save


def wide(seed: int, pit: tuple[int, int, int] | None = None) -> np.ndarray:
    """A 128 x 192 photo: the part on the left, plain background on the right."""
    rng = np.random.default_rng(seed + 50_000)
    photo = np.full((SIZE, SIZE * 3 // 2, 3), 120, np.uint8)
    noise = rng.normal(0, 2, photo.shape[:2])
    photo[:] = np.clip(120 + noise, 0, 255).astype(np.uint8)[:, :, None]
    photo[:, :SIZE] = part(seed)
    if pit is not None:
        yy, xx = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]]
        photo[np.hypot(xx - pit[0], yy - pit[1]) <= pit[2]] = 25
    return photo


# On the part's outer rim (radius 0.36 of the side) on three sides: the background
# beyond it is not inspected (test_part.py), the part's border is, to its last patch.
@pytest.mark.parametrize("pit", [(108, 64, 4), (64, 20, 4), (33, 95, 4)])
def test_a_defect_on_the_parts_border_is_found_where_it_is(
    tiny: Trained, pit: tuple[int, int, int]
) -> None:
    result = tiny.model.inspect(part(8200, pit=pit))
    assert result.verdict is Verdict.NG, (pit, result.score, tiny.model.thresholds)
    peak_y, peak_x = np.unravel_index(np.argmax(result.heatmap), result.heatmap.shape)
    assert np.hypot(peak_x - pit[0], peak_y - pit[1]) <= 12


def test_the_input_is_shaped_like_the_photos_at_the_same_cost() -> None:
    assert input_shape([(300, 300)], 240) == (240, 240)
    assert input_shape([(300, 315), (300, 290)], 240) == (240, 240)  # near enough square
    assert input_shape([(160, 480)] * 3, 240) == (144, 416)  # a 3:1 bar fills it
    assert input_shape([(480, 160)], 240) == (416, 144)
    # Photos of several sizes: the typical shape decides.
    shape = input_shape([(240, 320), (300, 400), (256, 384)], 240)
    assert shape == (208, 272) and abs(shape[0] * shape[1] / 240**2 - 1) < 0.05
    bar = np.zeros((160, 480, 3), np.uint8)
    assert thumbnail(bar, (144, 416)).shape == (22, 64)  # letterboxed like the input
    assert thumbnail(bar).shape == (64, 64)


@pytest.mark.slow
def test_wide_photos_are_letterboxed_and_scored_to_their_edge(tmp_path: Path) -> None:
    folder = tmp_path / "good"
    folder.mkdir()
    paths = []
    for seed in range(30):
        paths.append(folder / f"w{seed}.png")
        save(wide(seed), str(paths[-1]))
    # The whole photo counts (no part region): the pit lies on the background.
    config = TrainConfig(
        input_size=96, memory_rows=3000, target_frr=0.05, review_frr=0.1, part_mask=False
    )
    model = train_model(paths, tmp_path / "m", progress=False, config=config)
    assert model.manifest["input_size"] == [80, 112]  # shaped like the photos, not 96 x 96
    fine = [model.inspect(wide(seed)) for seed in range(900, 906)]
    # On the background at the far right edge, where a squash or a blind band would hide it.
    pitted = model.inspect(wide(907, pit=(189, 40, 4)))
    assert pitted.heatmap.shape == (SIZE, SIZE * 3 // 2)
    assert pitted.verdict is Verdict.NG and pitted.score > 1.5 * max(r.score for r in fine)
    peak_y, peak_x = np.unravel_index(np.argmax(pitted.heatmap), pitted.heatmap.shape)
    assert np.hypot(peak_x - 189, peak_y - 40) <= 14
    grey = model.inspect(wide(908)[:, :, 0])  # a grey camera gives the same verdicts
    assert grey.score == model.inspect(wide(908)).score


def test_memory_per_cell_only_where_the_photos_line_up() -> None:
    steady = [thumbnail(part(seed, shift=(1.0, -1.0))) for seed in range(20)]
    assert choose(steady, cell=4, reach=1, grid=(28, 28)).cell == 4
    rng = np.random.default_rng(0)
    moving = []
    for seed in range(20):
        canvas = np.full((192, 192, 3), 120, np.uint8)
        y, x = rng.integers(0, 64, size=2)
        canvas[y : y + SIZE, x : x + SIZE] = part(seed)
        moving.append(thumbnail(canvas))
    chosen = choose(moving, cell=4, reach=1, grid=(28, 28))
    assert chosen.cell == 0 and chosen.p90_offset > chosen.limit
