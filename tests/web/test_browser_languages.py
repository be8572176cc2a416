"""Every page in English and Chinese in a real browser: no console error, no message id
left untranslated, no raw dict or JSON, every time labelled with the plant's zone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from castline.web.i18n import EN

from .conftest import Server
from .test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.slow

PAGES = (
    ("overview", "/plants/p1"),
    ("machine", "/plants/p1/machines/m1"),
    ("part", "/plants/p1/parts/m1/3"),
    ("reviews", "/reviews"),
    ("alarms", "/alarms"),
    ("models", "/models"),
    ("rollback", "/models/rollback?die=D1&view=front"),
    ("dies", "/dies"),
    ("kpi", "/kpi"),
    ("dead-letters", "/dead-letters"),
    ("users", "/users"),
    ("api", "/docs"),
    ("plants", "/"),
)
PREFIXES = "|".join(sorted({k.split(".")[0] for k in EN}))
IDS = re.compile(rf"(?<![/\w-])(?:{PREFIXES})\.[a-z_]+(?:\.[a-z_]+)*\b")
RAW = re.compile(r"""\{['"]\w+['"]\s*:|\[\{|\bNone\b|\bTrue\b|\bFalse\b""")
TIME = re.compile(r"\b20\d\d-\d\d-\d\d \d\d:\d\d(?::\d\d)?(?![:\d])(?! (?:CST|[+-]\d\d:\d\d))")
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def watched(browser: Any, server: Server) -> Any:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_page_in_both_languages(watched: Any, server: Server, lang: str) -> None:
    page = watched
    log_in(page, "admin_user")
    for name, url in PAGES:
        page.goto(url + ("&" if "?" in url else "?") + f"lang={lang}")
        page.wait_for_load_state("networkidle")
        text = page.locator("body").inner_text()
        where = f"{lang} {url}"
        assert page.errors == [], f"{where}: {page.errors}"
        assert IDS.findall(text) == [], f"{where}: untranslated {IDS.findall(text)}"
        assert RAW.findall(text) == [], f"{where}: raw data {RAW.findall(text)}"
        assert TIME.findall(text) == [], f"{where}: times without a zone {TIME.findall(text)}"
        broken = page.evaluate(
            "[...document.images].filter(i => i.getAttribute('src') && i.complete"
            " && i.naturalWidth === 0).map(i => i.src)"
        )
        assert broken == [], f"{where}: images that did not load {broken}"
        if lang == "zh":
            assert len(HAN.findall(text)) > 10, f"{where}: hardly any Chinese"
            assert "Log out" not in text and "退出登录" in text
        else:
            assert not HAN.findall(text.replace("中文", "")), f"{where}: Chinese on an English page"
        page.screenshot(path=str(ARTIFACTS / f"lang-{lang}-{name}.png"), full_page=True)
