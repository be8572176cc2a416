"""Latency of the inspection graph, before and after the border and for Lite1, interleaved.

The graphs run one after the other on the same photos in one process, with a fixed
numpy workload between rounds, so a shared machine's load falls on all of them alike.
Memory banks are random of the trained size (the cost does not depend on their values).

    taskset -c 1 .venv/bin/python benchmarks/bench_vision_latency.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import os
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

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
UNSET = {"version": "latency", "thresholds": {"review": 1e9, "ng": 1e9, "region": 1e9}}


def model(backbone: str, size: int, border: int, rng: np.random.Generator) -> InspectionModel:
    net = EfficientNetLite.load(backbone)
    grid = size // 8
    cells = (-(-grid // 4)) ** 2
    axes = rng.normal(size=(152, 96)).astype(np.float32)
    memory = PatchMemory(
        rng.normal(size=(cells, 1024, 96)).astype(np.float32),
        4,
        Projection(np.zeros(152, np.float32), axes),
    )
    scorer = Scorer(1.0, 0.0, np.ones((grid, grid), np.float32))
    graph = inspection_graph(net, size, memory, scorer=scorer, thresholds=(1e9, 1e9), border=border)
    return InspectionModel(graph.SerializeToString(), UNSET, threads=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    root = casting_root(Path(os.environ.get("CASTLINE_DATA", DATA)))
    if root is None:
        sys.exit("casting photographs not found: set CASTLINE_DATA to the shared data folder")
    val = [p for p in images(root / "ok_front") if split_of(p.read_bytes()) == "val"]
    photos = [read_image(p) for p in val[:20]]
    rng = np.random.default_rng(0)
    models = {
        "lite0 224, no border (before)": model("lite0", 224, 0, rng),
        "lite0 224, 16 px border (default)": model("lite0", 224, 16, rng),
        "lite1 240, 16 px border": model("lite1", 240, 16, rng),
    }
    times: dict[str, list[float]] = {name: [] for name in models}
    reference: list[float] = []
    a, b = rng.normal(size=(256, 256)), rng.normal(size=(256, 256))
    for m in models.values():
        for photo in photos[:3]:
            m.inspect(photo)  # warm-up
    for i in range(args.runs):
        for name, m in models.items():
            started = time.perf_counter()
            m.inspect(photos[i % len(photos)])
            times[name].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for _ in range(8):
            a = np.tanh(a @ b)
        reference.append((time.perf_counter() - started) * 1000)
    for name, values in times.items():
        p50, p99 = np.percentile(values, 50), np.percentile(values, 99)
        print(f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(values)} photos")
    r50, r99 = np.percentile(reference, 50), np.percentile(reference, 99)
    print(f"reference workload: p50 {r50:.2f} ms, p99 {r99:.2f} ms (p99/p50 {r99 / r50:.2f})")


if __name__ == "__main__":
    main()
