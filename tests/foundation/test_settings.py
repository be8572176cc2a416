from __future__ import annotations

from pathlib import Path

import pytest

from castline.settings import SettingsError, load


def test_defaults_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASTLINE_PLANT", raising=False)
    config = tmp_path / "castline.toml"
    config.write_text('[castline]\nplant = "north"\nhome = "x"\n')
    settings = load(config)
    assert settings.plant == "north"
    assert settings.db_url == "sqlite:///x/castline.db"


def test_environment_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "castline.toml"
    config.write_text('[castline]\nplant = "north"\n')
    monkeypatch.setenv("CASTLINE_PLANT", "south")
    assert load(config).plant == "south"


def test_errors_name_the_setting_and_line(tmp_path: Path) -> None:
    config = tmp_path / "castline.toml"
    config.write_text('[castline]\nplant = "p1"\n\nverdict_deadline_s = -1\ncolour = "red"\n')
    with pytest.raises(SettingsError) as err:
        load(config)
    text = str(err.value)
    assert f"{config}:4 (verdict_deadline_s)" in text
    assert f"{config}:5 (colour): unknown setting" in text


def test_env_error_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASTLINE_HTTP_PORT", "eighty")
    with pytest.raises(SettingsError, match="CASTLINE_HTTP_PORT"):
        load()


def test_bad_database_url_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CASTLINE_DATABASE_URL"):
        load(database_url="mysql://x")
    with pytest.raises(SettingsError, match="not found"):
        load(tmp_path / "nope.toml")
