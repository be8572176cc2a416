"""The one inference path: an ONNX graph that takes a photo and returns the decision.

uint8 RGB image of any size -> resize to the model's input size -> (x - 127) / 128 ->
EfficientNet-Lite features at strides 8 and 16 -> patch descriptors -> distance to the
nearest normal patch of the same cell -> smoothed map, divided by the usual distance of
good parts at each place -> image score -> optional supervised head -> thresholds ->
verdict code. Training builds the same graph (without thresholds that
matter yet) and scores through it, so train, evaluation and the line cannot disagree.

Graph outputs:
  score      [1]     float: the decision score (the head's probability when there is one)
  anomaly    [1]     float: nearest-neighbour anomaly score (max of the map)
  verdict    [1]     int64: 0 OK, 1 REVIEW, 2 NG, 3 QUARANTINE (score is NaN)
  heatmap    [H, W]  float: anomaly map resized to the input image
  descriptor [1, K]  float: image-level features the supervised head reads
  distances  [g, g]  float: smoothed patch distances before the usual-distance division
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from castline.vision.backbone import INPUT_MEAN, INPUT_STD, EfficientNetLite
from castline.vision.graph_builder import FLOAT, INT64, UINT8, GraphBuilder
from castline.vision.memory import PatchMemory, Scorer
from castline.vision.patches import PatchMaker

STRIDES = (8, 16)
VERDICT_CODES = ("OK", "REVIEW", "NG", "QUARANTINE")
IMAGE_INPUT = helper.make_tensor_value_info("image", UINT8, ["height", "width", 3])


@dataclass(frozen=True)
class Head:
    """Logistic regression on the descriptor, standardisation folded in."""

    weights: np.ndarray  # [K]
    bias: float

    def build(self, g: GraphBuilder, descriptor: str) -> str:
        logit = g.op(
            "Add",
            [
                g.op("MatMul", [descriptor, g.const(self.weights[:, None], "head_w")]),
                g.const([self.bias], "head_b"),
            ],
        )
        return g.op("Reshape", [g.op("Sigmoid", [logit]), g.ints([1])], "probability")

    def probability(self, descriptors: np.ndarray) -> np.ndarray:
        """What the graph's head gives for descriptors [n, K] (for cross-fitting)."""
        logit = descriptors.astype(np.float64) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-logit))


def preprocess(g: GraphBuilder, size: int) -> str:
    """uint8 [H, W, 3] RGB -> normalised float [1, 3, size, size]."""
    x = g.op("Cast", ["image"], to=FLOAT)
    x = g.op("Unsqueeze", [g.op("Transpose", [x], perm=[2, 0, 1]), g.ints([0])])
    x = g.op(
        "Resize",
        [x, "", "", g.ints([1, 3, size, size])],
        "resized",
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    return g.op("Mul", [g.op("Sub", [x, g.const(INPUT_MEAN)]), g.const(1.0 / INPUT_STD)])


def _patch_grid(g: GraphBuilder, net: EfficientNetLite, size: int) -> tuple[str, int]:
    x = preprocess(g, size)
    maps = net.build(g, x, size, STRIDES)
    grid = -(-size // STRIDES[0])
    channels = [net.channels_at(s) for s in STRIDES]
    return PatchMaker().build(g, maps, channels, grid), grid


def features_graph(net: EfficientNetLite, size: int) -> onnx.ModelProto:
    """Image -> patch descriptor rows [P, D]: what the memory bank is made of."""
    g = GraphBuilder()
    patches, _ = _patch_grid(g, net, size)
    g.rename(PatchMaker.rows(g, patches), "patches")
    dim = sum(net.channels_at(s) for s in STRIDES)
    return g.model([IMAGE_INPUT], [("patches", FLOAT, ["P", dim])], f"castline-features-{net.name}")


def inspection_graph(
    net: EfficientNetLite,
    size: int,
    memory: PatchMemory,
    *,
    scorer: Scorer,
    thresholds: tuple[float, float],
    head: Head | None = None,
    metadata: dict[str, str] | None = None,
) -> onnx.ModelProto:
    """The full decision graph (see the module docstring for its outputs)."""
    g = GraphBuilder()
    patches, grid = _patch_grid(g, net, size)
    distance = memory.build(g, patches, grid)
    smoothed = scorer.smoothed(g, distance, grid)
    amap = scorer.anomaly_map(g, smoothed, grid)
    anomaly = scorer.image_score(g, amap)
    descriptor = Scorer.descriptor(g, amap, anomaly, patches)
    score = head.build(g, descriptor) if head is not None else anomaly

    image_hw = g.op("Slice", [g.op("Shape", ["image"]), g.ints([0]), g.ints([2])])
    heat = g.op(
        "Resize",
        [amap, "", "", g.op("Concat", [g.ints([1, 1]), image_hw], axis=0)],
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    g.rename(g.op("Reshape", [heat, image_hw]), "heatmap")

    review, ng = thresholds
    above_review = g.op(
        "Cast", [g.op("GreaterOrEqual", [score, g.const([review], "review")])], to=INT64
    )
    above_ng = g.op("Cast", [g.op("GreaterOrEqual", [score, g.const([ng], "ng")])], to=INT64)
    code = g.op("Add", [above_review, above_ng])
    quarantine = g.ints([VERDICT_CODES.index("QUARANTINE")])
    g.rename(g.op("Where", [g.op("IsNaN", [score]), quarantine, code]), "verdict")
    g.rename(score, "score")
    g.rename(anomaly, "anomaly")
    g.rename(descriptor, "descriptor")
    g.rename(g.op("Reshape", [smoothed, g.ints([grid, grid])]), "distances")
    outputs = [
        ("score", FLOAT, [1]),
        ("anomaly", FLOAT, [1]),
        ("verdict", INT64, [1]),
        ("heatmap", FLOAT, ["height", "width"]),
        ("descriptor", FLOAT, [1, "K"]),
        ("distances", FLOAT, ["grid", "grid"]),
    ]
    return g.model([IMAGE_INPUT], outputs, f"castline-inspection-{net.name}", metadata)
