"""Training: learn the normal look of a part from good photos, then calibrate.

1. Deduplicate photos by content; a photo found among both good and defective ones is
   a labelling conflict and is dropped from both.
2. Split by content hash (`castline.datasets.split_of`): "train" photos teach, "val"
   photos calibrate, "holdout" photos are never touched.
3. Memory bank: patch descriptors of up to `bank_images` good photos (optionally also at
   random placements), one greedy coreset per cell of the patch grid.
4. The usual distance: good "train" photos kept out of the memory are scored; each place's
   mean distance divides the maps from then on.
5. With labelled defects: a logistic-regression head on the graph's image descriptor,
   fitted on good "train" photos that are not in the bank and on defective "train" photos.
6. Thresholds from the "val" scores, then the final graph with thresholds inside.

Every score on the way comes from the same ONNX graph the line runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from tqdm import tqdm

from castline.datasets import split_of
from castline.vision.augment import Placement, copies
from castline.vision.backbone import INPUT_MEAN, INPUT_STD, EfficientNetLite
from castline.vision.calibration import calibrate, threshold_for_frr
from castline.vision.graph import STRIDES, Head, features_graph, inspection_graph
from castline.vision.head import fit_head
from castline.vision.images import read_image
from castline.vision.memory import PatchMemory, Projection, Scorer, cell_windows, greedy_coreset
from castline.vision.metrics import auroc
from castline.vision.model import FORMAT_VERSION, METADATA_KEY, ONNX_FILE, InspectionModel, session

NATIVE_SIZE = {"lite0": 224, "lite1": 240}  # the resolution each backbone was trained at
CALIBRATION_FILE = "calibration.json"
MIN_USUAL_IMAGES = 20


@dataclass(frozen=True)
class TrainConfig:
    input_size: int | None = None  # None: the backbone's native resolution
    bank_images: int = 2000
    placements_per_image: int = 0
    placement: Placement = field(default_factory=Placement)
    # The patch grid is cut into cells of `cell` x `cell` patches, each with its own memory
    # learnt from its patches and `reach` patches around; 0: one memory for the whole photo.
    cell: int = 4
    reach: int = 1
    memory_rows: int = 1024  # per cell
    dims: int = 96  # descriptor dimensions the memory keeps (PCA); 0: all
    usual_images: int = 200  # good photos (at most a fifth) that measure the usual distance
    max_rows: int = 600_000  # patch rows the coresets choose from, all cells together
    sigma: float = 1.0
    margin: float = 0.1  # share of each side left out of the image score
    target_frr: float = 0.02
    review_frr: float = 0.05
    target_escape: float | None = None
    head_images: int = 400  # per class, for the supervised head
    seed: int = 0
    threads: int | None = None


@dataclass(frozen=True)
class Photo:
    path: Path
    digest: str


@dataclass
class Photos:
    """Good and defective photos after deduplication and splitting."""

    bank: list[Photo]
    usual: list[Photo]  # good photos kept out of the memory: the usual distance per place
    head_good: list[Photo]
    head_defective: list[Photo]
    val_good: list[Photo]
    val_defective: list[Photo]
    conflicts: int
    duplicates: int


def _unique(paths: Iterable[Path]) -> tuple[dict[str, Photo], int]:
    photos: dict[str, Photo] = {}
    duplicates = 0
    for path in sorted(Path(p) for p in paths):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in photos:
            duplicates += 1
        else:
            photos[digest] = Photo(path, digest)
    return photos, duplicates


def gather(
    good_paths: Sequence[Path],
    defect_paths: Sequence[Path] | None,
    val_paths: Sequence[Path] | None,
    config: TrainConfig,
) -> Photos:
    good, dup_good = _unique(good_paths)
    bad, dup_bad = _unique(defect_paths or [])
    conflicts = set(good) & set(bad)
    for digest in conflicts:
        del good[digest], bad[digest]

    def split(photos: dict[str, Photo], name: str) -> list[Photo]:
        return [p for d, p in sorted(photos.items()) if split_of(p.path.read_bytes()) == name]

    if val_paths is not None:  # calibration photos given: never train on them
        val, _ = _unique(val_paths)
        train_good = [p for d, p in sorted(good.items()) if d not in val]
        val_good = [p for _, p in sorted(val.items())]
    else:
        train_good, val_good = split(good, "train"), split(good, "val")
    head_defective = split(bad, "train")[: config.head_images]
    # The head and the usual distance must see good photos the memory has not.
    head = min(config.head_images, len(train_good) // 2) if head_defective else 0
    usual = min(config.usual_images, (len(train_good) - head) // 5)
    usual = usual if usual >= MIN_USUAL_IMAGES else 0  # fewer: a noisy mean, not worth it
    # Sorted by digest: a reproducible, content-determined but unbiased choice.
    bank = train_good[: min(config.bank_images, len(train_good) - head - usual)]
    rest = train_good[len(bank) :]
    return Photos(
        bank=bank,
        usual=rest[:usual],
        head_good=rest[usual:][:head],
        head_defective=head_defective,
        val_good=val_good,
        val_defective=split(bad, "val"),
        conflicts=len(conflicts),
        duplicates=dup_good + dup_bad,
    )


def _bar(items: Sequence[Any], desc: str, progress: bool) -> Iterable[Any]:
    return tqdm(items, desc=desc, unit="img", disable=not progress, leave=False)


def memory_bank(
    net: EfficientNetLite, size: int, photos: list[Photo], config: TrainConfig, progress: bool
) -> PatchMemory:
    """Per cell, a coreset of the patch descriptors good photos show there."""
    grid = -(-size // STRIDES[0])
    cell = config.cell or grid
    windows = cell_windows(grid, cell, config.reach if config.cell else 0)
    pools = _cell_pools(net, size, photos, windows, config, progress)
    sample = np.concatenate([rows for pool in pools for rows in pool[::10]])  # for the axes
    projection = Projection.fit(sample, config.dims) if 0 < config.dims < sample.shape[1] else None
    del sample
    banks = []
    for pool in _bar(pools, "coreset per cell", progress):
        rows = np.concatenate(pool)
        pool.clear()
        rows = projection(rows) if projection is not None else rows
        chosen = greedy_coreset(rows, config.memory_rows, seed=config.seed)
        # Cells with fewer rows repeat some: a duplicate never changes the nearest distance.
        banks.append(rows[np.resize(chosen, config.memory_rows)])
    return PatchMemory(np.stack(banks), cell, projection)


def _cell_pools(
    net: EfficientNetLite,
    size: int,
    photos: list[Photo],
    windows: list[np.ndarray],
    config: TrainConfig,
    progress: bool,
) -> list[list[np.ndarray]]:
    """Per cell, patch descriptors of the good photos (and their placed copies) there."""
    features = session(features_graph(net, size).SerializeToString(), config.threads)
    rng = np.random.default_rng(config.seed)
    # Keep a random share of each view's rows so the pools never exceed max_rows:
    # memory stays flat however many photos there are.
    views = len(photos) * (1 + config.placements_per_image)
    per_cell = -(-config.max_rows // (len(windows) * views))
    pools: list[list[np.ndarray]] = [[] for _ in windows]
    for photo in _bar(photos, "memory bank", progress):
        image = read_image(photo.path)
        for placed in copies(image, config.placements_per_image, config.placement, rng):
            patches = features.run(["patches"], {"image": placed})[0]
            for pool, window in zip(pools, windows, strict=True):
                if len(window) > per_cell:
                    window = rng.choice(window, per_cell, replace=False)
                pool.append(patches[window])
    return pools


def _outputs(
    model: InspectionModel, photos: list[Photo], desc: str, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """score, anomaly and descriptor of each photo through the model's graph."""
    scores, anomalies, descriptors = [], [], []
    for photo in _bar(photos, desc, progress):
        out = model.run(read_image(photo.path))
        scores.append(float(out["score"][0]))
        anomalies.append(float(out["anomaly"][0]))
        descriptors.append(out["descriptor"][0])
    dim = descriptors[0].shape[0] if descriptors else 0
    return (
        np.asarray(scores),
        np.asarray(anomalies),
        np.asarray(descriptors).reshape(len(photos), dim),
    )


