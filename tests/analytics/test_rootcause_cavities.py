"""Scrap by cavity: a die of two cavities whose second cavity scraps more, read from the
record (SQLite), in root cause, `castline report rootcause` and on the die page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from castline.analytics import rootcause
from castline.cli import app
from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import Verdict
from castline.store import database
from castline.store.repository import Store

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def seed(engine: Engine) -> None:
    """Die D2 (two cavities): cavity 1 scraps 1 in 20, cavity 2 1 in 4. Die D1 (one
    cavity) on another machine: never a row by cavity."""
    store = Store(engine)
    for n in range(1, 41):
        at = START + timedelta(seconds=60 * n)
        store.record_shots([Shot(PartKey("p1", "m1", n), "D2", at, {}, cavities=2)])
        store.record_shots([Shot(PartKey("p1", "m2", n), "D1", at, {})])
        bad = {1: n % 20 == 0, 2: n % 4 == 0}
        for cavity in (1, 2):
            verdict = Verdict.NG if bad[cavity] else Verdict.OK
            store.record_verdict(PartKey("p1", "m1", n, cavity=cavity), verdict, at)
        store.record_verdict(PartKey("p1", "m2", n), Verdict.OK, at)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = database.open_store(f"sqlite:///{tmp_path / 'castline.db'}")
    seed(engine)
    return engine


def test_scrap_by_cavity_in_root_cause(engine: Engine) -> None:
    report = rootcause.report(engine, "p1")
    found = {(c["die"], c["cavity"]): c for c in report["cavities"]}
    assert set(found) == {("D2", 1), ("D2", 2)}  # D1 has one cavity: no split
    assert (found["D2", 1]["ng"], found["D2", 1]["parts"]) == (2, 40)
    assert (found["D2", 2]["ng"], found["D2", 2]["parts"]) == (10, 40)
    low, high = found["D2", 2]["ci"]
    assert low < 0.25 < high and found["D2", 2]["rate"] == pytest.approx(0.25)
    assert report["shots"] == 120  # every casting counts once, D2's two per shot


def test_report_rootcause_prints_scrap_by_cavity(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTLINE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    shown = CliRunner().invoke(app, ["report", "rootcause", "--plant", "p1", "--days", "1"])
    assert shown.exit_code == 0, shown.output
    assert "scrap by cavity: die D2 cavity 2: 10 NG of 40 (25.0 %" in shown.output
    assert "die D1 cavity" not in shown.output
