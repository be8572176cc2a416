"""The dashboard in a real browser (Debian's Chromium driven by Playwright).

Screenshots of each step go to test-artifacts/web/ for people to look at.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict, Region, Verdict
from castline.store.blobs import BlobStore
from castline.store.repository import PhotoRecord, Store

from .conftest import PASSWORD, Server, photo

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "web"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.conftest import missing  # the suite's rule: fail in CI, skip elsewhere

    if not CHROMIUM.exists() and not shutil.which("chromium"):
        missing("Chromium not installed (apt-get install chromium; `make test` does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            args=ARGS,
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A page of a fresh context; the test fails if the Content-Security-Policy blocked
    anything the page tried (inline code, a foreign source)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=server.url)
    context.set_default_timeout(10_000)
    opened = context.new_page()
    blocked: list[str] = []
    opened.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield opened
    context.close()
    assert blocked == [], f"the Content-Security-Policy blocked: {blocked}"


def log_in(page: Any, name: str) -> None:
    page.goto("/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def heatmap() -> bytes:
    image = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    image.paste((255, 40, 0, 220), (58, 28, 78, 48))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def new_casting(server: Server, number: int, verdict: Verdict) -> dict[str, Any]:
    """Record a casting as the line does, and return the verdict payload it publishes."""
    store, blobs = Store(server.plant.engine), BlobStore(server.plant.settings.blobs)
    key, now = PartKey("p1", "m1", number), datetime.now(UTC)
    store.record_shots([Shot(key, "D1", now, {"melt_temp_c": 702.0, "die_temp_fixed_c": 180.0})])
    image = blobs.put(photo(number, defect=True))
    heat = blobs.put(heatmap())
    regions = [{"x": 58, "y": 28, "w": 20, "h": 20, "area_px": 400, "score": 0.93}]
    told = PartVerdict(
        verdict, now, "", score=0.71, model_version="v2", latency_ms=38.5,
        regions=tuple(Region(**r) for r in regions), timings={"decode": 3.1, "inspect": 29.4},
    )  # fmt: skip
    store.record_part(key, told, PhotoRecord("front", now, image, "image/jpeg", heatmap=heat))
    return {
        "v": 1, "plant": "p1", "machine": "m1", "shot_number": number, "verdict": verdict.value,
        "decided_at": now.isoformat(), "score": 0.71, "model_version": "v2",
        "regions": regions, "image": image, "heatmap": heat,
    }  # fmt: skip


def test_operator_watches_live_reviews_a_part_and_acknowledges_an_alarm(
    page: Any, server: Server
) -> None:
    from playwright.sync_api import expect

    log_in(page, "operator")
    page.goto("/plants/p1")
    tile = page.locator(".tile[data-machine=m1]")
    page.wait_for_selector("#live.on")
    assert tile.locator("[data-field=verdict]").inner_text() == "NG"
    shot(page, "1-overview")

    hub = server.app.state.hub
    hub.publish("castline/v1/p1/m1/shot", {"shot_number": 4, "die": "D1"})
    hub.publish("castline/v1/p1/m1/verdict", new_casting(server, 4, Verdict.REVIEW))
    hub.publish("castline/v1/p1/m2/state", {"state": "breakdown", "die": "D2"})
    expect(page.locator(".tile[data-machine=m1] [data-field=verdict]")).to_have_text("REVIEW")
    expect(page.locator(".tile[data-machine=m2] [data-field=state]")).to_have_text("breakdown")
    assert tile.locator("[data-field=shot]").inner_text() == "#4"
    assert tile.locator("[data-field=shots_today]").inner_text() == "4"
    assert tile.locator("[data-field=yield]").inner_text() == "25.0 %"  # 1 OK of 4 parts
    chips = tile.locator("[data-field=chips] .chip").all_inner_texts()
    assert chips == ["1", "1", "2", "0"]  # OK, NG, REVIEW, QUARANTINE
    assert page.locator(".tile[data-machine=m2] [data-field=die]").inner_text() == "D2"
    shot(page, "2-overview-live")

    tile.locator("[data-field=verdict]").click()
    page.wait_for_url("**/plants/p1/parts/m1/4")
    assert page.locator("svg.photo-large rect.region").count() == 1
    assert "702.00" in page.locator("table.parameters").inner_text()
    page.uncheck("#heat-1")  # page.js, not inline code, hides the first view's heat map
    expect(page.locator("#overlay-1")).to_be_hidden()
    page.check("#heat-1")
    expect(page.locator("#overlay-1")).to_be_visible()
    shot(page, "3-part")

    page.select_option("select[name=defect_type]", "cold_shut")
    page.fill("input[name=comment]", "cold lap at the rim")
    page.click("button:has-text('Confirm NG')")
    page.wait_for_selector("text=Part p1/m1/4 confirmed NG.")
    assert "Confirmed NG (cold shut) by operator" in page.locator("main").inner_text()
    shot(page, "4-part-reviewed")

    page.goto("/reviews")
    assert page.locator("#part-p1-m1-4").count() == 0
    assert page.locator("#part-p1-m1-2").count() == 1
    shot(page, "5-review-queue")

    page.goto("/alarms")
    row = page.locator(f"#alarm-{server.plant.alarm_p1}")
    row.locator("select[name=cause]").select_option("melt")
    row.locator("input[name=comment]").fill("furnace thermocouple replaced")
    row.locator("button:has-text('Acknowledge')").click()
    page.wait_for_selector(f"text=Alarm {server.plant.alarm_p1} acknowledged.")
    assert "furnace thermocouple replaced" in row.inner_text()
    shot(page, "6-alarms")


def test_every_page_renders_for_an_admin(page: Any, server: Server) -> None:
    log_in(page, "admin_user")
    for name, url, wanted in (
        ("machine", "/plants/p1/machines/m1", "Control chart"),
        ("models", "/models", "Die D1"),
        ("dies", "/dies", "Die life"),
        ("kpi", "/kpi", "Benefit report"),
        ("dead-letters", "/dead-letters", "payload is not JSON"),
        ("users", "/users", "Audit log"),
        ("api", "/docs", "GET /api/v1/plants/{plant}/overview"),
    ):
        page.goto(url)
        assert wanted in page.locator("main").inner_text(), url
        shot(page, f"page-{name}")
    page.goto("/plants/p1/machines/m1")
    page.select_option("select[name=parameter]", "die_temp_fixed_c")  # submits by page.js
    page.wait_for_url("**/plants/p1/machines/m1?parameter=die_temp_fixed_c")
    page.goto("/models")
    page.click("a:has-text('Promote…')")
    page.click("button:has-text('Yes, do it')")
    page.wait_for_selector("text=Die D1 view front now inspects with")
    shot(page, "page-models-promoted")
