"""Labelled defect photos train a logistic head that lives inside the same ONNX graph."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx
import pytest

from castline.domain.verdict import Verdict
from castline.vision.model import InspectionModel
from castline.vision.train import train_model

from .conftest import TINY, write_parts
from .synthetic import part

PITS = [(40, 44, 4), (64, 96, 4), (49, 64, 4), (75, 75, 4), (88, 40, 5)]


@pytest.mark.slow
def test_head_is_exported_as_plain_onnx_and_separates_defects(tmp_path: Path) -> None:
    good = write_parts(tmp_path / "good", range(40), placed_by_cell=True)
    defects = [
        p
        for i in range(40)
        for p in write_parts(tmp_path / "ng", range(500 + i, 501 + i), pit=PITS[i % len(PITS)])
    ]
    config = dataclasses.replace(
        TINY, input_size=64, memory_rows=800, placements_per_image=4, holdout=0
    )
    model = train_model(good, tmp_path / "m", defect_paths=defects, progress=False, config=config)
    manifest = model.manifest
    assert manifest["score"] == "head"
    # All 40 good photos teach the memory; the head learns from their out-of-fold
    # descriptors and from the defect photos (30 at most, `head_images`).
    photos = manifest["training"]["photos"]
    assert photos["memory_and_calibration"] == 40
    assert photos["defective_calibration_and_head"] == 30
    assert manifest["metrics"]["out_of_fold"]["n_ng"] == 30
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m" / "model.onnx")).graph.node}
    assert {"MatMul", "Sigmoid"} <= ops

    loaded = InspectionModel.load(tmp_path / "m")
    bad = [loaded.inspect(part(7000 + i, pit=p)) for i, p in enumerate(PITS)]
    fine = [loaded.inspect(part(7100 + i)) for i in range(5)]
    assert all(0.0 <= r.score <= 1.0 for r in bad + fine)
    assert min(r.score for r in bad) > max(r.score for r in fine)
    assert all(r.verdict is Verdict.NG for r in bad)
    assert bad[0].regions  # the heat map still shows where the defect is
