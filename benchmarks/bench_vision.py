"""Visual inspection on the real casting photographs: accuracy, latency, training cost.

Trains on good photos of the "train" split (content-hash split; all of them unless
--n-train), reports on the "val" split; "holdout" photos are never given to training.
Prints each figure; record them in docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_vision.py                  # lite0, good-only + labels
    .venv/bin/python benchmarks/bench_vision.py --backbone lite1
    .venv/bin/python benchmarks/bench_vision.py --n-train 200 --no-labels  # quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from castline.datasets import casting_root, images, split_of
from castline.vision.images import read_image
from castline.vision.metrics import auroc, escape_at_frr
from castline.vision.model import InspectionModel
from castline.vision.train import CALIBRATION_FILE, TrainConfig, train_model

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def val_sample(paths: list[Path]) -> list[Path]:
    return [p for p in paths if split_of(p.read_bytes()) == "val"]


def latency(model: InspectionModel, paths: list[Path], runs: int) -> tuple[float, float]:
    photos = [read_image(p) for p in paths[:20]]
    for photo in photos[:3]:
        model.inspect(photo)  # warm-up
    times = []
    for i in range(runs):
        started = time.perf_counter()
        model.inspect(photos[i % len(photos)])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="lite0", choices=["lite0", "lite1"])
    parser.add_argument("--n-train", type=int, help="good train photos to learn from (all)")
    parser.add_argument("--n-timing", type=int, default=200, help="good photos, timed run")
    parser.add_argument("--cell", type=int, default=4, help="memory cell side; 0: one memory")
    parser.add_argument("--n-head", type=int, default=400, help="photos per class for the head")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--no-labels", action="store_true", help="skip the supervised run")
    args = parser.parse_args()

    root = casting_root(Path(__import__("os").environ.get("CASTLINE_DATA", DATA)))
    if root is None:
        sys.exit("casting photographs not found: set CASTLINE_DATA to the shared data folder")
    good, bad = images(root / "ok_front"), images(root / "def_front")
    digests_good = {hashlib.sha256(p.read_bytes()).hexdigest() for p in good}
    digests_bad = {hashlib.sha256(p.read_bytes()).hexdigest() for p in bad}
    print(
        f"photos: {len(good)} good, {len(bad)} defective; identical in both folders: "
        f"{len(digests_good & digests_bad)} (dropped)"
    )
    val_good, val_bad = val_sample(good), val_sample(bad)
    print(f"val split used for figures: {len(val_good)} good, {len(val_bad)} defective")

    with tempfile.TemporaryDirectory() as tmp:
        # Training time from --n-timing good photos: memory bank + calibration on 40 val photos.
        started = time.perf_counter()
        train_good = [p for p in good if split_of(p.read_bytes()) == "train"]
        train_model(
            train_good[: args.n_timing],
            Path(tmp) / "timing",
            backbone=args.backbone,
            progress=False,
            val_paths=val_good[:40],
            config=TrainConfig(cell=args.cell, head_images=0),
        )
        print(
            f"[{args.backbone}] training time from {args.n_timing} good photos: "
            f"{time.perf_counter() - started:.1f} s (incl. 40 calibration photos)"
        )

        runs = (
            [("good-only", 0)]
            if args.no_labels
            else [("good-only", 0), ("with labels", args.n_head)]
        )
        for name, head in runs:
            config = TrainConfig(cell=args.cell, head_images=head, threads=1)
            model = train_model(
                train_good[: args.n_train] + val_good,
                Path(tmp) / name,
                defect_paths=[p for p in bad if split_of(p.read_bytes()) != "holdout"],
                backbone=args.backbone,
                progress=True,
                config=config,
            )
            # Training scored every val photo through the model's graph (the same scores
            # inspect gives, see tests/vision): read them rather than score twice.
            recorded = json.loads((Path(tmp) / name / CALIBRATION_FILE).read_text())["images"]
            ok_scores = np.asarray([r["score"] for r in recorded if r["label"] == "OK"])
            ng_scores = np.asarray([r["score"] for r in recorded if r["label"] == "NG"])
            timings = model.manifest["metrics"]["timings"]
            p50, p99 = latency(model, val_good, args.latency_runs)
            print(
                f"[{args.backbone} {name}] val image AUROC {auroc(ok_scores, ng_scores):.4f}, "
                f"escape rate at 2 % false reject {escape_at_frr(ok_scores, ng_scores):.4f}, "
                f"latency p50 {p50:.1f} ms p99 {p99:.1f} ms (1 thread, 300x300), "
                f"good photos: bank {model.manifest['training']['bank_images']}, "
                f"usual {model.manifest['training']['usual_images']}, "
                f"memory {model.manifest['training']['memory_cells']} cells x "
                f"{model.manifest['training']['memory_rows']} rows, "
                f"input {model.manifest['input_size'][0]} px, stages {timings}"
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (maxrss): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
