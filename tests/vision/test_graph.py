"""The decision graph's nearest-neighbour step and where an update finds the memory."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from castline.vision.graph import MEMORY_BANK, MEMORY_ROWS, nearest_distance
from castline.vision.graph_builder import FLOAT, GraphBuilder
from castline.vision.memory import PatchMemory, Projection
from castline.vision.model import session
from castline.vision.patches import HW
from castline.vision.update import UpdateError, memory_of, set_memory


def distance_graph(memory: PatchMemory, dim: int, grid: HW) -> onnx.ModelProto:
    g = GraphBuilder()
    g.rename(nearest_distance(g, memory, "patches", grid), "distance")
    inputs = [helper.make_tensor_value_info("patches", FLOAT, [1, dim, *grid])]
    return g.model(inputs, [("distance", FLOAT, [grid[0] * grid[1]])], "distance")


def brute_force(patches: np.ndarray, memory: PatchMemory, grid: HW) -> np.ndarray:
    """Each patch's distance to the nearest row of its own cell's bank, in numpy."""
    rows = patches[0].reshape(patches.shape[1], -1).T  # [P, D], row-major positions
    if memory.projection is not None:
        rows = memory.projection(rows)
    (gh, gw), across = grid, -(-grid[1] // memory.cell)
    want = np.empty(gh * gw)
    for y in range(gh):
        for x in range(gw):
            bank = memory.bank[(y // memory.cell) * across + x // memory.cell]
            want[y * gw + x] = np.linalg.norm(bank - rows[y * gw + x], axis=1).min()
    return want


@pytest.mark.parametrize(
    ("reduce", "grid", "cell"),
    [(False, (7, 7), 3), (True, (7, 7), 3), (False, (5, 11), 3), (False, (5, 11), 11)],
)
def test_each_patch_meets_its_own_cell_memory(reduce: bool, grid: HW, cell: int) -> None:
    rng = np.random.default_rng(5)
    dim = 6  # 7, 5 and 11 are no multiples of 3: the graph pads and crops; one cell: neither
    cells = (-(-grid[0] // cell)) * (-(-grid[1] // cell))
    projection = Projection.fit(rng.normal(size=(50, dim)), 4) if reduce else None
    width = 4 if reduce else dim
    memory = PatchMemory(rng.normal(size=(cells, 5, width)).astype(np.float32), cell, projection)
    patches = rng.normal(size=(1, dim, *grid)).astype(np.float32)
    graph = distance_graph(memory, dim, grid)
    got = session(graph.SerializeToString(), 1).run(["distance"], {"patches": patches})[0]
    np.testing.assert_allclose(got, brute_force(patches, memory, grid), rtol=1e-4, atol=1e-4)


def test_an_update_replaces_the_named_bank_with_one_of_more_rows() -> None:
    rng = np.random.default_rng(6)
    grid, cell, dim = (8, 8), 4, 5
    memory = PatchMemory(rng.normal(size=(4, 3, dim)).astype(np.float32), cell)
    graph = distance_graph(memory, dim, grid)
    assert memory_of(graph) == MEMORY_BANK
    assert any(MEMORY_ROWS in node.output for node in graph.graph.node)
    grown = np.concatenate([memory.bank, rng.normal(size=(4, 6, dim))], axis=1).astype(np.float32)
    set_memory(graph, grown)
    patches = rng.normal(size=(1, dim, *grid)).astype(np.float32)
    got = session(graph.SerializeToString(), 1).run(["distance"], {"patches": patches})[0]
    want = brute_force(patches, PatchMemory(grown, cell), grid)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_graph_without_the_named_bank_is_not_updated() -> None:
    g = GraphBuilder()
    g.rename(g.op("Relu", ["x"]), "y")
    inputs = [helper.make_tensor_value_info("x", FLOAT, [1])]
    graph = g.model(inputs, [("y", FLOAT, [1])], "no-memory")
    with pytest.raises(UpdateError, match="retrain"):
        memory_of(graph)
