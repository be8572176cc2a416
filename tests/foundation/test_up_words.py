"""`castline up` says its startup lines, training time and overload warning in the
terminal's language (CASTLINE_LANG, else the locale), flushed at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from castline import app, demo_model
from castline.settings import load
from castline.web.overload import Overload, advice


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_startup_lines_in_the_terminal_language(
    lang: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("CASTLINE_LANG", lang)
    settings = load(home=tmp_path, http_port=9090)
    app._announce(settings, "mqtt://127.0.0.1:1883", "s3cret-pass")
    said = capsys.readouterr().out
    assert "http://127.0.0.1:9090" in said and "s3cret-pass" in said
    assert str(tmp_path / "initial-admin-password") in said
    late = advice(Overload(60, 10, 70, late=50, verdicts=100), machines=9, speed=60)
    if lang == "zh":
        assert "castline 已启动：看板 http://127.0.0.1:9090" in said
        assert "首次登录：admin / s3cret-pass" in said and "按 Ctrl-C 全部停止。" in said
        assert late.startswith("警告：产线处理不过来（一分钟内积压从 10 增至 70 个铸件；")
        assert "--machines 4（当前 9）" in late and "100 个铸件中有 50 个（50%）" in late
        assert demo_model._minutes(300) == "5 分钟" and demo_model._minutes(42) == "42 秒"
    else:
        assert "castline is up: dashboard http://127.0.0.1:9090" in said
        assert "first login: admin / s3cret-pass" in said and "Ctrl-C stops everything." in said
        assert "--machines 4 (now 9)" in late and demo_model._minutes(300) == "5 min"
