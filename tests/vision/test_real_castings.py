"""A small sample of the real casting photographs: defects score above good parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from castline.datasets import images, split_of
from castline.vision.metrics import auroc
from castline.vision.train import TrainConfig, train_model


@pytest.mark.slow
def test_real_defects_score_above_real_good_parts(casting_data: Path, tmp_path: Path) -> None:
    good, bad = images(casting_data / "ok_front"), images(casting_data / "def_front")
    train = [p for p in good[:200] if split_of(p.read_bytes()) == "train"][:40]
    val_good = [p for p in good[200:400] if split_of(p.read_bytes()) == "val"][:20]
    val_bad = [p for p in bad[:200] if split_of(p.read_bytes()) == "val"][:20]
    config = TrainConfig(input_size=160, placements_per_image=1, memory_rows=1500)
    model = train_model(train, tmp_path / "m", progress=False, config=config)
    ok = np.asarray([model.inspect_bytes(p.read_bytes()).score for p in val_good])
    ng = np.asarray([model.inspect_bytes(p.read_bytes()).score for p in val_bad])
    assert auroc(ok, ng) > 0.6  # 40 training photos at low resolution: a smoke check
    assert np.median(ng) > np.median(ok)
