"""English and Chinese: the catalogues, the choice of language, and pages in both."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from castline.web import i18n
from castline.web.i18n import EN, ZH, Translator, choose, from_accept_language

from .conftest import as_user

TEMPLATES = Path(i18n.__file__).parent / "templates"
DYNAMIC = ("verdict.", "state.", "sev.", "role.", "status.", "problem.", "stop.", "cause.")


def test_both_catalogues_hold_the_same_ids_and_fields() -> None:
    assert set(EN) == set(ZH)
    for key in EN:
        assert set(re.findall(r"\{(\w+)\}", EN[key])) == set(re.findall(r"\{(\w+)\}", ZH[key])), key


def test_every_id_a_template_asks_for_is_in_the_catalogue() -> None:
    asked = set()
    for template in TEMPLATES.glob("*.html"):
        asked |= set(re.findall(r"""\bt\(\s*['"]([\w.]+)['"]""", template.read_text()))
    assert len(asked) > 150
    missing = sorted(k for k in asked if k not in EN and not k.endswith(DYNAMIC))
    assert missing == []


def test_the_die_casters_words() -> None:
    zh = Translator("zh")
    assert [zh.verdict(v) for v in ("OK", "NG", "REVIEW", "QUARANTINE")] == [
        "合格", "不合格", "待复检", "隔离",
    ]  # fmt: skip
    assert zh("review.title") == "复检队列"
    assert zh("overview.scrap_today") == "今日废品率" and zh("overview.yield_today") == "今日良品率"
    assert zh("nav.dies") == "模具" and zh("word.machine") == "压铸机"
    assert zh.state("breakdown") == "故障停机" and zh.state("no_such_state") == "no_such_state"
    assert zh("no.such.id") == "no.such.id"  # shown as itself: the page walk catches it


def test_language_query_then_cookie_then_user_then_browser() -> None:
    assert choose("zh", "en", "en", "en") == "zh"
    assert choose(None, "zh", "en", "en") == "zh"
    assert choose("xx", None, "zh", "en") == "zh"
    assert choose(None, None, None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert choose(None, None, None, "fr") == "en"
    assert from_accept_language("en;q=0.5, zh-Hans;q=0.9") == "zh"
    assert from_accept_language("zh;q=0, en-GB") == "en"
    assert from_accept_language("de, fr;q=bad") is None


def test_lang_query_is_remembered_and_the_browser_chooses_otherwise(
    client: TestClient, plant: tuple[object, object]
) -> None:
    viewer = as_user(plant[1], "viewer")  # type: ignore[arg-type]
    english = client.get("/reviews", headers=viewer)
    assert "Review queue" in english.text and '<html lang="en">' in english.text
    chinese = client.get("/reviews?lang=zh", headers=viewer)
    assert "复检队列" in chinese.text and '<html lang="zh-CN">' in chinese.text
    assert "Review queue" not in chinese.text
    assert client.cookies.get(i18n.COOKIE) == "zh"
    assert "报警" in client.get("/alarms", headers=viewer).text  # the cookie remembers
    client.cookies.clear()
    browser = client.get("/alarms", headers=viewer | {"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "报警" in browser.text and "未处理" in browser.text
    assert "Acknowledge" not in browser.text
    back = client.get("/alarms?lang=en", headers=viewer)
    assert "Alarms" in back.text and "报警" not in back.text


def test_a_chinese_chart_is_drawn(client: TestClient, plant: tuple[object, object]) -> None:
    viewer = as_user(plant[1], "viewer")  # type: ignore[arg-type]
    english = client.get("/api/v1/dies.png", headers=viewer)
    chinese = client.get("/api/v1/dies.png", headers=viewer | {"Accept-Language": "zh"})
    assert english.status_code == chinese.status_code == 200
    assert chinese.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert english.content != chinese.content  # other words on the axis
