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


def test_a_file_without_the_castline_table_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "castline.toml"
    config.write_text('[castlin]\nplant = "north"\n')
    with pytest.raises(SettingsError, match=rf"^{config}: no \[castline\] table"):
        load(config)
    config.write_text('castline = "north"\n')
    with pytest.raises(SettingsError, match="no \\[castline\\] table"):
        load(config)


def test_settings_outside_the_table_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "castline.toml"
    config.write_text('home = "x"\n[castline]\nplant = "north"\n[analytics]\nshifts = 3\n')
    with pytest.raises(SettingsError, match="home outside the \\[castline\\] table"):
        load(config)
    config.write_text('[castline]\nplant = "north"\n[analytics]\nshifts = 3\n')
    assert load(config).plant == "north"  # other tables belong to other readers


def test_database_url_is_parsed_when_loaded() -> None:
    with pytest.raises(SettingsError) as err:
        load(database_url="postgresql://x:notaport/y")
    assert "CASTLINE_DATABASE_URL: not a usable SQLAlchemy URL" in str(err.value)
    with pytest.raises(SettingsError, match=r"postgresql\.nodriver"):
        load(database_url="postgresql+nodriver://x/y")
    assert load(database_url="postgresql://castline@db/castline").db_url.endswith("db/castline")


@pytest.mark.parametrize("url", ["localhost", "nats://", "nats://host:port", "http://h:4222",
                                 "nats://a:4222,b:4222"])  # fmt: skip
def test_a_nats_url_that_is_no_server_is_refused(url: str) -> None:
    for setting in ("nats_url", "uplink_url"):
        with pytest.raises(SettingsError, match="is no NATS server URL"):
            load(**{setting: url})


def test_a_cluster_of_nats_servers_is_a_nats_url() -> None:
    urls = "nats://a:4222,tls://user:pw@b:4222, nats://c"
    assert load(nats_url=urls).nats_url == urls
