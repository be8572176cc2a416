"""Visual inspection on the real casting photographs: accuracy, thresholds, latency, cost.

Gives `train_model` the first N good photos of the "train" split (content-hash split,
`castline.datasets`), exactly as a user gives a folder: training uses all of them
(out-of-fold calibration, no split of its own). Every figure is on the "val" split,
which training never sees; "holdout" photos are never read. Prints one line per run;
record them in docs/benchmarks.md. Pin it to one core: `taskset -c 1`.

    .venv/bin/python benchmarks/bench_vision.py --n-train 100 200 400   # learn from few
    .venv/bin/python benchmarks/bench_vision.py --labels                # all, + head
    .venv/bin/python benchmarks/bench_vision.py --backbone lite1 --n-train 400
    .venv/bin/python benchmarks/bench_vision.py --n-train 200 --set memory_rows=2048
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from castline.datasets import casting_root, images, split_of
from castline.domain.verdict import Verdict
from castline.vision.calibration import rate_interval
from castline.vision.images import read_image
from castline.vision.metrics import auroc, escape_at_frr
from castline.vision.model import InspectionModel
from castline.vision.train import DEFAULT_BACKBONE, TrainConfig, train_model

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def setting(text: str) -> tuple[str, object]:
    """FIELD=VALUE for a TrainConfig field, the value in JSON."""
    name, _, value = text.partition("=")
    if name not in {f.name for f in fields(TrainConfig)}:
        raise argparse.ArgumentTypeError(f"{name!r} is no TrainConfig field")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is no JSON value") from exc


def add_settings(parser: argparse.ArgumentParser) -> None:
    """`--set FIELD=JSON`, repeatable: any TrainConfig field the other options leave out."""
    parser.add_argument(
        "--set",
        type=setting,
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="any other TrainConfig field, e.g. --set memory_rows=2048 --set sigma=0.5",
    )


def with_settings(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    return replace(config, **dict(args.set))


def in_split(paths: list[Path], split: str) -> list[Path]:
    return [p for p in paths if split_of(p.read_bytes()) == split]


def latency(model: InspectionModel, photos: list[np.ndarray], runs: int) -> tuple[float, float]:
    for photo in photos[:3]:
        model.inspect(photo)  # warm-up
    times = []
    for i in range(runs):
        started = time.perf_counter()
        model.inspect(photos[i % len(photos)])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def reference_ratio(runs: int) -> float:
    """p99/p50 of a fixed numpy workload: how much of a tail is the machine, not the model."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(256, 256)), rng.normal(size=(256, 256))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(8):
            a = np.tanh(a @ b)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 99) / np.percentile(times, 50))


