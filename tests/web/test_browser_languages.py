"""Every page in English and Chinese in a real browser: no console error, no blank panel,
no message id left untranslated, no raw dict or JSON, every time labelled with the plant's
zone, every image loaded; and the overview puts machines with open alarms first.

With `CASTLINE_DOC_SCREENSHOTS=1` the walk also writes the screenshots of docs/web.md
(`docs/img/web-<page>-<lang>.png`, the first screen of each page, 1000 px wide, 64
colours, so the docs stay small)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import insert

from castline.domain.plant import Machine
from castline.domain.states import MachineState
from castline.store import tables as t
from castline.store.repository import Store
from castline.web.i18n import EN

from .conftest import PASSWORD, Server
from .test_browser import ARTIFACTS, browser  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.slow

DOCS_IMG = Path(__file__).parents[2] / "docs" / "img"
# Every page of web/pages.py and web/stops_page.py a person opens (the review form is on
# /reviews and the part page; audit rows and API keys are on /users).
PAGES = (
    ("overview", "/plants/p1"),
    ("machine", "/plants/p1/machines/m1"),
    ("part", "/plants/p1/parts/m1/3"),
    ("reviews", "/reviews"),
    ("alarms", "/alarms"),
    ("models", "/models"),
    ("promote", "/models/{v3}/promote"),
    ("rollback", "/models/rollback?die=D1&view=front"),
    ("dies", "/dies"),
    ("kpi", "/kpi"),
    ("benefit", "/benefit"),
    ("downtime", "/downtime"),
    ("dead-letters", "/dead-letters"),
    ("users", "/users"),
    ("api", "/docs"),
    ("plants", "/"),
    ("not-found", "/plants/p1/parts/m1/77"),
)
PREFIXES = "|".join(sorted({k.split(".")[0] for k in EN}))
IDS = re.compile(rf"(?<![/\w-])(?:{PREFIXES})\.[a-z_]+(?:\.[a-z_]+)*\b")
RAW = re.compile(r"""\{['"]\w+['"]\s*:|\[\{|\bNone\b|\bTrue\b|\bFalse\b""")
TIME = re.compile(r"\b20\d\d-\d\d-\d\d \d\d:\d\d(?::\d\d)?(?![:\d])(?! (?:CST|[+-]\d\d:\d\d))")
ISO = re.compile(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d")  # a stored time shown as stored
HAN = re.compile(r"[\u4e00-\u9fff]")
BLANK = """[...document.querySelectorAll('.card, article.tile, main section')]
  .filter(e => e.offsetParent !== null && !e.innerText.trim()
               && !e.querySelector('img:not([hidden]), svg, canvas'))
  .map(e => e.outerHTML.slice(0, 120))"""
EMPTY_TABLES = """[...document.querySelectorAll('table')]
  .filter(e => e.offsetParent !== null && e.tBodies.length
               && [...e.tBodies].every(b => b.rows.length === 0))
  .map(e => e.outerHTML.slice(0, 120))"""
PROSE = """(() => { const b = document.body.cloneNode(true);
  b.querySelectorAll('code, pre, script, style').forEach(e => e.remove());
  return b.textContent; })()"""
ALARM_ORDER = """[...document.querySelectorAll('article.tile')]
  .map(e => [e.dataset.machine, Number(e.querySelector('[data-field=alarms]').innerText)])"""


@pytest.fixture
def watched(browser: Any, server: Server) -> Any:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1000, "height": 800}, base_url=server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def alarm_on_a_quiet_machine(server: Server) -> None:
    """m3 has nothing but an open alarm: sorted by name it would come last of p1."""
    engine = server.plant.engine
    now = datetime.now(UTC)
    Store(engine).ensure_machine("p1", Machine("m3", name="M3"))
    Store(engine).record_state("p1", "m3", MachineState.RUNNING, now, "D1")
    with engine.begin() as conn:
        conn.execute(
            insert(t.alarms).values(
                plant="p1", machine="m3", die="D1", subject="melt_temp_c", rule="nelson1",
                severity="warning", message="melt temperature beyond 3 sigma",
                dedup_key="p1/m3/melt", raised_at=now, last_seen_at=now, count=1,
            )
        )  # fmt: skip


def benefit_plan(server: Server) -> None:
    """A declared [benefit] plan, so the benefit page shows its figures and assumptions."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    at = [(day - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in (9, 2, 2)]
    settings = server.app.state.settings
    settings.analytics_file = settings.home / "analytics.toml"
    settings.analytics_file.write_text(
        f"[benefit]\nbaseline_since = {at[0]}\nbaseline_until = {at[1]}\nsince = {at[2]}\n"
        "resamples = 200\n"
    )


def check(page: Any, lang: str, where: str) -> None:
    text = page.locator("body").inner_text()
    assert page.errors == [], f"{where}: {page.errors}"
    prose = page.evaluate(PROSE)  # a settings key in <code> is no message id
    assert IDS.findall(prose) == [], f"{where}: untranslated {IDS.findall(prose)}"
    assert RAW.findall(text) == [], f"{where}: raw data {RAW.findall(text)}"
    assert TIME.findall(text) == [], f"{where}: times without a zone {TIME.findall(text)}"
    assert ISO.findall(text) == [], f"{where}: times as stored {ISO.findall(text)}"
    assert page.evaluate(BLANK) == [], f"{where}: blank panels {page.evaluate(BLANK)}"
    assert page.evaluate(EMPTY_TABLES) == [], f"{where}: empty tables"
    broken = page.evaluate(
        "[...document.images].filter(i => i.getAttribute('src') && i.complete"
        " && i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == [], f"{where}: images that did not load {broken}"
    if lang == "zh":
        assert len(HAN.findall(text)) > 10, f"{where}: hardly any Chinese"
    else:
        assert not HAN.findall(text.replace("中文", "")), f"{where}: Chinese on an English page"


def screenshot(page: Any, name: str, lang: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"lang-{lang}-{name}.png"), full_page=True)
    if os.environ.get("CASTLINE_DOC_SCREENSHOTS") == "1":
        path = DOCS_IMG / f"web-{name}-{lang}.png"
        page.screenshot(path=str(path))  # the first screen: what a person sees on opening
        colours = Image.open(path).convert("RGB").quantize(64, method=Image.Quantize.FASTOCTREE)
        colours.save(path, optimize=True)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_page_in_both_languages(watched: Any, server: Server, lang: str) -> None:
    page = watched
    alarm_on_a_quiet_machine(server)
    benefit_plan(server)
    page.goto(f"/login?lang={lang}")
    check(page, lang, f"{lang} /login")
    screenshot(page, "login", lang)
    page.fill("input[name=username]", "admin_user")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button")
    page.wait_for_url(re.compile(r".*/$"))
    model = server.plant.models["v3"]
    for name, url in PAGES:
        url = url.format(v3=model)
        page.goto(url + ("&" if "?" in url else "?") + f"lang={lang}")
        page.wait_for_load_state("load")
        if name == "not-found":  # the browser logs the page's own 404 as an error
            page.errors[:] = [e for e in page.errors if "status of 404" not in e]
        check(page, lang, f"{lang} {url}")
        if lang == "zh":
            text = page.locator("body").inner_text()
            assert "Log out" not in text and "退出登录" in text, url
        if name in ("downtime", "benefit", "kpi"):  # a section per plant, each named
            headings = page.locator("h2").all_inner_texts()
            assert any("p1" in h for h in headings) and any("p2" in h for h in headings), url
        if name == "benefit":  # the declared plan's assumptions, said in the language
            said = "各期间取自分析配置文件" if lang == "zh" else "Periods from the analytics file"
            assert said in page.locator("body").inner_text()
        if name == "overview":  # live.js rewrites the backlog line every 2 s, in its words
            page.wait_for_timeout(2500)
            backlog = page.locator("#line").inner_text()
            assert ("本看板" in backlog) if lang == "zh" else ("runs without" in backlog), backlog
            tiles = page.evaluate(ALARM_ORDER)
            flags = [alarms > 0 for _, alarms in tiles]
            assert flags == sorted(flags, reverse=True), f"alarms not first: {tiles}"
            assert {"m1", "m3"} == {m for m, alarms in tiles if alarms}, tiles
        screenshot(page, name, lang)
    # Passing a part castline judged NG asks first: the confirmation page, then a refusal.
    page.goto(f"/plants/p1/parts/m1/3?lang={lang}")
    page.click("button[name=decision][value=OK]")
    page.wait_for_load_state("load")
    check(page, lang, f"{lang} override confirmation")
    screenshot(page, "override", lang)
    page.goto(f"/plants/p1/parts/m1/2?lang={lang}")
    page.click("button[name=decision][value=NG]")  # no defect type named
    page.wait_for_load_state("load")
    check(page, lang, f"{lang} refusal")
    refusal = "判为不合格的铸件须选择缺陷类型" if lang == "zh" else "Name the defect type"
    assert refusal in page.locator("body").inner_text()
