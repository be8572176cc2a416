"""Registration (register.py): photos moved onto the good photos' placement inside the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from castline.vision.graph import IMAGE_INPUT, preprocess
from castline.vision.graph_builder import INT64, GraphBuilder
from castline.vision.model import session
from castline.vision.register import STEP, Registration, best_shift, fit
from castline.vision.train import Photo, TrainConfig, _input_thumbs, train_model

from .synthetic import part, save

SIZE = 96  # model input for the 128 px synthetic photos


def _shift_graph(registration: Registration) -> bytes:
    g = GraphBuilder()
    x, _ = preprocess(g, (SIZE, SIZE))
    g.rename(registration.shift(g, x), "found")
    return g.model([IMAGE_INPUT], [("found", INT64, [2])], "shift").SerializeToString()


def test_the_template_learns_the_placement_and_finds_each_shift(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    moves = rng.integers(-10, 11, size=(24, 2))
    paths = []
    for i, (dy, dx) in enumerate(moves):
        save(part(i, shift=(float(dx), float(dy))), str(tmp_path / f"{i}.png"))
        paths.append(tmp_path / f"{i}.png")
    thumbs = _input_thumbs([Photo(p, str(i)) for i, p in enumerate(paths)], (SIZE, SIZE), 1)
    registration, shifts = fit(thumbs, SIZE)
    # Photo px -> input px (128 -> 96); shifts are relative to the typical placement.
    expected = (moves - np.median(moves, axis=0)) * SIZE / 128
    assert np.abs(shifts - expected).max() <= STEP  # within one thumbnail pixel
    # The graph finds what training found, photo by photo.
    probe = session(_shift_graph(registration), 1)
    for i in (0, 5, 11):
        found = probe.run(["found"], {"image": part(i, shift=tuple(map(float, moves[i][::-1])))})
        assert tuple(found[0]) == tuple(
            np.asarray(best_shift(thumbs[i], registration.template, registration.reach)) * STEP
        )


def test_a_moved_photo_gets_the_same_map_moved_with_it(tmp_path: Path) -> None:
    """The registered graph scores a part moved by 8 px as it scores it in place, and
    the heat map moves with the part on the photo (not left in the template's frame)."""
    rng = np.random.default_rng(7)
    paths = []
    for i in range(24):
        dx, dy = rng.uniform(-10, 10, size=2)
        save(part(100 + i, shift=(dx, dy)), str(tmp_path / f"g{i}.png"))
        paths.append(tmp_path / f"g{i}.png")
    config = TrainConfig(
        input_size=128, cell=4, register=True, folds=3, memory_rows=400, part_mask=False
    )
    model = train_model(paths, tmp_path / "m", progress=False, config=config)
    moved = model.manifest["training"]["registration"]
    assert moved is not None and moved["p90_shift_of_side"] > 0.02
    pit = (94, 64, 5)  # on the rim
    here = model.inspect(part(500, pit=pit))
    there = model.inspect(part(500, shift=(8.0, 0.0), pit=(pit[0] + 8, pit[1], pit[2])))
    assert there.score == pytest.approx(here.score, rel=0.1)
    # Away from the mirrored edges, the map moved by 8 px is the map in place.
    a, b = here.heatmap[16:-16, 16:-24], there.heatmap[16:-16, 24:-16]
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9
    unmoved = there.heatmap[16:-16, 16:-24]  # as if the map stayed in the template's frame
    assert np.corrcoef(a.ravel(), unmoved.ravel())[0, 1] < np.corrcoef(a.ravel(), b.ravel())[0, 1]
