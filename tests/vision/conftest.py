"""A tiny model trained once per session on synthetic parts (small images, small bank)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from castline.vision.augment import Placement
from castline.vision.model import InspectionModel
from castline.vision.train import CALIBRATION_FILE, TrainConfig, train_model

from .synthetic import part, save

TINY = TrainConfig(
    input_size=96,  # the photos are 128 px: downscaled, as real photos are
    holdout=10,
    placements_per_image=12,
    placement=Placement(max_rotation=180.0, max_shift=0.04),
    memory_rows=3000,
    target_frr=0.05,
    review_frr=0.10,
    head_images=30,
)


@dataclass
class Trained:
    model: InspectionModel
    folder: Path
    good: list[Path]
    val: list[Path]  # held back by training (--holdout): scored by the final model only
    defects: list[Path]


def placed(seed: int) -> dict[str, object]:
    """Where an imperfect cell puts part `seed`: any angle, a few pixels off centre."""
    rng = np.random.default_rng(seed + 100_000)
    return {"angle": float(rng.uniform(-180, 180)), "shift": tuple(rng.uniform(-3, 3, size=2))}


def write_parts(
    folder: Path, seeds: range, placed_by_cell: bool = False, **kwargs: object
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"part_{seed:04d}.png"
        where = placed(seed) if placed_by_cell else {}
        save(part(seed, **where, **kwargs), str(path))  # type: ignore[arg-type]
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("vision")
    # Good photos as a real cell takes them: turned and shifted a little.
    good = write_parts(root / "good", range(24), placed_by_cell=True)
    val = write_parts(root / "val", range(1000, 1030), placed_by_cell=True)
    model = train_model(good + val, root / "model", progress=False, config=TINY)
    records = json.loads((root / "model" / CALIBRATION_FILE).read_text())["images"]
    held = {r["name"] for r in records if r["role"] == "holdout"}
    paths = good + val
    return Trained(
        model,
        root / "model",
        [p for p in paths if p.name not in held],
        [p for p in paths if p.name in held],
        [],
    )
