"""The model `castline up` needs: trained once on first run, then reused.

From the real casting photographs where the data folder has them (the "train" split
teaches, "val" calibrates; the simulator shows only "holdout" photos), else from the
simulator's synthetic photographs, so `castline up` works on any machine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import Engine
from tqdm import tqdm

from castline import datasets
from castline.cli_text import say
from castline.settings import Settings
from castline.sim.photos import DEFECT_CODES, encode_jpeg, render_casting
from castline.sim.runner import views_of
from castline.vision.backbone import EfficientNetLite
from castline.vision.graph import features_graph
from castline.vision.images import read_image
from castline.vision.model import MANIFEST_FILE, InspectionModel, session
from castline.vision.registry import ModelRegistry
from castline.vision.train import DEFAULT_BACKBONE, NATIVE_SIZE, TrainConfig, train_model

log = logging.getLogger(__name__)
# Training's seconds per photo in units of one backbone pass: the pass itself, then the
# folds' coresets and nearest neighbours (2.7 passes' time from 400 photos, Lite0 and
# Lite1 alike, 2026-12-01; docs/benchmarks.md "int8 by default").
PASS_COST = 2.7


def synthetic_photos(
    folder: Path, good: int = 300, defective: int = 150, seed: int = 11
) -> tuple[list[Path], list[Path]]:
    """Render good and defective synthetic castings into `folder` (kept for next time)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Path]] = {"ok": [], "def": []}
    plan = [("ok", None)] * good + [
        ("def", DEFECT_CODES[i % len(DEFECT_CODES)]) for i in range(defective)
    ]
    for i, (kind, defect) in enumerate(tqdm(plan, desc="rendering photos", unit="img")):
        path = folder / kind / f"{kind}{i:04d}.jpeg"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            image, _ = render_casting(rng, defect, size=256)
            path.write_bytes(encode_jpeg(image))
        out[kind].append(path)
    return out["ok"], out["def"]


def ensure_models(
    engine: Engine, settings: Settings, dies: Sequence[str], view: str = "front"
) -> InspectionModel:
    """Make sure every die has an active model for `view` (and for each further view of a
    die the simulated cameras shoot from several); train the demo model if needed."""
    registry = ModelRegistry(engine)
    root = datasets.casting_root(settings.data)
    source = "casting-photos" if root else "synthetic"
    path = settings.models_dir / f"demo-{source}"
    if not (path / MANIFEST_FILE).exists():
        if root:
            print(say("train.real", root=root), flush=True)
            # The simulator shows the "holdout" photos: the model must not learn them.
            good, defective = (
                [
                    p
                    for p in datasets.images(root / kind)
                    if datasets.split_of(p.read_bytes()) != "holdout"
                ]
                for kind in ("ok_front", "def_front")
            )
        else:
            print(say("train.synthetic"), flush=True)
            good, defective = synthetic_photos(settings.home / "synthetic")
        _train_saying_how_long(good, defective, path)
    model = InspectionModel.load(path)
    several = views_of(settings.views_per_part, view)
    for die in dies:
        for each in several.get(die, (view,)):
            if registry.active(die, each) is None:
                metrics = model.manifest.get("metrics", {})
                registry.register(die, each, path, model.manifest, metrics, activate=True)
                log.info("model %s active for die %s, view %s", model.version, die, each)
    return model


def expected_training_s(good: Sequence[Path], defective: Sequence[Path], probes: int = 8) -> float:
    """Seconds training will take on this machine, as busy as it is now: a few photos
    through the backbone, timed (the median, so one hiccup does not count), times the
    passes training makes over the photos."""
    config = TrainConfig()
    net = EfficientNetLite.load(DEFAULT_BACKBONE)
    graph = features_graph(net, NATIVE_SIZE[DEFAULT_BACKBONE], config.border, config.strides)
    features = session(graph.SerializeToString(), config.threads)
    sample = [read_image(p) for p in list(good)[: probes + 1]]
    features.run(["patches"], {"image": sample[0]})  # the first run sets itself up
    took = []
    for image in sample[1:]:
        started = time.perf_counter()
        features.run(["patches"], {"image": image})
        took.append(time.perf_counter() - started)
    passes = len(good) + 2 * min(len(defective), config.head_images)
    return float(np.median(took)) * passes * PASS_COST


def _train_saying_how_long(good: list[Path], defective: list[Path], path: Path) -> None:
    """Train, after saying how long it should take here; progress bars while it runs."""
    expected = expected_training_s(good, defective)
    said = say(
        "train.expect", good=len(good), defective=len(defective), expected=_minutes(expected)
    )
    print(said, flush=True)
    started = time.monotonic()
    train_model(good, path, defect_paths=defective, progress=True)
    print(say("train.took", took=_minutes(time.monotonic() - started)), flush=True)


def _minutes(seconds: float) -> str:
    return say("seconds", n=seconds) if seconds < 90 else say("minutes", n=seconds / 60)