def report(
    name: str,
    model: InspectionModel,
    ok_paths: list[Path],
    ng_paths: list[Path],
    args: argparse.Namespace,
    seconds: float,
) -> None:
    # Read one at a time: the peak memory printed is training's and scoring's, not a cache's.
    results_ok = [model.inspect(read_image(p)) for p in ok_paths]
    results_ng = [model.inspect(read_image(p)) for p in ng_paths]
    ok, ng = results_ok, results_ng
    s_ok = np.asarray([r.score for r in results_ok])
    s_ng = np.asarray([r.score for r in results_ng])
    rejected = sum(r.verdict is Verdict.NG for r in results_ok)
    reviewed = sum(r.verdict is Verdict.REVIEW for r in results_ok)
    escaped = sum(r.verdict is Verdict.OK for r in results_ng)
    # A good part passed as OK yet drawn with a defect region: a heat map nobody can trust.
    marked = sum(r.verdict is Verdict.OK and bool(r.regions) for r in results_ok)
    fr_lo, fr_hi = rate_interval(rejected, len(ok))
    rv_lo, rv_hi = rate_interval(reviewed, len(ok))
    oof = model.manifest["metrics"]["out_of_fold"]
    p50, p99 = latency(model, [read_image(p) for p in ok_paths[:20]], args.latency_runs)
    training = model.manifest["training"]
    print(
        f"[{name}] val image AUROC {auroc(s_ok, s_ng):.4f}, escape at 2 % FR "
        f"{escape_at_frr(s_ok, s_ng):.4f}; at the model's thresholds on val: false reject "
        f"{rejected / len(ok):.4f} [{fr_lo:.3f}, {fr_hi:.3f}] (target "
        f"{model.manifest['training']['config']['target_frr']}), review "
        f"{reviewed / len(ok):.4f} [{rv_lo:.3f}, {rv_hi:.3f}], NG passed as OK "
        f"{escaped / len(ng):.4f}, good parts passed with a region {marked / len(ok):.4f}; "
        f"out of fold: false reject {oof['false_reject_rate']:.4f}, "
        f"review {oof['review_rate']:.4f}; latency p50 {p50:.1f} ms p99 {p99:.1f} ms "
        f"(1 thread, 300x300; reference workload p99/p50 {reference_ratio(200):.2f}); "
        f"memory {training['memory_cells']} cells x {training['memory_rows']} rows, "
        f"alignment {training['alignment']}, part {training['part']}, "
        f"registration {training.get('registration')}, "
        f"copies {training['copies']['per_photo']} a photo, "
        f"turns {training['copies']['turns_deg']}, "
        f"input {model.manifest['input_size'][0]} px; "
        f"training {seconds:.1f} s "
        f"{model.manifest['metrics']['timings']}",
        flush=True,
    )


def config_of(args: argparse.Namespace) -> TrainConfig:
    return with_settings(_config_of(args), args)


def _config_of(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        input_size=args.input_size,
        cell=args.cell,
        border=args.border,
        margin=args.margin,
        usual=args.usual,
        strides=tuple(args.strides),
        part_mask=not args.no_part_mask,
        register=args.register,
        threads=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=["lite0", "lite1"])
    parser.add_argument("--n-train", type=int, nargs="+", default=[0], help="0: all")
    parser.add_argument("--input-size", type=int)
    parser.add_argument("--cell", type=int, help="memory cell side; 0: one memory; default auto")
    parser.add_argument("--border", type=int, default=16, help="mirrored border, px")
    parser.add_argument("--strides", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--usual", default="max", choices=["max", "mean"])
    parser.add_argument("--margin", type=float, default=0.0, help="blind band, share of side")
    parser.add_argument("--no-part-mask", action="store_true", help="the whole photo counts")
    parser.add_argument("--register", action="store_true", help="photos moved onto a template")
    parser.add_argument("--labels", action="store_true", help="also train the head (all)")
    parser.add_argument("--latency-runs", type=int, default=300)
    add_settings(parser)
    args = parser.parse_args()

    root = casting_root(Path(os.environ.get("CASTLINE_DATA", DATA)))
    if root is None:
        sys.exit("casting photographs not found: set CASTLINE_DATA to the shared data folder")
    good, bad = images(root / "ok_front"), images(root / "def_front")
    train_good = in_split(good, "train")
    val_good, val_bad = in_split(good, "val"), in_split(bad, "val")
    print(f"val split: {len(val_good)} good, {len(val_bad)} defective", flush=True)
    ok, ng = val_good, val_bad
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n_train:
            given = train_good[:n] if n else train_good
            config = config_of(args)
            started = time.perf_counter()
            model = train_model(
                given, Path(tmp) / f"m{n}", backbone=args.backbone, progress=False, config=config
            )
            report(
                f"{args.backbone} good-only, {len(given)} photos",
                model,
                ok,
                ng,
                args,
                time.perf_counter() - started,
            )
        if args.labels:
            started = time.perf_counter()
            model = train_model(
                train_good,
                Path(tmp) / "labels",
                defect_paths=in_split(bad, "train"),
                backbone=args.backbone,
                progress=False,
                config=config_of(args),
            )
            report(
                f"{args.backbone} with labels", model, ok, ng, args, time.perf_counter() - started
            )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (maxrss): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
