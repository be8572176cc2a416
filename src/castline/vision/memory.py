"""The memory of normal patches and nearest-neighbour scoring against it.

The patch grid is cut into cells; for each cell training keeps a greedy coreset of the
normal patch descriptors seen there: the subset that covers the others best
(farthest-point sampling), so a thousand rows stand in for tens of thousands. Scoring a
patch is its Euclidean distance to the nearest row of its cell's memory, computed inside
the ONNX graph (`graph.nearest_distance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from castline.vision.graph_builder import GraphBuilder
from castline.vision.patches import HW


def greedy_coreset(
    rows: np.ndarray,
    size: int,
    *,
    projection_dim: int = 32,
    seed: int = 0,
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
        points = (rows @ projection).astype(np.float32, copy=False)
    else:
        points = rows.astype(np.float32, copy=False)
    squares = np.einsum("ij,ij->i", points, points)
    # Coordinates as rows: one centre against all points is then a vector-matrix product,
    # a third faster than the matrix-vector one; the loop allocates nothing.
    across = np.ascontiguousarray(points.T)
    chosen = np.empty(size, dtype=np.int64)
    chosen[0] = int(rng.integers(n))
    nearest = np.full(n, np.inf, dtype=np.float32)
    dist = np.empty(n, dtype=np.float32)
    for i in range(size):
        if i:
            chosen[i] = nearest.argmax()
        centre = chosen[i]
        np.dot(across[:, centre] * np.float32(-2.0), across, out=dist)
        dist += squares
        dist += squares[centre]  # |p - c|^2 = |p|^2 - 2 p.c + |c|^2
        np.minimum(nearest, dist, out=nearest)
    return chosen


def cells_of(grid: HW, cell: int) -> HW:
    """Cells down and across a patch grid (the last ones may be cut by its edge)."""
    return -(-grid[0] // cell), -(-grid[1] // cell)


def cell_windows(grid: HW, cell: int, reach: int) -> list[np.ndarray]:
    """Per cell (row-major), the patch positions (row-major) its memory learns from.

    A cell's own `cell` x `cell` patches and a band of `reach` patches around them: a part
    that sits a little off still finds its normal look in the memory.
    """
    (ny, nx), (gh, gw) = cells_of(grid, cell), grid
    windows = []
    for top in range(0, ny * cell, cell):
        for left in range(0, nx * cell, cell):
            ys = np.arange(max(0, top - reach), min(gh, top + cell + reach))
            xs = np.arange(max(0, left - reach), min(gw, left + cell + reach))
            windows.append((ys[:, None] * gw + xs[None, :]).ravel())
    return windows


@dataclass(frozen=True)
class Projection:
    """Descriptors reduced to their main directions of variation among good patches (PCA).

    The per-cell banks are read in full for every photo: fewer dimensions make them
    smaller and the scoring faster, while the distances between patches barely change.
    """

    centre: np.ndarray  # [D]
    axes: np.ndarray  # [D, d]

    @classmethod
    def fit(cls, rows: np.ndarray, dims: int) -> Projection:
        centre = rows.mean(axis=0, dtype=np.float64)
        centred = rows - centre
        # Eigenvectors of the small D x D covariance: an SVD of the rows needs far more memory.
        _, vectors = np.linalg.eigh(centred.T @ centred)
        return cls(centre.astype(np.float32), vectors[:, ::-1][:, :dims].astype(np.float32))

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        return ((rows - self.centre) @ self.axes).astype(np.float32)


@dataclass(frozen=True)
class PatchMemory:
    """Memory of normal patch descriptors, one bank per cell of the patch grid.

    `bank` is [cells, rows, D]; a patch is compared only with the bank of the cell it
    lies in. Where a part sits consistently, this is much sharper than one bank for the
    whole photo (a normal-looking patch in the wrong place is anomalous) and cheaper (each
    patch meets `rows`, not cells x rows). One cell as large as the grid is the plain
    PatchCore memory.
    """

    bank: np.ndarray
    cell: int  # side of a cell in patches
    projection: Projection | None = None  # applied to patches before the bank


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
    # [gh, gw]: the mean smoothed distance of good photos (not in the memory) at each
    # place. Maps are divided by it: a patch is judged against how far good parts usually
    # are there (busy background, lighting), so one noisy place does not decide.
    usual: np.ndarray | None = None
    # [gh, gw]: 1 where the part lies (part.py), 0 on the background around it, which
    # is not inspected; None: every place counts.
    part: np.ndarray | None = None
    top: int = 1  # patches whose mean is the image score (1: the map's maximum)
    # The heat map's own smoothing: half a patch. The score wants a defect to cover
    # several patches; a person wants the region tight around it (on the localisation
    # benchmark the casting's rim defects 0.888 with the score's smoothing, 0.914 with
    # none; half a patch keeps the rim and the inside alike: docs/vision.md).
    heat_sigma: float = 0.5

    def smoothed(self, g: GraphBuilder, distance: str, grid: HW, sigma: float | None = None) -> str:
        """[P] -> [1, 1, gh, gw] smoothed by `sigma` (patches), the scorer's by default."""
        sigma = self.sigma if sigma is None else sigma
        m = g.op("Reshape", [distance, g.ints([1, 1, *grid])])
        if sigma <= 0:
            return m
        kernel = gaussian_kernel(sigma)
        r = kernel.shape[0] // 2
        padded = g.op("Pad", [m, g.ints([0, 0, r, r, 0, 0, r, r])], mode="reflect")
        return g.op(
            "Conv", [padded, g.const(kernel[None, None], "gauss")], kernel_shape=list(kernel.shape)
        )

    def anomaly_map(self, g: GraphBuilder, smoothed: str, grid: HW) -> str:
        """Smoothed map -> anomaly map: relative to the usual distance, zero in the band."""
        weight = self.inside(grid)
        if self.usual is not None:
            weight = weight / self.usual
        return g.op("Mul", [smoothed, g.const(weight[None, None], "weight")])

    def inside(self, grid: HW) -> np.ndarray:
        """1 for patches that count, 0 in the margin band and off the part."""
        gh, gw = grid
        mask = np.zeros(grid, dtype=np.float32)
        my, mx = (min(round(self.margin * side), (side - 1) // 2) for side in grid)
        mask[my : gh - my, mx : gw - mx] = 1.0
        return mask if self.part is None else mask * self.part

    def image_score(self, g: GraphBuilder, anomaly_map: str, grid: HW) -> str:
        """The worst places on the part decide: the mean of the map's `top` highest
        patches, shape [1]. A few patches rather than one: a single odd patch of a good
        part (a glint) weighs less, while a defect covers several after the smoothing."""
        if self.top <= 1:
            return g.op("Reshape", [g.op("ReduceMax", [anomaly_map], keepdims=0), g.ints([1])])
        flat = g.op("Reshape", [anomaly_map, g.ints([1, -1])])
        worst, _ = g.op_multi("TopK", [flat, g.ints([min(self.top, grid[0] * grid[1])])], 2, axis=1)
        return g.op("Reshape", [g.op("ReduceMean", [worst], axes=[1], keepdims=0), g.ints([1])])

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
