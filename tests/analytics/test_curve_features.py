"""Curve features stored as shot parameters are seen by SPC, root cause and predictive
quality like the machine's own parameters (through the record, as `castline report`
reads it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from castline.analytics import queries, rootcause, spc
from castline.analytics.predict import standard_features
from castline.domain.curve_features import features
from castline.domain.shot import PartKey, Shot
from castline.domain.units import CURVE_NAMES
from castline.sim.fleet import FleetConfig, Hall, ShotEvent
from castline.store import database
from castline.store.repository import Store

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """700 shots of one simulated machine, faults every hour, features filled in as the
    line fills them, each part's truth recorded."""
    path = tmp_path_factory.mktemp("curves") / "castline.db"
    engine = database.open_store(f"sqlite:///{path}")
    store = Store(engine)
    store.ensure_plant("p1")
    config = FleetConfig(machines=1, seed=3, process_fault_every_h=1.0)
    events = (e for e in Hall(config, START).events() if isinstance(e, ShotEvent))
    shots = []
    for e, _ in zip(events, range(700), strict=False):
        assert e.curve is not None
        measured = features(e.curve)
        params = dict(e.params) | (measured.as_parameters() if measured else {})
        shots.append((Shot(PartKey("p1", e.machine, e.shot_number), e.die, e.at, params), e))
    store.record_shots([s for s, _ in shots])
    for shot, e in shots:
        store.record_truth(shot.key, e.truth.defective, e.truth.defect_type)
    return engine


def test_curve_features_reach_spc_root_cause_and_predictive_quality(recorded: Engine) -> None:
    frame = queries.shots(recorded, "p1")
    assert frame["curve_fill_time_ms"].notna().mean() > 0.95
    charts = spc.monitor(recorded, "p1", baseline_shots=300, raise_alarms=False)
    charted = {c["parameter"] for c in charts}
    assert set(CURVE_NAMES) <= charted
    findings = rootcause.rank(frame)
    assert any(f.parameter in CURVE_NAMES for f in findings)
    assert set(CURVE_NAMES) <= set(standard_features(frame).columns)


def test_report_spc_charts_a_curve_feature(
    recorded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from castline.cli import app

    monkeypatch.setenv("CASTLINE_DATABASE_URL", str(recorded.url))
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path))
    result = CliRunner().invoke(
        app,
        [
            "report",
            "spc",
            "--plant",
            "p1",
            "--parameter",
            "curve_fill_time_ms",
            "--baseline",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "curve_fill_time_ms" in result.output or "fill time (curve)" in result.output
