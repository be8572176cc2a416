"""`castline report alarms --ack`: a named cause and a sentence, as on the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from castline.analytics import alarms
from castline.cli import app
from castline.settings import load as load_settings
from castline.store import database
from castline.store import tables as t

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def _alarm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plant: str) -> int:
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "var"))
    engine = database.open_store(load_settings().db_url)
    alarm_id, _ = alarms.raise_alarm(
        engine, plant, "m1", "8412", "melt_temp_c", "nelson1", "beyond the limits", at=T0
    )
    return alarm_id


def _ack(alarm_id: int, *extra: str) -> list[str]:
    return ["report", "alarms", "--plant", "p1", "--ack", str(alarm_id), "--who", "ana", *extra]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--comment", "ladle probe"], "no --cause: one of melt,"),
        (["--cause", "gremlins", "--comment", "ladle probe"], "'gremlins' is not a named cause"),
        (["--cause", "sensor"], "--ack needs --comment TEXT"),
        (["--cause", "sensor", "--comment", "   "], "--ack needs --comment TEXT"),
    ],
)
def test_ack_without_a_named_cause_is_one_line_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], says: str
) -> None:
    alarm_id = _alarm(tmp_path, monkeypatch, "p1")
    result = CliRunner().invoke(app, _ack(alarm_id, *extra))
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = result.output.strip().splitlines()
    assert says in line and "Traceback" not in result.output
    listed = CliRunner().invoke(app, ["report", "alarms", "--plant", "p1"])
    assert f"#{alarm_id} " in listed.output and " open " in listed.output


def test_ack_with_a_cause_closes_it_and_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alarm_id = _alarm(tmp_path, monkeypatch, "p1")
    runner = CliRunner()
    args = _ack(alarm_id, "--cause", "sensor", "--comment", "ladle probe replaced")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"alarm {alarm_id} acknowledged: sensor" in result.output
    engine = database.open_store(load_settings().db_url)
    with engine.connect() as conn:
        row = conn.execute(select(t.alarms).where(t.alarms.c.id == alarm_id)).mappings().one()
        audited = conn.execute(select(t.audit_log.c.action, t.audit_log.c.detail)).all()
    assert row["cause_category"] == "sensor" and row["acked_by"] == "ana"
    assert row["cleared_at"] is not None and row["ack_comment"] == "ladle probe replaced"
    assert [(a, d["cause"]) for a, d in audited] == [("alarm.ack", "sensor")]
    assert "no open alarm" in runner.invoke(app, args).output  # closed already


def test_ack_of_another_plants_alarm_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alarm_id = _alarm(tmp_path, monkeypatch, "p2")
    result = CliRunner().invoke(app, _ack(alarm_id, "--cause", "melt", "--comment", "ladle"))
    assert f"no open alarm {alarm_id} in plant p1" in result.output
    listed = CliRunner().invoke(app, ["report", "alarms", "--plant", "p2"])
    assert f"#{alarm_id} " in listed.output and " open " in listed.output
