"""The `castline` command speaks Chinese or English: `CASTLINE_LANG`, else the locale
(`LC_ALL`, `LC_MESSAGES`, `LANG`), else English; errors stay one line (or click's usage
block) with the same exit codes in both languages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from castline.cli import app
from castline.cli_text import EN, ZH, language, parse_lang, say, translated

runner = CliRunner()
LOCALE = ("CASTLINE_LANG", "LC_ALL", "LC_MESSAGES", "LANG")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("CASTLINE_") or k in LOCALE]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))


def test_the_language_comes_from_castline_lang_then_the_locale() -> None:
    assert language({}) == "en"
    assert language({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert language({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}) == "en"  # LC_ALL first
    assert language({"LC_MESSAGES": "zh_TW", "LANG": "en_US.UTF-8"}) == "zh"
    assert language({"CASTLINE_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}) == "en"
    assert language({"CASTLINE_LANG": "zh", "LANG": "en_GB.UTF-8"}) == "zh"
    assert language({"CASTLINE_LANG": "klingon", "LANG": "zh_CN"}) == "zh"  # ignored
    assert language({"LANG": "de_DE.UTF-8"}) == "en"
    assert [parse_lang(v) for v in ("zh-Hans", "zh_CN.GB18030", "POSIX", "fr", "")] == [
        "zh",
        "zh",
        "en",
        None,
        None,
    ]


def test_both_catalogues_hold_the_same_messages() -> None:
    assert set(EN) == set(ZH)
    for key in EN:
        assert EN[key].count("{") == ZH[key].count("{"), key


def test_an_unknown_option_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    result = runner.invoke(app, ["up", "--prot", "9090"], prog_name="castline")
    assert result.exit_code == 2
    assert "运行 'castline up --help' 查看帮助。" in result.stderr
    assert "错误：没有选项 --prot（可用的选项：--host, --port）" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_option_in_english_is_clicks_own() -> None:
    result = runner.invoke(app, ["up", "--prot", "9090"], prog_name="castline")
    assert result.exit_code == 2
    assert "Error: No such option: --prot (Possible options: --host, --port)" in result.stderr
    assert "Try 'castline up --help' for help." in result.stderr


def test_a_missing_argument_and_command_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASTLINE_LANG", "zh")
    missing = runner.invoke(app, ["vision", "register", "M", "--die", "D1"])
    assert missing.exit_code == 2 and "缺少选项 '--view'。" in missing.stderr
    unknown = runner.invoke(app, ["no-such-thing"])
    assert unknown.exit_code == 2 and "没有命令 'no-such-thing'。" in unknown.stderr
    assert runner.invoke(app, ["version"]).exit_code == 0
    assert "Usage:" in runner.invoke(app, []).output  # no arguments: the help, as before


def test_settings_errors_in_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASTLINE_LANG", "zh")
    stray = tmp_path / "plant.toml"
    stray.write_text("plant = 'cq'\n")
    result = runner.invoke(app, ["config", "--config", str(stray)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{stray}：没有 [castline] 表；请把设置写在一行 [castline] 之下"
    gone = runner.invoke(app, ["config", "--config", str(tmp_path / "none.toml")])
    assert gone.exit_code == 2 and "找不到配置文件" in gone.stderr
    monkeypatch.setenv("CASTLINE_DATABASE_URL", "postgres:/nowhere")
    bad = runner.invoke(app, ["db", "current"])
    assert bad.exit_code == 2
    assert bad.stderr.splitlines()[:2] == ["配置无效：", "  设置 CASTLINE_DATABASE_URL：" + (
        bad.stderr.splitlines()[1].split("：", 1)[1]
    )]  # fmt: skip


def test_a_missing_model_and_a_dead_database_in_chinese(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    model = tmp_path / "no-model"
    result = runner.invoke(app, ["vision", "inspect", str(model), str(tmp_path)])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"错误：{model} 处没有模型：请先用 `castline vision train` 训练一个"
    )
    monkeypatch.setenv("CASTLINE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    dead = runner.invoke(app, ["db", "current"])
    assert dead.exit_code == 1
    line = dead.stderr.strip()
    assert line.startswith("错误：无法使用数据库：") and "请检查设置 database_url" in line
    assert len(line.splitlines()) == 1 and "Traceback" not in dead.output


def test_a_summary_in_both_languages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    monkeypatch.setenv("CASTLINE_LANG", "zh")
    assert runner.invoke(app, ["db", "current"]).stdout.strip() == "（空）"
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and "：当前版本 " in upgraded.stdout
    monkeypatch.setenv("CASTLINE_LANG", "en")
    assert ": at " in runner.invoke(app, ["db", "upgrade"]).stdout


def test_an_unrecognised_message_is_kept_as_raised() -> None:
    assert translated("something only a newer castline says", "zh") == (
        "something only a newer castline says"
    )
    assert say("error", "zh", message="x") == "错误：x"
    assert say("error", "en", message="x") == "error: x"
