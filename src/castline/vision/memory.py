"""The memory of normal patches and nearest-neighbour scoring against it.

Training keeps a greedy coreset of the normal patch descriptors: the subset that covers
the others best (farthest-point sampling), so a few thousand rows stand in for millions.
Scoring a patch is its Euclidean distance to the nearest memory row, computed inside the
ONNX graph as |x|^2 - 2 x.M^T + |M|^2 with one MatMul and a ReduceMin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from castline.vision.graph_builder import GraphBuilder


def greedy_coreset(
    rows: np.ndarray,
    size: int,
    *,
    projection_dim: int = 32,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """Indices of `size` rows chosen by farthest-point sampling.

    Distances are measured after a random projection: Johnson-Lindenstrauss keeps them
    close enough for choosing, at a fraction of the cost.
    """
    n = len(rows)
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    dim = rows.shape[1]
    if projection_dim < dim:
        projection = rng.normal(size=(dim, projection_dim)).astype(np.float32)
        projection /= np.sqrt(projection_dim)
        points = rows @ projection
    else:
        points = rows.astype(np.float32, copy=False)
    squares = np.einsum("ij,ij->i", points, points)
    chosen = np.empty(size, dtype=np.int64)
    chosen[0] = int(rng.integers(n))
    nearest = np.full(n, np.inf, dtype=np.float32)
    for i in tqdm(range(size), desc="coreset", unit="row", disable=not progress, leave=False):
        if i:
            chosen[i] = int(np.argmax(nearest))
        centre = points[chosen[i]]
        dist = squares - 2.0 * (points @ centre) + squares[chosen[i]]
        np.minimum(nearest, dist, out=nearest)
    return chosen


@dataclass(frozen=True)
class PatchMemory:
    """Memory bank [N, D] of normal patch descriptors; scores patches in the graph."""

    bank: np.ndarray

    def build(self, g: GraphBuilder, rows: str) -> str:
        """Distance of each patch row [P, D] to its nearest memory row: [P]."""
        bank = self.bank.astype(np.float32)
        cross = g.op("MatMul", [rows, g.const(-2.0 * bank.T, "memory_t")], "cross")
        # The |x|^2 term does not change which row is nearest: add it after the min.
        nearest = g.op(
            "ReduceMin",
            [g.op("Add", [cross, g.const((bank * bank).sum(axis=1)[None, :], "memory_sq")])],
            axes=[1],
            keepdims=0,
        )
        own = g.op("ReduceSumSquare", [rows], axes=[1], keepdims=0)
        squared = g.op("Relu", [g.op("Add", [nearest, own])])  # rounding may go below 0
        return g.op("Sqrt", [squared], "distance")


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, round(2 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k1 = np.exp(-(x**2) / (2 * sigma**2))
    k2 = np.outer(k1, k1)
    return (k2 / k2.sum()).astype(np.float32)


@dataclass(frozen=True)
class Scorer:
    """Patch distances -> smoothed anomaly map, image score and a descriptor for a head."""

    sigma: float = 1.0  # smoothing in patch units: one noisy patch is not a defect
    # Share of each side of the photo whose patches do not count towards the image score:
    # the network's padding makes edge features unreliable, and the part sits inside
    # (the usual resize-and-centre-crop of PatchCore drops a similar band).
    margin: float = 0.1

    def anomaly_map(self, g: GraphBuilder, distance: str, grid: int) -> str:
        """[P] -> smoothed [1, 1, grid, grid], zero in the margin band."""
        m = g.op("Reshape", [distance, g.ints([1, 1, grid, grid])])
        if self.sigma > 0:
            kernel = gaussian_kernel(self.sigma)
            r = kernel.shape[0] // 2
            padded = g.op("Pad", [m, g.ints([0, 0, r, r, 0, 0, r, r])], mode="reflect")
            m = g.op(
                "Conv",
                [padded, g.const(kernel[None, None], "gauss")],
                kernel_shape=list(kernel.shape),
            )
        return g.op("Mul", [m, g.const(self.inside(grid)[None, None], "inside")])

    def inside(self, grid: int) -> np.ndarray:
        """1 for patches that count, 0 in the margin band."""
        mask = np.zeros((grid, grid), dtype=np.float32)
        m = min(round(self.margin * grid), (grid - 1) // 2)
        mask[m : grid - m, m : grid - m] = 1.0
        return mask

    @staticmethod
    def image_score(g: GraphBuilder, anomaly_map: str) -> str:
        """The worst place on the part decides: max of the map, shape [1]."""
        return g.op("Reshape", [g.op("ReduceMax", [anomaly_map], keepdims=0), g.ints([1])])

    @staticmethod
    def descriptor(g: GraphBuilder, anomaly_map: str, score: str, patches: str) -> str:
        """Image-level features for a supervised head: map statistics + pooled patches."""
        flat = g.op("Reshape", [anomaly_map, g.ints([1, -1])])
        size = g.op("Shape", [flat])
        k = g.op(
            "Max",
            [
                g.op("Div", [g.op("Slice", [size, g.ints([1]), g.ints([2])]), g.ints([100])]),
                g.ints([1]),
            ],
        )
        top, _ = g.op_multi("TopK", [flat, k], 2, axis=1)
        top_mean = g.op("ReduceMean", [top], axes=[1], keepdims=1)
        mean = g.op("ReduceMean", [flat], axes=[1], keepdims=1)
        pooled = g.op("Flatten", [g.op("GlobalAveragePool", [patches])])
        return g.op(
            "Concat",
            [g.op("Reshape", [score, g.ints([1, 1])]), top_mean, mean, pooled],
            "descriptor",
            axis=1,
        )
