"""The comparison of benchmarks/bench_vs_anomalib.py: both sides' scores and heat maps go
through the same metric code, a side that finds the defects wins on every figure, and the
paired bootstrap calls it ahead only where the test photos show it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from castline.vision.metrics import auroc

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def bench():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCHMARKS))  # the script imports bench_localisation beside it
    try:
        return importlib.import_module("bench_vs_anomalib")
    finally:
        sys.path.remove(str(BENCHMARKS))


def job_and_results(tmp_path: Path):  # type: ignore[no-untyped-def]
    """50 good photos, 5 real and 5 pasted defects; one side sees the defects, one not."""
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

    return b, job, result(True), result(False)


def test_same_figures_for_both_sides_and_ratios(tmp_path: Path) -> None:
    b, job, seeing, blind = job_and_results(tmp_path)
    ours, theirs = b.figures(job, seeing), b.figures(job, blind)
    assert ours["auroc_real"] == ours["auroc_pasted"] == ours["pixel_auroc"] == 1.0
    assert ours["escape_real"] == ours["escape_pasted"] == 0.0
    assert theirs["auroc_real"] < 0.9 and theirs["escape_pasted"] > 0.5
    assert theirs["pixel_auroc"] == 0.5  # a flat map tells nothing
    table = b.table_lines([("flat", 50, ours, theirs, {})])
    assert table[2].startswith("| flat | 50 | 1.000 / ")
    assert "(x1.00)" in table[2]  # same costs: ratio one


def test_paired_bootstrap_ahead_only_where_the_photos_show_it(tmp_path: Path) -> None:
    b, job, seeing, blind = job_and_results(tmp_path)
    tests = b.test_set(job)
    lead = b.paired_intervals(tests, b.answers(job, seeing), b.answers(job, blind), draws=200)
    for key in ("auroc_real", "escape_real", "auroc_pasted", "escape_pasted", "pixel_auroc"):
        point, low, high = lead[key]
        assert point > 0 and low > 0, key  # escape signed too: castline's is the lower
        assert b.verdict(low, high) == "ahead"
    same = b.paired_intervals(tests, b.answers(job, blind), b.answers(job, blind), draws=50)
    assert all(v == (0.0, 0.0, 0.0) for v in same.values())
    lines = b.interval_lines([("flat", 50, {}, {}, lead)])
    assert lines[2].count("ahead") == 5


def test_pixel_auroc_of_weighted_photos_is_that_of_repeated_photos() -> None:
    b = bench()
    rng = np.random.default_rng(3)
    maps = [np.round(rng.uniform(0, 1, (6, 8)), 1) for _ in range(7)]  # many ties
    masks = [rng.uniform(0, 1, (6, 8)) < 0.2 for _ in range(7)]
    for heat, mask in zip(maps, masks, strict=True):
        heat[mask] += 0.4
    counts = np.array([0, 1, 3, 1, 2, 0, 1])
    repeated = [(h, m) for h, m, c in zip(maps, masks, counts, strict=True) for _ in range(c)]
    normal = np.concatenate([h[~m] for h, m in repeated])
    defect = np.concatenate([h[m] for h, m in repeated])
    ranks = b.PixelPairs(maps, masks)
    assert abs(ranks.auroc(counts.astype(float)) - auroc(normal, defect)) < 1e-12
