"""The die page shows scrap by cavity for a die of several cavities, in both languages."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import Verdict
from castline.store.repository import Store

from .conftest import NOW, Plant, as_user


def test_the_die_page_shows_scrap_by_cavity(
    client: TestClient, plant: tuple[FastAPI, Plant]
) -> None:
    seeded = plant[1]
    store = Store(seeded.engine)
    for n in range(100, 110):
        at = NOW - timedelta(hours=1, minutes=n - 100)
        store.record_shots([Shot(PartKey("p1", "m2", n), "D2", at, {}, cavities=2)])
        for cavity in (1, 2):
            bad = cavity == 2 and n % 2 == 0  # cavity 2 scraps half
            store.record_verdict(
                PartKey("p1", "m2", n, cavity=cavity), Verdict.NG if bad else Verdict.OK, at
            )
    headers = as_user(seeded, "viewer")
    html = client.get("/dies", headers=headers).text
    assert 'id="cavities-p1"' in html and "Scrap by cavity" in html
    rows = html.split('id="cavities-p1"')[1].split("</table>")[0]
    assert "<td>D2</td><td>1</td><td>10</td><td>0</td><td>0.0 %" in rows
    assert "<td>D2</td><td>2</td><td>10</td><td>5</td><td>50.0 %" in rows
    assert "<td>D1</td>" not in rows  # one cavity: nothing to compare
    zh = client.get("/dies", headers=headers | {"Accept-Language": "zh-CN"}).text
    assert "按型腔的废品率" in zh and "型腔" in zh