def usual_distance(model: InspectionModel, photos: list[Photo], progress: bool) -> np.ndarray:
    """Mean smoothed patch distance of good photos at each place of the grid."""
    maps = [model.run(read_image(p.path))["distances"] for p in _bar(photos, "usual", progress)]
    usual = np.mean(maps, axis=0)
    # Where good photos happen to match the memory almost exactly, do not divide by ~0.
    return np.maximum(usual, 0.1 * float(np.median(usual))).astype(np.float32)


def _data_hash(photos: Photos) -> str:
    used = [*photos.bank, *photos.usual, *photos.head_good, *photos.head_defective]
    digests = sorted(p.digest for p in used)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def train_model(
    good_paths: Sequence[Path],
    out: Path | str,
    *,
    defect_paths: Sequence[Path] | None = None,
    backbone: str = "lite0",
    progress: bool = True,
    val_paths: Sequence[Path] | None = None,
    config: TrainConfig | None = None,
) -> InspectionModel:
    """Train, calibrate and save a model folder at `out`; returns the loaded model.

    `val_paths`: good photos to calibrate on; by default the "val" split of `good_paths`.
    """
    config = config or TrainConfig()
    started = time.perf_counter()
    photos = gather(good_paths, defect_paths, val_paths, config)
    if len(photos.bank) < 1:
        raise ValueError("no good training photos: give a folder of good castings (GOOD_DIR)")
    if len(photos.val_good) < 5:
        raise ValueError(
            f"only {len(photos.val_good)} good calibration photos: give more good photos "
            "(about 20 % of them land in the validation split)"
        )
    net = EfficientNetLite.load(backbone)
    size = config.input_size or NATIVE_SIZE[backbone]
    memory = memory_bank(net, size, photos.bank, config, progress)
    timings = {"memory_bank_s": round(time.perf_counter() - started, 2)}
    scorer = Scorer(config.sigma, config.margin)
    unset = (float("inf"), float("inf"))

    def build(head: Head | None, thresholds: tuple[float, float]) -> onnx.ModelProto:
        return inspection_graph(net, size, memory, scorer=scorer, thresholds=thresholds, head=head)

    model = InspectionModel(build(None, unset).SerializeToString(), _placeholder())
    if photos.usual:
        scorer = Scorer(config.sigma, config.margin, usual_distance(model, photos.usual, progress))
        model = InspectionModel(build(None, unset).SerializeToString(), _placeholder())
        timings["usual_s"] = round(time.perf_counter() - started - sum(timings.values()), 2)
    head = None
    metrics: dict[str, Any] = {}
    if photos.head_good and photos.head_defective:
        _, _, d_good = _outputs(model, photos.head_good, "head: good", progress)
        _, _, d_bad = _outputs(model, photos.head_defective, "head: defective", progress)
        head = fit_head(d_good, d_bad)
        model = InspectionModel(build(head, unset).SerializeToString(), _placeholder())
        timings["head_s"] = round(time.perf_counter() - started - sum(timings.values()), 2)
    val_good, anomaly_good, _ = _outputs(model, photos.val_good, "calibrate: good", progress)
    val_bad, anomaly_bad, _ = _outputs(
        model, photos.val_defective, "calibrate: defective", progress
    )
    calibration = calibrate(
        val_good,
        val_bad,
        target_frr=config.target_frr,
        review_frr=config.review_frr,
        target_escape=config.target_escape,
    )
    region = threshold_for_frr(anomaly_good, config.target_frr)
    metrics["val"] = calibration.as_dict() | {"n_ok": len(val_good), "n_ng": len(val_bad)}
    if len(val_bad):
        metrics["val"]["image_auroc"] = auroc(val_good, val_bad)
        metrics["val"]["image_auroc_good_only"] = auroc(anomaly_good, anomaly_bad)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    metrics["timings"] = timings

    created = datetime.now(UTC)
    data_hash = _data_hash(photos)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "version": f"{backbone}-{created:%Y%m%dT%H%M%S}-{data_hash[:6]}",
        "created": created.isoformat(),
        "backbone": backbone,
        "input_size": [size, size],
        "preprocessing": {
            "channels": "RGB",
            "resize": "bilinear",
            "mean": INPUT_MEAN,
            "std": INPUT_STD,
        },
        "strides": list(STRIDES),
        "score": "head" if head is not None else "anomaly",
        "thresholds": {"review": calibration.review, "ng": calibration.ng, "region": region},
        "heatmap": "image-sized, distance to the nearest normal patch / usual distance there",
        "training": {
            "data_sha256": data_hash,
            "bank_images": len(photos.bank),
            "usual_images": len(photos.usual),
            "head_images": {"good": len(photos.head_good), "defective": len(photos.head_defective)},
            "duplicates_dropped": photos.duplicates,
            "conflicts_dropped": photos.conflicts,
            "memory_rows": int(memory.bank.shape[1]),
            "memory_cells": int(memory.bank.shape[0]),
            "config": asdict(config),
        },
        "metrics": metrics,
        "onnx": ONNX_FILE,
    }
    final = build(head, (calibration.review, calibration.ng))
    entry = final.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(manifest, sort_keys=True)
    model = InspectionModel(final.SerializeToString(), manifest, threads=config.threads)
    folder = model.save(out)
    scores = [
        {"sha256": p.digest, "label": label, "score": float(s)}
        for label, group, values in (
            ("OK", photos.val_good, val_good),
            ("NG", photos.val_defective, val_bad),
        )
        for p, s in zip(group, values, strict=True)
    ]
    (folder / CALIBRATION_FILE).write_text(json.dumps({"images": scores}, indent=1))
    return model


def _placeholder() -> dict[str, Any]:
    """Manifest of an intermediate model that exists only to score during training."""
    return {"version": "training", "thresholds": {"review": "inf", "ng": "inf", "region": "inf"}}
