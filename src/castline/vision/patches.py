"""Patch features: local neighbourhoods of two mid-level feature maps, side by side.

Each stride-8 position gets a descriptor of its 3x3 neighbourhood at stride 8 and the
matching (upsampled) neighbourhood at stride 16: mid-level features describe texture
and local shape, not the object class, and the neighbourhood makes them tolerant of
small misalignment (the PatchCore recipe).
"""

from __future__ import annotations

from dataclasses import dataclass

from castline.vision.graph_builder import GraphBuilder

# The patch grid's name in every graph: training cuts the graph there (stages.py).
PATCH_GRID = "patch_grid"
GRID_STRIDE = 8  # one patch per 8 x 8 input pixels

# (height, width): of the model input in pixels, or of its patch grid in patches. The
# input is shaped like the photos it learnt from (train.py), so an oblong camera's
# photo fills it instead of leaving most of a square to padding.
HW = tuple[int, int]


def as_hw(size: int | HW) -> HW:
    """A square side, or (height, width) as it is."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def grid_of(size: int | HW) -> HW:
    """The patch grid of a model input."""
    h, w = as_hw(size)
    return -(-h // GRID_STRIDE), -(-w // GRID_STRIDE)


@dataclass(frozen=True)
class PatchMaker:
    """Turns feature maps into a grid of patch descriptors (graph part)."""

    neighbourhood: int = 3

    def build(
        self,
        g: GraphBuilder,
        maps: list[str],
        channels: list[int],
        grid: HW,
        crops: list[int] | None = None,
        factors: list[int] | None = None,
    ) -> str:
        """Aggregated, upsampled and concatenated maps: [1, D, grid h, grid w].

        `crops`: positions cut from each side of each map after pooling (the mirrored
        border around the photo), so edge patches pool real-looking neighbours.
        `factors`: each map's stride over the grid's; negative for finer maps, which are
        averaged down (-2: 2 x 2 positions per patch). Default: the first map is the grid.
        """
        k = self.neighbourhood
        pooled = []
        for feature, crop in zip(maps, crops or [0] * len(maps), strict=True):
            y = g.op(
                "AveragePool",
                [feature],
                "aggregate",
                kernel_shape=[k, k],
                pads=[k // 2] * 4,
                strides=[1, 1],
                count_include_pad=0,
            )
            if crop:
                y = g.op("Slice", [y, g.ints([crop, crop]), g.ints([-crop, -crop]), g.ints([2, 3])])
            pooled.append(y)
        factors = factors or [1] + [2] * (len(maps) - 1)
        upsampled = []
        for y, c, factor in zip(pooled, channels, factors, strict=True):
            if factor < 0:  # finer than the grid: the mean over each patch
                y = g.op("AveragePool", [y], kernel_shape=[-factor] * 2, strides=[-factor] * 2)
            elif factor > 1:
                y = g.op(
                    "Resize",
                    [y, "", "", g.ints([1, c, *grid])],
                    "upsample",
                    mode="linear",
                    coordinate_transformation_mode="half_pixel",
                )
            upsampled.append(y)
        return g.rename(g.op("Concat", upsampled, "patches", axis=1), PATCH_GRID)

    @staticmethod
    def rows(g: GraphBuilder, patches: str) -> str:
        """[1, D, h, w] -> [h*w, D]: one row per patch position."""
        flat = g.op("Reshape", [patches, g.ints([0, 0, -1])])
        return g.op("Squeeze", [g.op("Transpose", [flat], perm=[0, 2, 1]), g.ints([0])])
