"""The one inference path: an ONNX graph that takes a photo and returns the decision.

uint8 RGB image of any size -> letterbox into the model's input, shaped like the photos
it learnt from (scaled, never squashed; a mirrored border around it) -> (x - 127) / 128 ->
EfficientNet-Lite features at strides 8 and 16 -> patch descriptors -> distance to the
nearest normal patch of the same cell -> smoothed map, divided by the usual distance of
good parts at each place (the heat map: the same, smoothed less) -> image score ->
optional supervised head -> thresholds -> verdict code. Training builds the same graph
(without thresholds that matter yet) and scores through it, so train, evaluation and the
line cannot disagree.

Graph outputs:
  score      [1]     float: the decision score (the head's probability when there is one)
  anomaly    [1]     float: nearest-neighbour anomaly score (max of the map)
  verdict    [1]     int64: 0 OK, 1 REVIEW, 2 NG, 3 QUARANTINE (score is NaN)
  heatmap    [H, W]  float: anomaly map resized to the input image
  peak       [1]     float: the heat map's highest value (what sets the region threshold)
  descriptor [1, K]  float: image-level features the supervised head reads
  distances  [gh, gw] float: smoothed patch distances before the usual-distance division
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from castline.vision.backbone import INPUT_MEAN, INPUT_STD, EfficientNetLite
from castline.vision.graph_builder import FLOAT, INT64, UINT8, GraphBuilder
from castline.vision.memory import PatchMemory, Scorer, cells_of
from castline.vision.patches import GRID_STRIDE, HW, PatchMaker, as_hw, grid_of
from castline.vision.register import Registration

STRIDES = (8, 16)  # feature maps the patches are made of, by default
VERDICT_CODES = ("OK", "REVIEW", "NG", "QUARANTINE")
MEMORY_BANK = "memory_bank"  # initializer [cells, rows, d]: the memory update.py grows
MEMORY_ROWS = "memory_rows"  # value [cells, d, patches a cell]: the rows compared with it
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


@dataclass(frozen=True)
class Letterbox:
    """Where the photo lies in the model input (graph values, int64 [1] each)."""

    top: str
    left: str
    height: str
    width: str


def preprocess(g: GraphBuilder, size: HW) -> tuple[str, Letterbox]:
    """uint8 [H, W, 3] RGB -> normalised float [1, 3, h, w], letterboxed.

    The photo is scaled as large as it fits the input and the rest is padded by repeating
    its edge: never squashed, so a round part stays round whatever the camera's aspect
    ratio. Photos shaped like the input are not padded at all.
    """
    x = g.op("Cast", ["image"], to=FLOAT)
    x = g.op("Unsqueeze", [g.op("Transpose", [x], perm=[2, 0, 1]), g.ints([0])])
    hw = g.op(
        "Cast", [g.op("Slice", [g.op("Shape", ["image"]), g.ints([0]), g.ints([2])])], to=FLOAT
    )
    fits = g.op("Div", [g.const([float(size[0]), float(size[1])]), hw])
    scale = g.op("ReduceMin", [fits], keepdims=1)
    new = g.op("Cast", [g.op("Round", [g.op("Mul", [hw, scale])])], to=INT64)
    new = g.op("Min", [g.op("Max", [new, g.ints([1])]), g.ints(list(size))])
    x = g.op(
        "Resize",
        [x, "", "", g.op("Concat", [g.ints([1, 3]), new], axis=0)],
        "resized",
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    spare = g.op("Sub", [g.ints(list(size)), new])
    before = g.op("Div", [spare, g.ints([2])])
    after = g.op("Sub", [spare, before])
    pads = g.op("Concat", [g.ints([0, 0]), before, g.ints([0, 0]), after], axis=0)
    x = g.op("Pad", [x, pads], mode="edge")
    x = g.op("Mul", [g.op("Sub", [x, g.const(INPUT_MEAN)]), g.const(1.0 / INPUT_STD)])

    def at(values: str, i: int) -> str:
        return g.op("Slice", [values, g.ints([i]), g.ints([i + 1])])

    return x, Letterbox(at(before, 0), at(before, 1), at(new, 0), at(new, 1))


def photo_mask(g: GraphBuilder, box: Letterbox, grid: HW) -> str:
    """[1, 1, gh, gw]: 1 where a patch's centre lies on the photo, 0 on the padding."""

    def on(start: str, length: str, count: int) -> str:
        centres = g.const(np.arange(count) * GRID_STRIDE + GRID_STRIDE // 2, "centres", np.int64)
        inside = g.op(
            "And",
            [
                g.op("GreaterOrEqual", [centres, start]),
                g.op("Less", [centres, g.op("Add", [start, length])]),
            ],
        )
        return g.op("Cast", [inside], to=FLOAT)

    rows = g.op("Reshape", [on(box.top, box.height, grid[0]), g.ints([1, 1, grid[0], 1])])
    cols = g.op("Reshape", [on(box.left, box.width, grid[1]), g.ints([1, 1, 1, grid[1]])])
    return g.op("Mul", [rows, cols], "photo_mask")


def _patch_grid(
    g: GraphBuilder,
    net: EfficientNetLite,
    size: HW,
    border: int,
    strides: tuple[int, ...],
    register: Registration | None = None,
) -> tuple[str, HW, Letterbox, str | None]:
    """Patch descriptors [1, D, gh, gw] of the letterboxed photo.

    The network sees the photo with `border` px of its own mirror image around it and the
    border's features are cut off after the neighbourhood pooling: patches at the photo's
    edge are described from real-looking surroundings, not from the network's zero padding.
    With `register`, the input is first moved onto the template (register.py) by the
    shift returned; the box stays where the photo lies in the input before the move.
    """
    x, box = preprocess(g, size)
    shift = None
    if register is not None:
        shift = register.shift(g, x)
        x = register.move(g, x, shift, size[0], "reflect")
    if border:
        x = g.op("Pad", [x, g.ints([0, 0, border, border, 0, 0, border, border])], mode="reflect")
    maps = net.build(g, x, (size[0] + 2 * border, size[1] + 2 * border), strides)
    grid = grid_of(size)
    channels = [net.channels_at(s) for s in strides]
    crops = [border // s for s in strides]
    factors = [s // GRID_STRIDE if s >= GRID_STRIDE else -(GRID_STRIDE // s) for s in strides]
    return PatchMaker().build(g, maps, channels, grid, crops, factors), grid, box, shift


def features_graph(
    net: EfficientNetLite,
    size: int | HW,
    border: int = 0,
    strides: tuple[int, ...] = STRIDES,
    register: Registration | None = None,
) -> onnx.ModelProto:
    """Image -> patch descriptor rows [P, D]: what the memory bank is made of."""
    g = GraphBuilder()
    patches, _, _, _ = _patch_grid(g, net, as_hw(size), border, strides, register)
    g.rename(PatchMaker.rows(g, patches), "patches")
    dim = sum(net.channels_at(s) for s in strides)
    return g.model([IMAGE_INPUT], [("patches", FLOAT, ["P", dim])], f"castline-features-{net.name}")


def inspection_graph(
    net: EfficientNetLite,
    size: int | HW,
    memory: PatchMemory,
    *,
    scorer: Scorer,
    thresholds: tuple[float, float],
    head: Head | None = None,
    border: int = 0,
    strides: tuple[int, ...] = STRIDES,
    metadata: dict[str, str] | None = None,
    register: Registration | None = None,
) -> onnx.ModelProto:
    """The full decision graph (see the module docstring for its outputs)."""
    g = GraphBuilder()
    size = as_hw(size)
    patches, grid, box, shift = _patch_grid(g, net, size, border, strides, register)
    distance = nearest_distance(g, memory, patches, grid)
    smoothed = scorer.smoothed(g, distance, grid)
    on_photo = box
    if shift is not None:  # the photo moved with the input
        dy, dx = (g.op("Slice", [shift, g.ints([i]), g.ints([i + 1])]) for i in (0, 1))
        on_photo = Letterbox(
            g.op("Sub", [box.top, dy]), g.op("Sub", [box.left, dx]), box.height, box.width
        )
    on_part = photo_mask(g, on_photo, grid)
    amap = g.op("Mul", [scorer.anomaly_map(g, smoothed, grid), on_part])
    anomaly = scorer.image_score(g, amap, grid)
    descriptor = Scorer.descriptor(g, amap, anomaly, patches)
    score = head.build(g, descriptor) if head is not None else anomaly

    heat = amap  # the same map, smoothed as the heat map wants it where that differs
    if scorer.heat_sigma != scorer.sigma:
        sharp = scorer.smoothed(g, distance, grid, scorer.heat_sigma)
        heat = g.op("Mul", [scorer.anomaly_map(g, sharp, grid), on_part])
    _heat_map(g, heat, box, size, register, shift)
    g.rename(g.op("Reshape", [g.op("ReduceMax", [heat], keepdims=0), g.ints([1])]), "peak")
    _verdict(g, score, thresholds)
    g.rename(score, "score")
    g.rename(anomaly, "anomaly")
    g.rename(descriptor, "descriptor")
    g.rename(g.op("Reshape", [smoothed, g.ints(list(grid))]), "distances")
    outputs = [
        ("score", FLOAT, [1]),
        ("anomaly", FLOAT, [1]),
        ("verdict", INT64, [1]),
        ("heatmap", FLOAT, ["height", "width"]),
        ("peak", FLOAT, [1]),
        ("descriptor", FLOAT, [1, "K"]),
        ("distances", FLOAT, ["grid_h", "grid_w"]),
    ]
    return g.model([IMAGE_INPUT], outputs, f"castline-inspection-{net.name}", metadata)


def nearest_distance(g: GraphBuilder, memory: PatchMemory, patches: str, grid: HW) -> str:
    """Distance of each patch of [1, D, gh, gw] to its cell's nearest memory row: [P].

    |x - m|^2 = |x|^2 - 2 x.m + |m|^2, the cross products of all cells as one grouped 1x1
    convolution (a group per cell, |m|^2 its bias): on one core ONNX Runtime's convolution
    takes about half the time of a batched MatMul of the same shapes. The memory is one
    named initializer; -2 m and |m|^2 are constant expressions ONNX Runtime folds when it
    loads the graph, so an update replaces the bank alone, of any number of rows.
    """
    cells, _, dim = memory.bank.shape
    gh, gw = grid
    if cells == 1:  # one memory for the whole photo: its one cell is the grid itself
        (ny, nx), (ch, cw) = (1, 1), grid
    else:
        (ny, nx), ch, cw = cells_of(grid, memory.cell), memory.cell, memory.cell
    high, wide = ny * ch, nx * cw
    if (high, wide) != grid:  # pad to whole cells; the padding is cut off again below
        patches = g.op("Pad", [patches, g.ints([0, 0, 0, 0, 0, 0, high - gh, wide - gw])])
    if memory.projection is not None:  # on the map, before the cells are cut: less to move
        axes = memory.projection.axes
        bias = -(memory.projection.centre @ axes)
        patches = g.op(
            "Conv",
            [patches, g.const(axes.T[:, :, None, None], "pca_w"), g.const(bias, "pca_b")],
            kernel_shape=[1, 1],
        )
    x = g.op("Reshape", [patches, g.ints([dim, ny, ch, nx, cw])])
    x = g.op("Transpose", [x], perm=[1, 3, 0, 2, 4])
    rows = g.rename(g.op("Reshape", [x, g.ints([cells, dim, ch * cw])]), MEMORY_ROWS)
    bank = g.named(memory.bank, MEMORY_BANK)
    weights = g.op("Reshape", [g.op("Mul", [bank, g.const(-2.0)]), g.ints([-1, dim, 1, 1])])
    squares = g.op("Reshape", [g.op("ReduceSumSquare", [bank], axes=[2]), g.ints([-1])])
    columns = g.op("Reshape", [rows, g.ints([1, cells * dim, 1, ch * cw])])
    cross = g.op("Conv", [columns, weights, squares], group=cells, kernel_shape=[1, 1])
    cross = g.op("Reshape", [cross, g.ints([cells, -1, ch * cw])])
    # The |x|^2 term does not change which row is nearest: added after the min.
    nearest = g.op("ReduceMin", [cross], axes=[1], keepdims=0)
    own = g.op("ReduceSumSquare", [rows], axes=[1], keepdims=0)
    squared = g.op("Relu", [g.op("Add", [nearest, own])])  # rounding may go below 0
    d = g.op("Reshape", [g.op("Sqrt", [squared]), g.ints([ny, nx, ch, cw])])
    d = g.op("Reshape", [g.op("Transpose", [d], perm=[0, 2, 1, 3]), g.ints([high, wide])])
    d = g.op("Slice", [d, g.ints([0, 0]), g.ints([gh, gw])])
    return g.op("Reshape", [d, g.ints([-1])], "distance")


def _heat_map(
    g: GraphBuilder,
    amap: str,
    box: Letterbox,
    size: HW,
    register: Registration | None = None,
    shift: str | None = None,
) -> None:
    """Output `heatmap`: to the input's pixels (moved back where the input was
    registered), the photo's part cut out, then to the photo's size."""
    image_hw = g.op("Slice", [g.op("Shape", ["image"]), g.ints([0]), g.ints([2])])
    heat = g.op(
        "Resize",
        [amap, "", "", g.ints([1, 1, *size])],
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    if register is not None and shift is not None:
        heat = register.move(g, heat, shift, size[0], "constant")
    starts = g.op("Concat", [box.top, box.left], axis=0)
    ends = g.op("Add", [starts, g.op("Concat", [box.height, box.width], axis=0)])
    heat = g.op("Slice", [heat, starts, ends, g.ints([2, 3])])
    heat = g.op(
        "Resize",
        [heat, "", "", g.op("Concat", [g.ints([1, 1]), image_hw], axis=0)],
        mode="linear",
        coordinate_transformation_mode="half_pixel",
    )
    g.rename(g.op("Reshape", [heat, image_hw]), "heatmap")


def _verdict(g: GraphBuilder, score: str, thresholds: tuple[float, float]) -> None:
    """Output `verdict`: the score against review and NG; no score (NaN) is QUARANTINE."""
    review, ng = thresholds
    above_review = g.op(
        "Cast", [g.op("GreaterOrEqual", [score, g.const([review], "review")])], to=INT64
    )
    above_ng = g.op("Cast", [g.op("GreaterOrEqual", [score, g.const([ng], "ng")])], to=INT64)
    code = g.op("Add", [above_review, above_ng])
    quarantine = g.ints([VERDICT_CODES.index("QUARANTINE")])
    g.rename(g.op("Where", [g.op("IsNaN", [score]), quarantine, code]), "verdict")
