"""`castline import shots` and `castline report ...` end to end on a small KAMP slice."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from castline.cli import app


def test_import_then_reports(
    kamp_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "var"))
    runner = CliRunner()
    source = kamp_data / "process" / "train_group_8600.csv"
    args = ["import", "shots", str(source), "--mapping", "kamp", "--plant", "kamp"]
    first = runner.invoke(app, [*args, "--limit", "800"])
    assert first.exit_code == 0, first.output
    assert "shots added: 800" in first.output
    again = runner.invoke(app, [*args, "--limit", "800"])
    assert "shots added: 0 (already there: 800)" in again.output

    out = tmp_path / "out"
    kpi = runner.invoke(
        app,
        ["report", "kpi", "--plant", "kamp", "--by", "total", "--days", "30", "--out", str(out)],
    )
    assert kpi.exit_code == 0, kpi.output
    assert "die-8600" in kpi.output and (out / "kpi.png").read_bytes().startswith(b"\x89PNG")
    spc = runner.invoke(
        app,
        [
            "report",
            "spc",
            "--plant",
            "kamp",
            "--parameter",
            "melt_temp_c",
            "--baseline",
            "300",
            "--days",
            "30",
        ],
    )
    assert spc.exit_code == 0 and "die-8600/8600 melt_temp_c: Ppk" in spc.output
    listed = runner.invoke(app, ["report", "alarms", "--plant", "kamp"])
    first_id = listed.output.split()[0].lstrip("#")
    acked = runner.invoke(
        app,
        [
            "report",
            "alarms",
            "--plant",
            "kamp",
            "--ack",
            first_id,
            "--who",
            "ana",
            "--cause",
            "sensor",
            "--comment",
            "thermocouple",
        ],
    )
    assert f"alarm {first_id} acknowledged: sensor" in acked.output
    cause = runner.invoke(app, ["report", "rootcause", "--plant", "kamp", "--days", "30"])
    assert cause.exit_code == 0 and "NG of 800 castings" in cause.output
