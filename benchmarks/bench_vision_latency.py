"""Latency of the inspection graph on one core: float and int8 backbone side by side.

The graphs run one after the other on the same 300x300 photos in one process, with a
fixed numpy workload (`bench_vision.reference_ratio`'s) after each round, so a shared
machine's load falls on all of them alike: each graph's p99 is printed beside the
reference workload's p99 of the same run, and the load average before and after.
Memory banks are random of the trained size (the cost does not depend on their values);
the int8 backbone's activation ranges are measured on good photos of the "train" split,
as training does, and the time that quantisation step takes is printed.

    taskset -c 1 .venv/bin/python benchmarks/bench_vision_latency.py [--runs 2000]
        [--backbones lite0 lite1] [--rows 1024 512]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from castline.datasets import casting_root, images, split_of
from castline.vision.backbone import EfficientNetLite
from castline.vision.graph import inspection_graph
from castline.vision.images import read_image
from castline.vision.memory import PatchMemory, Projection, Scorer
from castline.vision.model import InspectionModel
from castline.vision.quantize import quantised_for
from castline.vision.train import NATIVE_SIZE, TrainConfig

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
UNSET = {"version": "latency", "thresholds": {"review": 1e9, "ng": 1e9, "region": 1e9}}


def model(net: EfficientNetLite, size: int, rows: int, rng: np.random.Generator) -> InspectionModel:
    """The default decision graph (cells, 96 dimensions, mirrored border, top-10 score)
    with a random memory of `rows` rows per cell."""
    config = TrainConfig()
    grid = size // 8
    cells = (-(-grid // config.auto_cell)) ** 2
    dim = sum(net.channels_at(s) for s in config.strides)
    axes = rng.normal(size=(dim, config.dims)).astype(np.float32)
    memory = PatchMemory(
        rng.normal(size=(cells, rows, config.dims)).astype(np.float32),
        config.auto_cell,
        Projection(np.zeros(dim, np.float32), axes),
    )
    scorer = Scorer(config.sigma, 0.0, np.ones((grid, grid), np.float32), top=config.top_patches)
    graph = inspection_graph(
        net, size, memory, scorer=scorer, thresholds=(1e9, 1e9), border=config.border
    )
    return InspectionModel(graph.SerializeToString(), UNSET, threads=1)


def reference_round(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """bench_vision.reference_ratio's workload, once: (new a, milliseconds)."""
    started = time.perf_counter()
    for _ in range(8):
        a = np.tanh(a @ b)
    return a, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="inspections per graph")
    parser.add_argument("--backbones", nargs="+", default=["lite0"], choices=list(NATIVE_SIZE))
    parser.add_argument("--rows", type=int, nargs="+", default=[1024], help="memory rows/cell")
    args = parser.parse_args()
    root = casting_root(Path(os.environ.get("CASTLINE_DATA", DATA)))
    if root is None:
        sys.exit("casting photographs not found: set CASTLINE_DATA to the shared data folder")
    good = images(root / "ok_front")
    val = [p for p in good if split_of(p.read_bytes()) == "val"]
    train = [p for p in good if split_of(p.read_bytes()) == "train"]
    photos = [read_image(p) for p in val[:20]]
    rng = np.random.default_rng(0)
    config = TrainConfig()
    models: dict[str, InspectionModel] = {}
    for backbone in args.backbones:
        net, size = EfficientNetLite.load(backbone), NATIVE_SIZE[backbone]
        started = time.perf_counter()
        int8 = quantised_for(net, size, config.border, config.strides, train)
        print(f"{backbone}: int8 backbone quantised in {time.perf_counter() - started:.1f} s")
        for rows in args.rows:
            models[f"{backbone} {size} px, {rows} rows, float"] = model(net, size, rows, rng)
            models[f"{backbone} {size} px, {rows} rows, int8"] = model(int8, size, rows, rng)
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times: dict[str, list[float]] = {name: [] for name in models}
    reference: list[float] = []
    a, b = rng.normal(size=(256, 256)), rng.normal(size=(256, 256))
    for m in models.values():
        for photo in photos[:3]:
            m.inspect(photo)  # warm-up
    load_before = os.getloadavg()
    for i in range(args.runs):
        for name, m in models.items():
            started = time.perf_counter()
            m.inspect(photos[i % len(photos)])
            times[name].append((time.perf_counter() - started) * 1000)
        a, took = reference_round(a, b)
        reference.append(took)
    load_after = os.getloadavg()
    r50, r99 = np.percentile(reference, 50), np.percentile(reference, 99)
    shape = "x".join(str(v) for v in photos[0].shape[:2])
    print(
        f"{args.runs} inspections per graph of {shape} photos, one thread, interleaved; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    for name, values in times.items():
        p50, p99 = np.percentile(values, 50), np.percentile(values, 99)
        print(
            f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms (p99/p50 {p99 / p50:.2f}; "
            f"reference p99 {r99:.2f} ms; p50 in reference p50s {p50 / r50:.2f})"
        )
    print(f"reference workload: p50 {r50:.2f} ms, p99 {r99:.2f} ms (p99/p50 {r99 / r50:.2f})")
    print(f"peak memory (maxrss) with {len(models)} graphs loaded: {loaded_mb:.0f} MB")


if __name__ == "__main__":
    main()
