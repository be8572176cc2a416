"""The plant's analytics configuration is a setting: the dashboard and `castline report`
read the same file and give the same figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from castline.analytics import kpis
from castline.analytics.config import AnalyticsConfig, of
from castline.cli import app as cli
from castline.settings import Settings, SettingsError, load
from castline.web.app import create_app
from castline.web.auth import Role, add_user, new_api_key

from .plant import at, record_shift

SLOW_PRI = "planned_cycle_time_s = 120\n[lines]\nline1 = ['m1']\n"


def test_home_analytics_file_is_the_default(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).analytics_file is None
    assert of(Settings(home=tmp_path)) == AnalyticsConfig()
    (tmp_path / "analytics.toml").write_text(SLOW_PRI)
    settings = Settings(home=tmp_path)
    assert settings.analytics_file == tmp_path / "analytics.toml"
    assert of(settings).planned_cycle_time_s == 120.0
    assert of(settings).line_of("m1") == "line1"
    other = tmp_path / "other.toml"
    other.write_text("planned_cycle_time_s = 45\n")
    assert of(Settings(home=tmp_path, analytics_file=other)).planned_cycle_time_s == 45.0


def test_a_missing_analytics_file_is_a_settings_error(tmp_path: Path) -> None:
    config = tmp_path / "castline.toml"
    config.write_text(f'[castline]\nhome = "{tmp_path}"\nanalytics_file = "{tmp_path}/nope.toml"\n')
    with pytest.raises(SettingsError, match=r"castline.toml:3 \(analytics_file\): .*not a file"):
        load(config)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('planned_cycle_time_s = "fast"\n', r":1 \(planned_cycle_time_s\): must be a number > 0"),
        ("planned_cycle_time_s = 0\n", r":1 \(planned_cycle_time_s\)"),
        ("[lines]\nline1 = 'm1'\n", r":2 \(lines.line1\): must be a list"),
        ("cycle = 60\n", r":1 \(cycle\): unknown analytics setting"),
        ("[rated_life_by_die]\n8412 = 0\n", r":2 \(rated_life_by_die.8412\): must be a whole"),
        (
            "[spec.default]\nmelt_temp_c = { lsl = 750, usl = 650 }\n",
            r":2 \(spec.default.melt_temp_c\): lsl 750.0 must lie below usl 650.0",
        ),
        ("[spec.8412.die_temp_fixed_c]\nlsl = 100\nusl = 'hot'\n", r":3 \(spec.8412.*usl\)"),
        ("[spec.8412.melt]\nlsl = 1\n", r":1 \(spec.8412.melt\): unknown parameter"),
        ("shift_hours = 8\nplanned_cycle_time_s = \n", r":2: not valid TOML"),
    ],
)
def test_a_wrong_analytics_file_names_file_line_and_key(
    tmp_path: Path, text: str, where: str
) -> None:
    (tmp_path / "analytics.toml").write_text(text)
    with pytest.raises(ValueError, match="analytics config .*analytics.toml" + where):
        of(Settings(home=tmp_path))


def test_dashboard_and_report_agree_on_oee(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OEE depends on the planned cycle time: 120 s in the home's analytics.toml doubles
    the effectiveness of the default 60 s, in the API and the report alike."""
    record_shift(engine)
    home = tmp_path / "home"
    home.mkdir()
    (home / "analytics.toml").write_text(SLOW_PRI)
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("CASTLINE_HOME", str(home))
    monkeypatch.setenv("CASTLINE_DATABASE_URL", url)
    since, until = at(6).isoformat(), at(14).isoformat()

    out = tmp_path / "out"
    args = ["report", "kpi", "--plant", "p1", "--by", "total", "--level", "line"]
    ran = CliRunner().invoke(cli, [*args, "--since", since, "--until", until, "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    (reported,) = json.loads((out / "kpi.json").read_text())

    add_user(engine, "ana", "correct horse battery", Role.VIEWER)
    key = new_api_key(engine, "ana")
    settings = Settings(home=home, database_url=url, secret_key="test-secret-not-for-production")
    query = {"since": since, "until": until, "by": "total", "level": "line"}
    with TestClient(create_app(settings, engine)) as client:
        answer = client.get("/api/v1/plants/p1/kpis", params=query, headers={"X-API-Key": key})
    assert answer.status_code == 200, answer.text
    (shown,) = answer.json()

    assert shown["unit"] == reported["unit"] == "line1"  # the file's lines, both sides
    assert shown["oee"] == pytest.approx(reported["oee"], rel=1e-12)
    (default,) = kpis.kpi_table(engine, "p1", at(6), at(14), by="total", level="line")
    assert reported["oee"] == pytest.approx(2 * default["oee"])


def test_report_analytics_option_overrides_the_setting(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_shift(engine)
    home = tmp_path / "home"
    home.mkdir()
    (home / "analytics.toml").write_text(SLOW_PRI)
    once = tmp_path / "once.toml"
    once.write_text("planned_cycle_time_s = 30\n")
    monkeypatch.setenv("CASTLINE_HOME", str(home))
    monkeypatch.setenv("CASTLINE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    figures = {}
    for name, extra in (("home", []), ("once", ["--analytics", str(once)])):
        out = tmp_path / name
        args = ["report", "kpi", "--plant", "p1", "--by", "total", "--level", "plant"]
        window = ["--since", at(6).isoformat(), "--until", at(14).isoformat()]
        ran = CliRunner().invoke(cli, [*args, *window, *extra, "--out", str(out)])
        assert ran.exit_code == 0, ran.output
        (row,) = json.loads((out / "kpi.json").read_text())
        figures[name] = row["effectiveness"]
    assert figures["home"] == pytest.approx(4 * figures["once"])  # 120 s against 30 s
