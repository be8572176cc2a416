"""An int8 backbone: the same EfficientNet-Lite, its convolutions in 8-bit integers.

Training may quantise the backbone once, before anything else looks at a photo: static
QDQ quantisation (ONNX Runtime's quantiser) with per-channel int8 weights and uint8
activations whose ranges are measured on the model's own training photos. The quantised
backbone then takes the float one's place everywhere: the patches the memory learns
from, the out-of-fold scores the thresholds are set on and the final model file all come
from it, so there is still one inference path and the file decides.

Only the convolutions, their ReLU6 (absorbed into the activations' range) and the
residual additions are quantised, all but the stem (the first convolution, on the photo
itself: 3 input channels, little time, much of the error in int8). Everything after the
backbone stays float: the patch pooling, the projection, the nearest-neighbour distances
to the memory (a squared distance is a small difference of large numbers, which 8 bits
would drown) and the heat map.

ONNX Runtime runs the QDQ pairs as fused integer convolutions; on x86 they are fastest
with VNNI (AVX512-VNNI or AVX-VNNI). Without VNNI, its uint8 x int8 kernels add pairs of
products in 16 bits, which full 8-bit weights can overflow: the weights keep 7 bits
(`reduce_range`), so the same model file is exact on any CPU.
Quantisation is the default (`TrainConfig.quantize`; `castline vision train
--no-quantize` keeps the float backbone): on 400 impeller photos it was as accurate as
float and a third faster (docs/vision.md).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from castline.vision.backbone import EfficientNetLite
from castline.vision.graph import IMAGE_INPUT, preprocess
from castline.vision.graph_builder import FLOAT, GraphBuilder
from castline.vision.patches import HW, as_hw

CALIBRATION_PHOTOS = 64  # training photos whose activations set the uint8 ranges
INPUT = "x"  # the fragment's input: the normalised, bordered model input [1, 3, H, W]
PREFIX = "int8_"  # names of the fragment inside a larger graph


class QuantisedBackbone(EfficientNetLite):
    """An EfficientNet-Lite whose `build` splices a quantised fragment (normalised input ->
    feature maps) into the graph in place of the float convolutions; names, channels and
    block structure are the float network's."""

    def __init__(
        self, net: EfficientNetLite, fragment: onnx.ModelProto, size: HW, strides: Sequence[int]
    ) -> None:
        super().__init__(net.state, net.name)
        self.fragment = fragment  # input INPUT, one output map per stride in `strides`
        self.size = size  # the input it was built for, border included
        self.strides = tuple(strides)

    def build(self, g: GraphBuilder, x: str, size: HW, strides: tuple[int, ...]) -> list[str]:
        """Splice the fragment into `g` with `x` as its input; the maps at `strides`."""
        if tuple(size) != tuple(self.size) or tuple(strides) != self.strides:
            raise ValueError(
                f"the int8 backbone was built for {self.size} px at strides {self.strides}, "
                f"not {size} px at {tuple(strides)}"
            )
        prefix = g.fresh(PREFIX) + "/"

        def renamed(name: str) -> str:
            if not name:
                return name  # an omitted optional input
            return x if name == INPUT else prefix + name

        for tensor in self.fragment.graph.initializer:
            copy = onnx.TensorProto()
            copy.CopyFrom(tensor)
            copy.name = renamed(tensor.name)
            g.initializers.append(copy)
        for node in self.fragment.graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = prefix + (node.name or node.output[0])
            copy.input[:] = [renamed(n) for n in node.input]
            copy.output[:] = [renamed(n) for n in node.output]
            g.nodes.append(copy)
        return [renamed(o.name) for o in self.fragment.graph.output]


def backbone_fragment(net: EfficientNetLite, size: HW, strides: tuple[int, ...]) -> Any:
    """The float backbone alone as a model: INPUT [1, 3, h, w] -> map_<stride>."""
    g = GraphBuilder()
    maps = net.build(g, INPUT, size, strides)
    outputs = []
    for stride, name in zip(strides, maps, strict=True):
        g.rename(name, f"map_{stride}")
        outputs.append((f"map_{stride}", FLOAT, [1, net.channels_at(stride), None, None]))
    source = helper.make_tensor_value_info(INPUT, FLOAT, [1, 3, *size])
    model = g.model([source], outputs, f"castline-backbone-{net.name}")
    for node in model.graph.node:  # names, so the quantiser can be told what to skip
        node.name = node.output[0]
    return model


