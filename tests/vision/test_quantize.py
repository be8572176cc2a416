"""The int8 backbone: close to the float one, and one inference path when training uses it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from castline.vision.backbone import EfficientNetLite
from castline.vision.graph import features_graph
from castline.vision.graph_builder import GraphBuilder
from castline.vision.model import ONNX_FILE, InspectionModel, session
from castline.vision.quantize import network_inputs, quantise
from castline.vision.train import CALIBRATION_FILE, TrainConfig, train_model
from castline.vision.update import ReviewedPhoto, update_model

from .conftest import write_parts
from .synthetic import part

SIZE, BORDER, STRIDES = 64, 16, (8, 16)


@pytest.fixture(scope="module")
def net() -> EfficientNetLite:
    return EfficientNetLite.load("lite0")


def _features(net: EfficientNetLite, photo: np.ndarray) -> np.ndarray:
    graph = features_graph(net, SIZE, BORDER, STRIDES)
    return session(graph.SerializeToString(), 1).run(["patches"], {"image": photo})[0]


def test_int8_patches_follow_the_float_ones(net: EfficientNetLite) -> None:
    calibration = network_inputs([part(seed) for seed in range(6)], (SIZE, SIZE), BORDER)
    int8 = quantise(net, (SIZE + 2 * BORDER,) * 2, STRIDES, calibration)
    photo = part(500, pit=(40, 44, 4))
    exact, quantised = _features(net, photo), _features(int8, photo)
    assert exact.shape == quantised.shape
    assert not np.array_equal(exact, quantised)  # it really is another computation
    assert np.corrcoef(exact.ravel(), quantised.ravel())[0, 1] > 0.95
    # Integer convolutions in the graph: weights stored as int8.
    weights = [t for t in int8.fragment.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(weights) >= 10
    with pytest.raises(ValueError, match="built for"):
        int8.build(GraphBuilder(), "x", (SIZE, SIZE), STRIDES)


def test_a_quantised_model_decides_through_its_own_int8_graph(tmp_path: Path) -> None:
    good = write_parts(tmp_path / "good", range(24))
    config = TrainConfig(
        input_size=SIZE, folds=2, holdout=4, memory_rows=256, quantize=True, threads=1
    )
    train_model(good, tmp_path / "model", progress=False, config=config)
    graph = onnx.load(tmp_path / "model" / ONNX_FILE)
    assert any(n.op_type == "QuantizeLinear" for n in graph.graph.node)
    loaded = InspectionModel.load(tmp_path / "model", threads=1)
    assert loaded.manifest["training"]["config"]["quantize"] is True
    good_scores = [loaded.inspect(part(seed)).score for seed in range(2000, 2006)]
    assert loaded.inspect(part(2010, pit=(40, 44, 4))).score > max(good_scores)
    # Training scored the held-back photos through the same int8 graph the line loads.
    records = json.loads((tmp_path / "model" / CALIBRATION_FILE).read_text())["images"]
    held = {r["sha256"]: r["score"] for r in records if r["role"] == "holdout"}
    assert len(held) == 4
    for path in good:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in held:
            assert loaded.inspect_bytes(path.read_bytes()).score == held[digest]
    # The review loop adds rows to the memory of the same int8 graph.
    turned = part(777, angle=90.0)
    reviewed = ReviewedPhoto(turned, hashlib.sha256(turned.tobytes()).hexdigest())
    updated = update_model(tmp_path / "model", tmp_path / "updated", [reviewed])
    graph = onnx.load(tmp_path / "updated" / ONNX_FILE)
    assert any(n.op_type == "QuantizeLinear" for n in graph.graph.node)
    assert updated.inspect(turned).score <= loaded.inspect(turned).score
