"""Evaluation of a model on labelled photos: detection, localisation, latency.

Scores come from `InspectionModel.inspect`, the path the line runs. Latency is measured
around that call (decode excluded), so set the model's threads to what a worker has.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from castline.domain.verdict import Verdict
from castline.vision.images import read_image
from castline.vision.metrics import auroc, escape_at_frr
from castline.vision.model import InspectionModel

PIXEL_STEP = 4  # every 4th pixel each way is plenty for a pixel AUROC


@dataclass(frozen=True)
class Scored:
    path: Path
    defective: bool
    score: float
    verdict: Verdict
    latency_ms: float


@dataclass
class Evaluation:
    scored: list[Scored]
    metrics: dict[str, Any]
    thresholds: tuple[float, float]
    model_version: str
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def scores(self, defective: bool) -> np.ndarray:
        return np.asarray([s.score for s in self.scored if s.defective == defective])

    def worst(self, count: int) -> list[Scored]:
        """Defective parts that scored lowest, then good parts that scored highest."""
        bad = sorted((s for s in self.scored if s.defective), key=lambda s: s.score)
        good = sorted((s for s in self.scored if not s.defective), key=lambda s: -s.score)
        return bad[:count] + good[:count]


def _mask(masks: Path | None, photo: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if masks is None:
        return None
    path = masks / (photo.stem + ".png")
    if not path.is_file():
        return None
    with Image.open(path) as image:
        mask = image.convert("L")
        if mask.size != (shape[1], shape[0]):
            mask = mask.resize((shape[1], shape[0]), Image.Resampling.NEAREST)
        return np.asarray(mask) > 0


def evaluate(
    model: InspectionModel,
    ok_paths: Sequence[Path],
    ng_paths: Sequence[Path],
    *,
    masks: Path | None = None,
    frr: float = 0.02,
    progress: bool = True,
) -> Evaluation:
    scored: list[Scored] = []
    pixel_scores: list[np.ndarray] = []
    pixel_truth: list[np.ndarray] = []
    labelled = [(Path(p), False) for p in ok_paths] + [(Path(p), True) for p in ng_paths]
    for path, defective in tqdm(labelled, desc="evaluate", unit="img", disable=not progress):
        image = read_image(path)
        started = time.perf_counter()
        result = model.inspect(image)
        latency = (time.perf_counter() - started) * 1000
        scored.append(Scored(path, defective, result.score, result.verdict, latency))
        truth = (
            np.zeros(image.shape[:2], bool)
            if not defective
            else _mask(masks, path, image.shape[:2])
        )
        if masks is not None and truth is not None:
            pixel_scores.append(result.heatmap[::PIXEL_STEP, ::PIXEL_STEP].ravel())
            pixel_truth.append(truth[::PIXEL_STEP, ::PIXEL_STEP].ravel())
    ok = np.asarray([s.score for s in scored if not s.defective])
    ng = np.asarray([s.score for s in scored if s.defective])
    latencies = np.asarray([s.latency_ms for s in scored])
    metrics: dict[str, Any] = {
        "model_version": model.version,
        "n_ok": len(ok),
        "n_ng": len(ng),
        "image_auroc": auroc(ok, ng),
        f"escape_rate_at_{round(frr * 100)}pct_frr": escape_at_frr(ok, ng, frr)
        if len(ng)
        else None,
        "latency_ms_p50": float(np.percentile(latencies, 50)) if len(latencies) else None,
        "latency_ms_p99": float(np.percentile(latencies, 99)) if len(latencies) else None,
    }
    if pixel_truth:
        truth_all = np.concatenate(pixel_truth)
        heat_all = np.concatenate(pixel_scores)
        metrics["pixel_auroc"] = auroc(heat_all[~truth_all], heat_all[truth_all])
    confusion = {
        actual: {v.value: 0 for v in (Verdict.OK, Verdict.REVIEW, Verdict.NG, Verdict.QUARANTINE)}
        for actual in ("OK", "NG")
    }
    for s in scored:
        confusion["NG" if s.defective else "OK"][s.verdict.value] += 1
    if len(ok):
        metrics["false_reject_rate"] = confusion["OK"]["NG"] / len(ok)
        metrics["review_rate_ok"] = confusion["OK"]["REVIEW"] / len(ok)
    if len(ng):
        metrics["escape_rate"] = confusion["NG"]["OK"] / len(ng)  # NG parts passed as OK
    metrics["confusion"] = confusion
    return Evaluation(scored, metrics, model.thresholds, model.version, confusion)