def stem(fragment: onnx.ModelProto) -> list[str]:
    """The names of the stem's convolution and its ReLU6: they stay float. They read
    the photo itself; in int8 they cost the features the most accuracy for the least
    time (3 input channels)."""
    first = next(n for n in fragment.graph.node if n.op_type == "Conv")
    after = [n.name for n in fragment.graph.node if first.output[0] in n.input]
    return [first.name, *after]


def input_graph(size: HW, border: int) -> onnx.ModelProto:
    """Photo -> the backbone's input as the inspection graph makes it (letterboxed,
    normalised, mirrored border): what the activation ranges are measured on."""
    g = GraphBuilder()
    x, _ = preprocess(g, size)
    if border:
        x = g.op("Pad", [x, g.ints([0, 0, border, border, 0, 0, border, border])], mode="reflect")
    g.rename(x, INPUT)
    bordered = [1, 3, size[0] + 2 * border, size[1] + 2 * border]
    return g.model([IMAGE_INPUT], [(INPUT, FLOAT, bordered)], "castline-input")


def network_inputs(photos: Sequence[np.ndarray], size: HW, border: int) -> list[np.ndarray]:
    """The backbone's input for each uint8 RGB photo."""
    import onnxruntime as ort

    prepare = ort.InferenceSession(
        input_graph(size, border).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return [prepare.run([INPUT], {"image": photo})[0] for photo in photos]


@contextmanager
def _quiet() -> Iterator[None]:
    """The quantiser advises on the root logger at WARNING (pre-processing that this
    graph does not need); keep it off the user's terminal while it runs."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)


class _Inputs:
    """Calibration data for ONNX Runtime's quantiser: one model input per photo."""

    def __init__(self, inputs: Sequence[np.ndarray]) -> None:
        self._left = iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._left, None)
        return None if x is None else {INPUT: x}


def quantise(
    net: EfficientNetLite, size: HW, strides: tuple[int, ...], inputs: Sequence[np.ndarray]
) -> QuantisedBackbone:
    """The backbone with int8 convolutions, activation ranges from `inputs` (normalised
    model inputs [1, 3, h, w] of training photos, border included)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not inputs:
        raise ValueError("quantising the backbone needs at least one training photo")
    reader = type("Reader", (_Inputs, CalibrationDataReader), {})(inputs)
    with tempfile.TemporaryDirectory(prefix="castline-int8-") as tmp, _quiet():
        # From a file: given a ModelProto, the quantiser moves its arrays out of it.
        source, out = Path(tmp) / "backbone.onnx", Path(tmp) / "backbone-int8.onnx"
        fragment = backbone_fragment(net, size, strides)
        onnx.save(fragment, source)
        quantize_static(
            source,
            out,
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv", "Clip", "Add"],
            nodes_to_exclude=stem(fragment),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            reduce_range=True,  # 7-bit weights: no saturation on CPUs without VNNI
            extra_options={"CalibTensorRangeSymmetric": False},
        )
        quantised = onnx.load(out)
    return QuantisedBackbone(net, quantised, size, strides)


def quantised_for(
    net: EfficientNetLite,
    size: int | HW,
    border: int,
    strides: Sequence[int],
    photos: Sequence[Path],
) -> QuantisedBackbone:
    """The int8 backbone for a model input of `size` with a `border`, its activation ranges
    measured on the first `CALIBRATION_PHOTOS` of the training photos."""
    from castline.vision.images import read_image

    images = [read_image(p) for p in photos[:CALIBRATION_PHOTOS]]
    h, w = as_hw(size)
    inputs = network_inputs(images, (h, w), border)
    return quantise(net, (h + 2 * border, w + 2 * border), tuple(strides), inputs)
