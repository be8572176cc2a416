"""`castline vision update`: confirmed photos folded into a model by hand, and every
mistake said in one line, in English or Chinese, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from castline.cli import app
from castline.vision.head import MIN_DEFECTS, HeadData
from castline.vision.model import InspectionModel
from castline.vision.train import TrainConfig, train_model

from .synthetic import part, save

QUICK = TrainConfig(
    input_size=64, memory_rows=128, folds=3, target_frr=0.05, review_frr=0.10, threads=1
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("update-cli")
    paths = []
    for seed in range(20):
        path = root / f"good_{seed:02d}.png"
        save(part(seed), str(path))
        paths.append(path)
    train_model(paths, root / "trained", progress=False, config=QUICK)
    return root / "trained"


def _folders(root: Path) -> tuple[Path, Path]:
    ok, ng = root / "ok", root / "ng"
    ok.mkdir()
    ng.mkdir()
    for i in range(2):
        save(part(100 + i, angle=90.0), str(ok / f"turned_{i}.png"))
    for i in range(MIN_DEFECTS + 2):
        angle = 2.0 * np.pi * i / (MIN_DEFECTS + 2)
        pit = (int(64 + 38 * np.cos(angle)), int(64 + 38 * np.sin(angle)), 3)
        save(part(800 + i, pit=pit), str(ng / f"pit_{i}.png"))
    return ok, ng


def test_update_folds_folders_into_a_new_model_folder(trained: Path, tmp_path: Path) -> None:
    ok, ng = _folders(tmp_path)
    out = tmp_path / "updated"
    args = ["vision", "update", str(trained), "--ok", str(ok), "--ng", str(ng)]
    done = CliRunner().invoke(app, [*args, "--out", str(out), "--defect-type", "cold_shut"])
    assert done.exit_code == 0, done.output
    assert "2 good photo(s) into the memory" in done.output
    assert "supervised head created" in done.output
    model = InspectionModel.load(out)
    learnt = model.manifest["learnt_from_reviews"]
    assert model.manifest["score"] == "head" and learnt["good_added"] == 2
    assert {p["defect_type"] for p in learnt["defects_confirmed"]} == {"cold_shut"}
    data = HeadData.load(out)
    assert data is not None and len(data.bad) == MIN_DEFECTS + 2 and len(data.reviewed_good) == 2
    assert InspectionModel.load(trained).manifest["score"] == "anomaly"  # the source stays


def test_update_registers_a_version_of_a_die_and_view(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    registered = runner.invoke(
        app, ["vision", "register", str(trained), "--die", "D7", "--view", "top", "--activate"]
    )
    assert registered.exit_code == 0, registered.output
    ok, _ = _folders(tmp_path)
    done = runner.invoke(app, ["vision", "update", "--die", "D7", "--view", "top", "--ok", str(ok)])
    assert done.exit_code == 0, done.output
    assert "D7/top: registered" in done.output and "castline vision activate" in done.output
    listed = runner.invoke(app, ["vision", "list"]).output
    assert f"* D7/top  {InspectionModel.load(trained).version}  " in listed  # still active
    nothing = runner.invoke(app, ["vision", "update", "--die", "D7", "--view", "top", "--reviews"])
    assert nothing.exit_code == 2 and "no reviews wait to be learnt" in nothing.output


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_mistake_is_one_line_in_the_users_language(
    trained: Path, tmp_path: Path, lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CASTLINE_LANG", lang)
    ok, ng = _folders(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a photo")
    bare = tmp_path / "bare"  # a model folder from before the head's data was kept
    bare.mkdir()
    for name in ("manifest.json", "model.onnx"):
        (bare / name).write_bytes((trained / name).read_bytes())
    m, out = str(trained), str(tmp_path / "new")
    mistakes = {
        "nothing": [m, "--out", out],
        "no_out": [m, "--ok", str(ok)],
        "out_exists": [m, "--ok", str(ok), "--out", str(ok)],
        "both_ways": [m, "--die", "D", "--view", "v", "--ok", str(ok)],
        "neither": ["--ok", str(ok)],
        "die_alone": ["--die", "D", "--ok", str(ok)],
        "reviews_with_dirs": ["--die", "D", "--view", "v", "--reviews", "--ok", str(ok)],
        "not_a_folder": [m, "--ok", str(tmp_path / "nowhere"), "--out", out],
        "empty": [m, "--ok", str(tmp_path / "empty"), "--out", out],
        "broken": [m, "--ok", str(tmp_path / "broken"), "--out", out],
        "in_both": [m, "--ok", str(ok), "--ng", str(ok), "--out", out],
        "no_model": [str(tmp_path / "nomodel"), "--ok", str(ok), "--out", out],
        "no_head_data": [str(bare), "--ng", str(ng), "--out", out],
        "no_active": ["--die", "D", "--view", "v", "--ok", str(ok)],
        "long_type": [m, "--ng", str(ng), "--out", out, "--defect-type", "x" * 41],
    }
    for name, args in mistakes.items():
        said = CliRunner().invoke(app, ["vision", "update", *args])
        assert said.exit_code == 2, (name, said.output)
        assert "Traceback" not in said.output, name
        assert said.exception is None or isinstance(said.exception, SystemExit), name
        line = said.output.strip()
        assert line.startswith("错误：" if lang == "zh" else "error: "), (name, line)
        assert len(line.splitlines()) == 1, (name, line)
        if lang == "zh":
            # Chinese words, only paths, options and commands left in Latin letters
            assert any("\u4e00" <= c <= "\u9fff" for c in line), (name, line)
    assert not (tmp_path / "new").exists()
