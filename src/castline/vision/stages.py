"""The inspection graph in two stages, for training: each photo's backbone pass once.

Training scores every good photo with several memories (its fold's, a smaller one's).
Through the whole graph each score would pass the photo through the backbone again.
Instead each memory's graph is cut where its values stop depending on the memory: the
photo stage (the photo up to its patch grid, and where it lies in the input) runs once
per photo; the rest (memory, smoothing, usual distance, image score, descriptor) runs
per memory on the values the photo stage kept. Both stages are that graph's own nodes,
so every score is the one the line's graph gives for the photo (tests compare).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from castline.vision.graph import IMAGE_INPUT
from castline.vision.model import session
from castline.vision.patches import PATCH_GRID

Seen = dict[str, np.ndarray]  # one photo's values from the photo stage, by graph name


def _needed(graph: onnx.GraphProto, known: set[str], outputs: Iterable[str]) -> list[int]:
    """Indices (in graph order) of the nodes that compute `outputs` from `known` values."""
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output}
    kept: set[int] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in known or name not in producer or producer[name] in kept:
            continue
        kept.add(producer[name])
        stack.extend(n for n in graph.node[producer[name]].input if n)
    return sorted(kept)


def part_of(
    model: onnx.ModelProto,
    inputs: Sequence[str],
    outputs: Sequence[str],
    types: dict[str, int] | None = None,
) -> onnx.ModelProto:
    """The nodes of `model` that compute `outputs` from `inputs`, as a graph of their own
    (only the inputs they read become its inputs). `types`: element type by value name,
    where known (else found by shape inference)."""
    graph = model.graph
    nodes = [graph.node[i] for i in _needed(graph, set(inputs), outputs)]
    read = {name for node in nodes for name in node.input}
    types = types or _types(model)
    part = helper.make_graph(
        nodes,
        f"{graph.name}-part",
        [helper.make_tensor_value_info(n, types[n], None) for n in inputs if n in read],
        [helper.make_tensor_value_info(n, types[n], None) for n in outputs],
        [t for t in graph.initializer if t.name in read],
    )
    cut = helper.make_model(part, opset_imports=model.opset_import)
    cut.ir_version = model.ir_version
    return cut


def _types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value of the graph (shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(model).graph
    return {
        info.name: info.type.tensor_type.elem_type
        for info in [*inferred.input, *inferred.value_info, *inferred.output]
    }


@dataclass
class Stage:
    """One stage as an ONNX Runtime session."""

    inputs: list[str]
    outputs: list[str]
    _session: ort.InferenceSession

    @classmethod
    def of(
        cls,
        model: onnx.ModelProto,
        inputs: Sequence[str],
        outputs: Sequence[str],
        threads: int | None,
        types: dict[str, int] | None = None,
    ) -> Stage:
        cut = part_of(model, inputs, outputs, types)
        run = session(cut.SerializeToString(), threads, arena=False)
        return cls([i.name for i in cut.graph.input], list(outputs), run)

    def __call__(self, seen: Seen) -> Seen:
        values = self._session.run(self.outputs, {n: seen[n] for n in self.inputs})
        return dict(zip(self.outputs, values, strict=True))


@dataclass
class Stages:
    """Where training cuts the graphs it builds: the values the photo stage hands on."""

    handed: list[str]  # names of the values the memory stages read
    threads: int | None
    types: dict[str, int]  # of every graph value: the same names in every memory's graph

    @classmethod
    def of(cls, model: onnx.ModelProto, outputs: Sequence[str], threads: int | None) -> Stages:
        """The cut of `model` (any memory's graph) for the outputs training reads."""
        graph = model.graph
        photo = _needed(graph, {IMAGE_INPUT.name}, [PATCH_GRID])
        made = {IMAGE_INPUT.name} | {name for i in photo for name in graph.node[i].output}
        rest = _needed(graph, made, outputs)
        read = {name for i in rest for name in graph.node[i].input}
        # The patch grid first: the memory's rows are made from it as well.
        handed = [PATCH_GRID, *sorted(read & made - {PATCH_GRID})]
        return cls(handed, threads, _types(model))

    def photo(self, model: onnx.ModelProto) -> Stage:
        """Photo -> the values handed on (any memory's graph: this part is the same)."""
        return Stage.of(model, [IMAGE_INPUT.name], self.handed, self.threads, self.types)

    def memory(self, model: onnx.ModelProto, outputs: Sequence[str]) -> Stage:
        """The values handed on -> `outputs` of one memory's graph."""
        return Stage.of(model, self.handed, outputs, self.threads, self.types)


def patch_rows(seen: Seen) -> np.ndarray:
    """[P, D]: the photo's patch descriptors, one row per grid position (row-major), as
    the features graph gives them."""
    grid = seen[PATCH_GRID]
    return grid[0].reshape(grid.shape[1], -1).T
