"""The part page of a multi-cavity, multi-view part: every view with its own photo,
verdict, score and heat map; the part's downstream results in plant time; both languages."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from castline.domain.downstream import DownstreamResult, PartRef
from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict, Region, Verdict
from castline.store import downstream
from castline.store.blobs import BlobStore
from castline.store.repository import PhotoRecord, Store
from castline.web.i18n import Translator
from castline.web.plant_time import PlantClock

from .conftest import NOW, Plant, as_user, photo

Seeded = tuple[FastAPI, Plant]
PART = PartKey("p1", "m1", 40, "DMC-40-2", cavity=2)
TESTED = NOW + timedelta(hours=1)


def seed_part(seeded: Plant) -> dict[str, str]:
    """Cavity 2 of shot 40, photographed front (good) and side (cracked, decides)."""
    store, blobs = Store(seeded.engine), BlobStore(seeded.settings.blobs)
    store.record_shots(
        [Shot(PART.of_cavity(1), "D1", NOW, {}, cavities=2, marks=("A", "DMC-40-2"))]
    )
    digests = {
        "front": blobs.put(photo(3)),
        "side": blobs.put(photo(4, defect=True)),
        "side_heat": blobs.put(photo(5)),
    }
    store.record_view(
        PART, PhotoRecord("front", NOW, digests["front"], "image/jpeg", None, Verdict.OK, 0.1234)
    )
    side = PhotoRecord(
        "side", NOW, digests["side"], "image/jpeg", digests["side_heat"], Verdict.NG, 0.8765
    )
    store.record_view(PART, side)
    told = PartVerdict(
        Verdict.OK,  # a person's OK below makes the NG downstream an escape
        NOW,
        reason="worst of 2 views (front, side): side: score 0.8765",
        score=0.8765,
        regions=(Region(x=61, y=31, w=14, h=14, area_px=150, score=0.9),),
    )
    store.record_part(PART, told, side)
    for station, test, result, defect in (
        ("xray1", "xray", "NG", "gas_porosity"),
        ("leak1", "leak", "OK", None),
    ):
        found = DownstreamResult(
            "p1",
            station,
            test,
            result,
            TESTED,
            PartRef("DMC-40-2"),
            defect_type=defect,  # type: ignore[arg-type]
        )
        assert downstream.record(seeded.engine, found, TESTED, "test").part == PART
    return digests  # fmt: skip


def test_every_view_and_every_downstream_result_is_on_the_part_page(
    client: TestClient, plant: Seeded
) -> None:
    seeded = plant[1]
    digests = seed_part(seeded)
    headers = as_user(seeded, "viewer")
    html = client.get("/plants/p1/parts/m1/40?cavity=2", headers=headers).text
    for view in ("front", "side"):
        assert f'id="view-{view}"' in html and f"View {view}" in html
        assert f"/api/v1/blobs/{digests[view]}" in html
    assert html.index('id="view-side"') < html.index('id="view-front"')  # the deciding first
    assert "0.1234" in html and "0.8765" in html
    assert html.count(f"/api/v1/blobs/{digests['side_heat']}") == 1  # the side view's heat map
    assert html.count('<rect class="region"') == 1  # the part's regions, on its deciding view
    assert "decides the part&#39;s verdict" in html and "cavity 2" in html
    assert "The worst of its 2 views (front, side) decides. View side: anomaly score 0.8765" in html
    rows = re.findall(r"<tr><td>(xray1|leak1)</td><td[^>]*>([^<]+)</td>", html)
    assert rows == [("xray1", "X-ray"), ("leak1", "Leak test")]
    shown = PlantClock.of(seeded.settings).show(TESTED, seconds=True)
    assert html.count(shown) == 2 and re.search(r"[A-Z+\-0-9]{2,}$", shown)  # with its zone
    assert Translator("en").defect("gas_porosity") in html
    assert "Escape" in html  # castline passed it and the X-ray found it NG

    zh = client.get(
        "/plants/p1/parts/m1/40?cavity=2", headers=headers | {"Accept-Language": "zh-CN"}
    )
    assert "视角 side" in zh.text and "后工序检测结果" in zh.text and "X 射线探伤" in zh.text
    assert "气密性检测" in zh.text and "按 2 个视角" in zh.text and "第 2 腔" in zh.text
    assert "气孔" in zh.text

    other = client.get("/plants/p1/parts/m1/40", headers=headers).text  # cavity 1: its shot
    assert "No photograph recorded" in other and "View side" not in other
    found = client.get("/parts?key=p1/m1/40/2", headers=headers, follow_redirects=False)
    assert found.headers["location"] == "/plants/p1/parts/m1/40?cavity=2"
    bad = client.get("/plants/p1/parts/m1/40?cavity=99", headers=headers)
    assert bad.status_code == 422


def test_a_part_without_downstream_results_says_so(client: TestClient, plant: Seeded) -> None:
    html = client.get("/plants/p1/parts/m1/3", headers=as_user(plant[1], "viewer")).text
    assert "No downstream station has reported on this part yet." in html
    assert html.count('class="part-view"') == 1 and "decides the part" not in html


def test_a_review_on_a_cavity_s_page_reviews_that_cavity(client: TestClient, plant: Seeded) -> None:
    seed_part(plant[1])
    operator = as_user(plant[1], "operator")
    html = client.get("/plants/p1/parts/m1/40?cavity=2", headers=operator).text
    action = "/plants/p1/parts/m1/40/review?cavity=2"
    assert f'action="{action}"' in html
    form = {"decision": "NG", "defect_type": "gas_porosity"}
    done = client.post(action, data=form, headers=operator, follow_redirects=False)
    assert done.status_code == 303
    reviewed = Store(plant[1].engine).part(PART)
    assert reviewed is not None and reviewed["review"]["decision"] == "NG"
    cavity_1 = Store(plant[1].engine).part(PART.of_cavity(1))
    assert cavity_1 is not None and cavity_1["review"] is None


def test_the_kpi_page_counts_results_no_part_owns(client: TestClient, plant: Seeded) -> None:
    seeded = plant[1]
    headers = as_user(seeded, "viewer")
    quiet = client.get("/kpi", headers=headers).text
    assert 'id="downstream-p1"' in quiet and "No downstream station" in quiet
    seed_part(seeded)  # two results, both joined to their part
    joined = client.get("/kpi", headers=headers).text
    assert "2 results, 1 of them NG." in joined and "Every result joined its part." in joined
    for code in ("NOBODY-1", "NOBODY-2"):
        stranger = DownstreamResult("p1", "xray1", "xray", "NG", TESTED, PartRef(code))
        assert downstream.record(seeded.engine, stranger, NOW, "test").part is None
    html = client.get("/kpi", headers=headers).text
    section = html.split('id="downstream-p1"')[1].split("</section>")[0]
    assert "4 results, 3 of them NG." in section
    assert "2 results name a part castline does not know" in section
    assert "/api/v1/plants/p1/downstream?unmatched=true" in section
    zh = client.get("/kpi", headers=headers | {"Accept-Language": "zh-CN"}).text
    assert "2 条结果对应的铸件 castline 不认识" in zh
    listed = client.get("/api/v1/plants/p1/downstream?unmatched=true", headers=headers).json()
    assert sorted(r["ref"] for r in listed) == ["dmc:NOBODY-1", "dmc:NOBODY-2"]
