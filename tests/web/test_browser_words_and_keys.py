"""In a real browser: the review queue's keys, and the plant's words (defects, reasons,
parameters, the heat map's scale) in Chinese and English on the part page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict, Region, Verdict
from castline.store import tables as t
from castline.store.blobs import BlobStore
from castline.store.repository import PhotoRecord, Store

from .conftest import Server, photo
from .test_browser import ARTIFACTS, browser, heatmap, log_in, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
SLOW = "deadline passed: inspection took over 0.29 s"  # the line's stored reason


def held_part(server: Server, number: int, reason: str, verdict: Verdict) -> PartKey:
    """A part recorded as the line does, with its heat map and two regions."""
    store, blobs = Store(server.plant.engine), BlobStore(server.plant.settings.blobs)
    key, now = PartKey("p1", "m1", number), datetime.now(UTC)
    store.record_shots([Shot(key, "D1", now, {"melt_temp_c": 702.0, "vacuum_mbar": 80.0})])
    regions = (
        Region(x=58, y=28, w=20, h=20, area_px=400, score=0.93),
        Region(x=20, y=70, w=10, h=10, area_px=90, score=1.40),
    )
    told = PartVerdict(verdict, now, reason, 0.97, "v2", 38.5, regions)
    image, heat = blobs.put(photo(number, defect=True)), blobs.put(heatmap())
    store.record_part(key, told, PhotoRecord("front", now, image, "image/jpeg", heatmap=heat))
    return key


def current(tab: Any) -> str:
    return str(tab.locator(".queue article.item.current").get_attribute("id"))


def walk_to(tab: Any, article_id: str) -> None:
    for _ in range(40):
        if current(tab) == article_id:
            return
        tab.keyboard.press("j")
    raise AssertionError(f"j never reached {article_id}")


def test_review_keys_move_decide_and_never_skip_the_override_confirmation(
    page: Any,  # noqa: F811
    server: Server,
) -> None:
    from playwright.sync_api import expect

    held_part(server, 20, "score 0.970", Verdict.REVIEW)
    log_in(page, "operator")
    page.goto("/reviews?lang=en")
    legend = page.locator("#review-keys")
    assert "pass as OK" in legend.inner_text() and "review later" in legend.inner_text()
    first = current(page)
    page.keyboard.press("j")
    second = current(page)
    assert second != first
    page.keyboard.press("k")
    assert current(page) == first

    # o on a part castline judged NG: the confirmation page, asking for a reason
    walk_to(page, "part-p1-m1-3")
    page.keyboard.press("o")
    page.wait_for_selector("form.confirm")
    assert "Pass a part castline held?" in page.locator("h1").inner_text()
    assert "judged part p1/m1/3 NG" in page.locator("form.confirm").inner_text()
    assert page.locator("form.confirm input[name=comment]").get_attribute("required") is not None
    page.click("form.confirm a")  # cancel: the part still waits
    page.wait_for_selector("#part-p1-m1-3")

    # n without a defect type: told to choose one, nothing sent
    walk_to(page, "part-p1-m1-20")
    page.keyboard.press("n")
    status = legend.locator(".kbd-status")
    expect(status).to_have_text("Choose the defect type, then press n again.")
    assert page.evaluate("document.activeElement.name") == "defect_type"
    page.select_option("#part-p1-m1-20 select[name=defect_type]", "gas_porosity")
    page.keyboard.press("n")  # choosing gave the keys back
    page.wait_for_selector("text=Part p1/m1/20 confirmed NG.")
    assert page.locator("#part-p1-m1-20").count() == 0

    # r leaves the part for later and moves on
    before = current(page)
    page.keyboard.press("r")
    assert "Left for later" in status.inner_text()
    assert page.locator(f"#{before}.later").count() == 1
    page.screenshot(path=str(ARTIFACTS / "review-keys.png"), full_page=True)

    page.goto("/reviews?lang=zh")
    assert "快捷键" in legend.inner_text() and "判为合格放行" in legend.inner_text()
    page.screenshot(path=str(ARTIFACTS / "review-keys-zh.png"), full_page=True)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_part_page_speaks_the_plants_words(
    page: Any,  # noqa: F811
    server: Server,
    lang: str,
) -> None:
    """A held part's reason for the operator, the defect confirmed, the parameters and the
    heat map's scale with numbered regions, in both languages."""
    held_part(server, 30, SLOW, Verdict.QUARANTINE)
    Store(server.plant.engine).record_review(
        PartKey("p1", "m1", 30), Verdict.NG, "operator", datetime.now(UTC), "gas_porosity", ""
    )
    with server.plant.engine.begin() as conn:  # the model that judged it, as trained
        conn.execute(
            update(t.models)
            .where(t.models.c.version == "v2")
            .values(manifest={"thresholds": {"region": 0.7}})
        )
    log_in(page, "viewer")
    page.goto(f"/plants/p1/parts/m1/30?lang={lang}")
    main = page.locator("main").inner_text()
    words = {
        "zh": ("检测超时", "0.29 秒", "气孔", "铝液温度", "型腔真空度", "热力图色标"),
        "en": ("Not inspected in time", "0.29 s left", "gas porosity", "Melt temperature",
               "Heat map colour scale"),
    }[lang]  # fmt: skip
    for word in words:
        assert word in main, f"{lang}: {word!r} missing"
    assert SLOW not in main  # the machine text is only the tooltip
    assert page.locator("dd.reason").get_attribute("title") == SLOW
    # numbered on the photo and in the list beside it, most likely defect first
    assert page.locator("svg .region-no").all_text_contents() == ["1", "2"]
    rows = page.locator("table.regions tbody tr")
    assert rows.nth(0).inner_text().split()[:3] == ["1", "1.400", "2.0×"]
    assert rows.nth(1).inner_text().split()[:3] == ["2", "0.930", "1.3×"]
    scale = page.locator(".heat-scale").inner_text()
    assert "0.70" in scale and "1.05" in scale  # the threshold and full colour (1.5×)
    bar = page.locator(".heat-bar")
    assert bar.is_visible() and "gradient" in bar.evaluate(
        "e => getComputedStyle(e).backgroundImage"
    )
    page.screenshot(path=str(ARTIFACTS / f"part-words-{lang}.png"), full_page=True)
