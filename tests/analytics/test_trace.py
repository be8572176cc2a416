"""`castline trace`: a part's history from the record (SQLite and PostgreSQL), by
data-matrix code or part key, as text and JSON."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from castline.analytics import alarms
from castline.analytics.trace import TraceError, trace
from castline.cli import app
from castline.domain.curve import ShotCurve
from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict, Verdict
from castline.sim.calibration import PROFILES
from castline.sim.curves import CurveFault, CurveProfile, conditions, shot_curve
from castline.sim.process import ProcessModel
from castline.store import database
from castline.store.blobs import BlobStore
from castline.store.repository import PhotoRecord, Store

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
DIE = "8412-1"
GOOD = 40  # good shots before the parts under trace


def curves(n: int, fault: CurveFault | None = None) -> list[ShotCurve]:
    rng = np.random.default_rng(7)
    process = ProcessModel(PROFILES[0], rng, 60.0)
    profile = CurveProfile.draw(rng, process)
    out = [shot_curve(profile, conditions(profile, process, process.next_shot({})), rng)]
    for _ in range(n):
        faults = frozenset({fault}) if fault else frozenset()
        shot = conditions(profile, process, process.next_shot({}), faults)
        out.append(shot_curve(profile, shot, rng))
    return out[1:]


def key(n: int) -> PartKey:
    return PartKey("p1", "dcm-01", n)


@pytest.fixture
def home(engine: Engine, tmp_path: Path) -> tuple[Engine, BlobStore]:
    """A plant's record: 40 good shots, then part 100 (good, marked DMC-100) and part
    101 (late switch-over), with photos, verdicts and heat maps, and an alarm."""
    database.upgrade(engine)
    store, blobs = Store(engine), BlobStore(tmp_path / "blobs")
    store.ensure_plant("p1")
    made = curves(GOOD + 1)
    late = curves(1, CurveFault.LATE_SWITCHOVER)[0]
    shots = [
        Shot(key(i), DIE, T0 + timedelta(minutes=i), {"melt_temp_c": 700.0 + i}, curve=c)
        for i, c in enumerate(made[:GOOD])
    ]
    marked = PartKey("p1", "dcm-01", 100, "DMC-100")
    shots.append(
        Shot(marked, DIE, T0 + timedelta(hours=2), {"melt_temp_c": 701.0}, curve=made[GOOD])
    )
    shots.append(replace(shots[-1], key=key(101), curve=late, at=T0 + timedelta(hours=3)))
    store.record_shots(shots)
    for s in shots:
        photo = blobs.put(f"jpeg {s.key}".encode())
        heat = blobs.put(f"png {s.key}".encode())
        told = PartVerdict(Verdict.OK, s.at + timedelta(seconds=1), "", 0.1, "8412-1/front/v3")
        store.record_part(s.key, told, PhotoRecord("front", s.at, photo, "image/jpeg", heat))
    alarms.raise_alarm(
        engine,
        "p1",
        "dcm-01",
        DIE,
        "melt_temp_c",
        "nelson1",
        "melt hot",
        at=T0 + timedelta(minutes=90),
    )
    alarms.raise_alarm(
        engine,
        "p1",
        "dcm-02",
        DIE,
        "melt_temp_c",
        "nelson1",
        "other machine",
        at=T0 + timedelta(minutes=90),
    )
    return engine, blobs


def test_a_good_part_traces_in_full(home: tuple[Engine, BlobStore]) -> None:
    engine, blobs = home
    result = trace(engine, key(100), blobs).as_json()
    assert set(result) == {
        "part",
        "shot",
        "curve_features",
        "envelope",
        "inspections",
        "downstream",
        "alarms",
    }
    assert result["part"]["data_matrix"] == "DMC-100" and result["part"]["die"] == DIE
    assert result["shot"]["melt_temp_c"] == 701.0
    assert 2 < result["curve_features"]["fast_velocity_mean_mps"] < 6
    assert result["envelope"]["result"] == "inside" and result["envelope"]["learnt_from"] == GOOD
    (photo,) = result["inspections"]
    assert photo["verdict"] == "OK" and photo["model_version"] == "8412-1/front/v3"
    assert Path(photo["heatmap"]).read_bytes() == b"png p1/dcm-01/100"
    assert result["downstream"] == []
    assert [a["message"] for a in result["alarms"]] == ["melt hot"]  # this machine's, open then


def test_a_late_switchover_breaches_and_early_parts_have_no_envelope(
    home: tuple[Engine, BlobStore],
) -> None:
    engine, blobs = home
    late = trace(engine, key(101), blobs)
    assert late.envelope.result == "breach" and late.envelope.breach is not None
    assert late.envelope.breach["trace"] in ("position_mm", "squeeze_mm", "pressure_bar")
    early = trace(engine, key(3), blobs)
    assert early.envelope.result == "no envelope" and early.envelope.learnt_from == 3
    assert early.alarms == []  # raised after this shot
    with pytest.raises(TraceError, match="no record"):
        trace(engine, key(999), blobs)


def test_the_command_answers_by_code_and_by_key_in_text_and_json(
    home: tuple[Engine, BlobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, blobs = home
    monkeypatch.setenv("CASTLINE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CASTLINE_BLOB_DIR", str(blobs.root))
    runner = CliRunner()
    started = time.perf_counter()
    by_code = runner.invoke(app, ["trace", "--dmc", "DMC-100", "--json"])
    elapsed = time.perf_counter() - started
    assert by_code.exit_code == 0, by_code.output
    data = json.loads(by_code.output)
    assert data["part"]["key"] == "p1/dcm-01/100" and data["envelope"]["result"] == "inside"
    assert elapsed < 5  # the command as a whole; the trace itself is timed in benchmarks
    text = runner.invoke(app, ["trace", "p1", "dcm-01", "101"])
    assert text.exit_code == 0, text.output
    assert "envelope: breach" in text.output and "model 8412-1/front/v3" in text.output
    missing = runner.invoke(app, ["trace", "--dmc", "NOPE"])
    assert missing.exit_code == 1 and "NOPE" in missing.output
    both = runner.invoke(app, ["trace", "--dmc", "X", "p1", "dcm-01", "1"])
    assert both.exit_code == 2
