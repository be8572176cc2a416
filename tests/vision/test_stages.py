"""Training scores through the inspection graph cut in two: the same numbers as the graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from castline.vision.backbone import EfficientNetLite
from castline.vision.graph import IMAGE_INPUT, features_graph, inspection_graph
from castline.vision.memory import PatchMemory, Projection, Scorer
from castline.vision.model import InspectionModel, session
from castline.vision.stages import Stages, patch_rows
from castline.vision.train import MAPS, SCORES

from .synthetic import part

SIZE, BORDER, STRIDES = 64, 16, (8, 16)
OUTPUTS = [*MAPS, *SCORES]


@pytest.fixture(scope="module")
def net() -> EfficientNetLite:
    return EfficientNetLite.load("lite0")


def some_graph(net: EfficientNetLite, seed: int, cell: int) -> onnx.ModelProto:
    """A graph with a random memory (PCA, cells), usual distance and part weights."""
    rng = np.random.default_rng(seed)
    grid, dim = SIZE // 8, sum(net.channels_at(s) for s in STRIDES)
    cells = (-(-grid // cell)) ** 2
    projection = Projection.fit(rng.normal(size=(200, dim)).astype(np.float32), 16)
    bank = rng.normal(size=(cells, 30, 16)).astype(np.float32)
    part_weights = np.ones((grid, grid), np.float32)
    part_weights[0] = 0.0
    usual = rng.uniform(0.5, 2.0, (grid, grid)).astype(np.float32)
    scorer = Scorer(1.0, 0.0, usual, part_weights, top=5)
    return inspection_graph(
        net,
        SIZE,
        PatchMemory(bank, cell, projection),
        scorer=scorer,
        thresholds=(1.0, 2.0),
        border=BORDER,
        strides=STRIDES,
    )


def photos() -> list[np.ndarray]:
    """Square and oblong photos: where the photo lies in the input matters to the score."""
    wide = part(7, size=96)[16:80]
    return [part(1), part(2, pit=(50, 60, 6)), wide, np.ascontiguousarray(wide.transpose(1, 0, 2))]


@pytest.mark.parametrize("cell", [2, 8])
def test_each_memory_scores_what_the_photo_stage_kept_as_the_graph_does(
    net: EfficientNetLite, cell: int
) -> None:
    first, second = some_graph(net, 1, cell), some_graph(net, 2, cell)
    stages = Stages.of(first, OUTPUTS, threads=1)
    look = stages.photo(first)  # cut from one memory's graph, used for the other's
    for graph in (first, second):
        scores = stages.memory(graph, OUTPUTS)
        model = InspectionModel(graph.SerializeToString(), {"thresholds": {"region": "inf"}})
        for photo in photos():
            want = model.run(photo)
            got = scores(look({IMAGE_INPUT.name: photo}))
            for name in OUTPUTS:
                np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)


def test_the_memory_learns_the_rows_the_features_graph_gives(net: EfficientNetLite) -> None:
    graph = some_graph(net, 3, 4)
    look = Stages.of(graph, OUTPUTS, threads=1).photo(graph)
    features = session(features_graph(net, SIZE, BORDER, STRIDES).SerializeToString(), 1)
    for photo in photos():
        want = features.run(["patches"], {"image": photo})[0]
        got = patch_rows(look({IMAGE_INPUT.name: photo}))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)  # the same, up to rounding
