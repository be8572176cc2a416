"""The comparison of benchmarks/bench_vs_anomalib.py: both sides' scores and heat maps go
through the same metric code, and a side that finds the defects wins on every figure."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def bench():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCHMARKS))  # the script imports bench_localisation beside it
    try:
        return importlib.import_module("bench_vs_anomalib")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_same_figures_for_both_sides_and_ratios(tmp_path: Path) -> None:
    b = bench()
    mask = np.zeros((20, 20), np.uint8)
    mask[4:8, 4:8] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    test = [b.TestPhoto(f"good{i}.png", False, None, i < 2) for i in range(50)]
    test += [b.TestPhoto("real.png", True, None, False)] * 5
    test += [b.TestPhoto("pasted.png", True, str(tmp_path / "mask.png"), True)] * 5
    job = b.Job("flat", 50, [], test, 10, 0.01, "lite1")
    rng = np.random.default_rng(0)

    def result(sees: bool) -> dict:
        good = list(rng.uniform(0, 1, 50))
        bad = [2.0] * 10 if sees else list(rng.uniform(0, 1, 10))
        heat = np.zeros((10, 10), np.float32)  # maps are kept every 2nd pixel
        if sees:
            heat[2:4, 2:4] = 5.0
        maps = {f"m{i}": heat if test[i].mask else np.zeros((10, 10), np.float32)
                for i, p in enumerate(test) if p.pixel}  # fmt: skip
        costs = {"fit_s": 10.0, "p50_ms": 5.0, "p99_ms": 9.0, "peak_mb": 500.0}
        return {"scores": good + bad, "maps": maps, "reference_p99_p50": 1.5, **costs}

    ours, theirs = b.figures(job, result(True)), b.figures(job, result(False))
    assert ours["auroc_real"] == ours["auroc_pasted"] == ours["pixel_auroc"] == 1.0
    assert ours["escape_real"] == ours["escape_pasted"] == 0.0
    assert theirs["auroc_real"] < 0.9 and theirs["escape_pasted"] > 0.5
    assert theirs["pixel_auroc"] == 0.5  # a flat map tells nothing
    table = b.table_lines([("flat", 50, ours, theirs)])
    assert table[2].startswith("| flat | 50 | 1.000 / ")
    assert "(x1.00)" in table[2]  # same costs: ratio one
