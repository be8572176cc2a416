"""`castline vision ...` end to end on synthetic photos, with a SQLite registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from castline.cli import app

from .conftest import Trained, write_parts


def test_train_inspect_eval_register_rollback(
    tiny: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    good = tmp_path / "good"
    write_parts(good, range(200, 240), placed_by_cell=True)
    trained = runner.invoke(
        app,
        [
            "vision",
            "train",
            str(good),
            "--out",
            str(tmp_path / "m"),
            "--input-size",
            "64",
            "--bank-images",
            "12",
        ],
    )
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "m" / "manifest.json").is_file()
    assert "input 64 x 64 px" in trained.output  # square photos, a square input
    # A round part from 12 photos: turned copies until about 800 views.
    assert "turned copies of each photo: 66" in trained.output

    ng = tmp_path / "ng"
    write_parts(ng, range(300, 303), pit=(64, 96, 5))
    out = tmp_path / "overlays"
    inspected = runner.invoke(
        app,
        ["vision", "inspect", str(tiny.folder), *map(str, sorted(ng.iterdir())), "--out", str(out)],
    )
    assert inspected.exit_code == 0, inspected.output
    assert inspected.output.count("\tNG\t") == 3
    assert len(list(out.glob("*.overlay.png"))) == 3
    folder = runner.invoke(app, ["vision", "inspect", str(tiny.folder), str(ng)])
    assert folder.exit_code == 0 and folder.output.count("\tNG\t") == 3, folder.output
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = runner.invoke(app, ["vision", "inspect", str(tiny.folder), str(empty)])
    assert refused.exit_code == 2 and "holds no .jpeg/.jpg/.png/.bmp photos" in refused.output
    assert "Traceback" not in refused.output

    ok = tmp_path / "ok"
    write_parts(ok, range(400, 410))
    metrics_file, report = tmp_path / "metrics.json", tmp_path / "report.html"
    evaluated = runner.invoke(
        app,
        [
            "vision",
            "eval",
            str(tiny.folder),
            "--ok",
            str(ok),
            "--ng",
            str(ng),
            "--json",
            str(metrics_file),
            "--report",
            str(report),
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(metrics_file.read_text())
    for key in ("image_auroc", "escape_rate_at_2pct_frr", "latency_ms_p50", "latency_ms_p99"):
        assert key in metrics
    assert (metrics["n_ok"], metrics["n_ng"]) == (10, 3)
    page = report.read_text()
    assert "data:image/png;base64," in page and "Worst misses" in page

    for model in (tmp_path / "m", tiny.folder):
        registered = runner.invoke(
            app, ["vision", "register", str(model), "--die", "D7", "--view", "top", "--activate"]
        )
        assert registered.exit_code == 0, registered.output
    listed = runner.invoke(app, ["vision", "list"])
    assert f"* D7/top  {tiny.model.version}" in listed.output
    rolled = runner.invoke(app, ["vision", "rollback", "--die", "D7", "--view", "top"])
    assert rolled.exit_code == 0 and tiny.model.version not in rolled.output
    missing = runner.invoke(app, ["vision", "activate", "--die", "D7", "--view", "top", "nope"])
    assert missing.exit_code == 2 and "register it first" in missing.output


def test_copies_can_be_asked_for_or_left_out(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good"
    write_parts(good, range(200, 212), placed_by_cell=True)
    args = ["vision", "train", str(good), "--out", str(tmp_path / "m"), "--input-size", "64"]
    trained = runner.invoke(app, [*args, "--copies", "0"])
    assert trained.exit_code == 0, trained.output
    assert "no copies of the photos" in trained.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["training"]["copies"]["per_photo"] == 0
    assert manifest["training"]["copies"]["how"] == "asked"
    refused = runner.invoke(app, [*args, "--copies", "-1"])
    assert refused.exit_code == 2 and "--copies" in refused.output
    assert "Traceback" not in refused.output
