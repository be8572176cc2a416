"""Quality views: the review queue paged and filtered, and the defect Pareto of the KPI page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from castline.domain.shot import PartKey
from castline.domain.verdict import PartVerdict, Verdict
from castline.settings import Settings
from castline.store.repository import Store
from castline.web import pareto, queries

from .conftest import NOW, Plant, as_user

CALENDAR = Settings().calendar

Seeded = tuple[FastAPI, Plant]
PART_LINK = re.compile(r'<article class="card item" id="part-(\w+)-(\w+)-(\d+)"')


def add_waiting(plant: Plant, machine: str, numbers: range, verdict: Verdict) -> None:
    """Parts of p1 judged REVIEW or NG that nobody has confirmed; higher numbers newer."""
    store = Store(plant.engine)
    for n in numbers:
        told = PartVerdict(verdict, NOW - timedelta(hours=2) + timedelta(seconds=n), "", score=0.5)
        store.record_part(PartKey("p1", machine, n), told)


def shown(html: str) -> list[tuple[str, str, int]]:
    return [(p, m, int(n)) for p, m, n in PART_LINK.findall(html)]


def test_queue_pages_keep_the_filters_and_show_each_part_once(
    client: TestClient, plant: Seeded
) -> None:
    seeded, viewer = plant[1], as_user(plant[1], "viewer")
    add_waiting(seeded, "m2", range(100, 130), Verdict.REVIEW)  # 30 parts
    add_waiting(seeded, "m2", range(200, 205), Verdict.NG)
    first = client.get("/reviews?machine=m2&verdict=REVIEW", headers=viewer)
    assert first.status_code == 200
    parts = shown(first.text)
    assert len(parts) == 25 and {m for _, m, _ in parts} == {"m2"}
    assert [n for *_, n in parts] == list(range(129, 104, -1))  # newest first
    assert "30 parts wait" in first.text and "page 1 of 2" in first.text
    assert 'href="/reviews?machine=m2&amp;verdict=REVIEW&amp;page=2"' in first.text
    second = shown(client.get("/reviews?machine=m2&verdict=REVIEW&page=2", headers=viewer).text)
    assert [n for *_, n in second] == list(range(104, 99, -1))
    ng = shown(client.get("/reviews?verdict=NG", headers=viewer).text)
    assert {(m, n) for _, m, n in ng} == {("m1", 3), *(("m2", n) for n in range(200, 205))}


def test_reviewing_from_a_filtered_page_returns_to_it(client: TestClient, plant: Seeded) -> None:
    operator = as_user(plant[1], "operator")
    page = client.get("/reviews?machine=m1&verdict=REVIEW", headers=operator).text
    assert 'name="next" value="/reviews?machine=m1&amp;verdict=REVIEW"' in page
    form = {"decision": "OK", "next": "/reviews?machine=m1&verdict=REVIEW"}
    done = client.post(
        "/plants/p1/parts/m1/2/review", data=form, headers=operator, follow_redirects=False
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/reviews?machine=m1&verdict=REVIEW"
    after = client.get(done.headers["location"], headers=operator).text
    assert shown(after) == [] and "No waiting part matches these filters." in after


def test_the_score_is_printed_once(client: TestClient, plant: Seeded) -> None:
    store = Store(plant[1].engine)
    told = PartVerdict(Verdict.NG, NOW, reason="score 0.997", score=0.997)
    store.record_part(PartKey("p1", "m2", 7), told)
    html = client.get("/reviews?machine=m2", headers=as_user(plant[1], "viewer")).text
    assert html.count("0.997") == 1


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=abc",
        "page=100001",
        "page=99999999999999999999999",
        "verdict=OK",
        "verdict=ng",
        "machine=",
        "machine=m%00",
        "machine=a/b",
        "machine=" + "m" * 65,
    ],
)
def test_bad_queue_parameters_are_refused(client: TestClient, plant: Seeded, query: str) -> None:
    answer = client.get(f"/reviews?{query}", headers=as_user(plant[1], "viewer"))
    assert answer.status_code == 422, (query, answer.status_code)


def test_a_page_past_the_end_says_so(client: TestClient, plant: Seeded) -> None:
    answer = client.get("/reviews?page=9", headers=as_user(plant[1], "viewer"))
    assert answer.status_code == 200 and shown(answer.text) == []
    assert "past the end of the queue" in answer.text


def test_queue_query_filters_and_counts_on_both_stores(seeded_on_both: Seeded) -> None:
    seeded = seeded_on_both[1]
    add_waiting(seeded, "m2", range(10, 16), Verdict.NG)
    where = queries.QueueFilter(machine="m2", verdict=Verdict.NG)
    assert queries.review_queue_size(seeded.engine, None, where) == 6
    rows = queries.review_queue(seeded.engine, None, limit=4, offset=4, where=where)
    assert [r["shot_number"] for r in rows] == [11, 10]
    assert queries.review_queue_size(seeded.engine, ["p2"], where) == 0
    assert queries.review_queue_machines(seeded.engine, ["p1"]) == ["m1", "m2"]


def confirm_ng(plant: Plant, machine: str, numbers: range, defect: str | None) -> None:
    store = Store(plant.engine)
    for n in numbers:
        key = PartKey("p1", machine, n)
        store.record_part(key, PartVerdict(Verdict.NG, NOW - timedelta(minutes=5), "", score=0.9))
        store.record_review(key, Verdict.NG, "qe", NOW - timedelta(minutes=1), defect)


def test_pareto_orders_defects_by_count_on_both_stores(seeded_on_both: Seeded) -> None:
    seeded = seeded_on_both[1]
    confirm_ng(seeded, "m1", range(50, 52), "cold_shut")
    confirm_ng(seeded, "m2", range(60, 65), "gas_porosity")
    confirm_ng(seeded, "m2", range(70, 71), None)
    since, until = NOW - timedelta(days=1), NOW + timedelta(minutes=1)
    rows = pareto.of_plant(seeded.engine, "p1", since, until, CALENDAR)
    assert [(r.name, r.parts) for r in rows["defect_type"]] == [
        ("gas_porosity", 5),
        ("cold_shut", 2),
        (None, 1),
    ]
    assert [(r.name, r.parts) for r in rows["machine"]] == [("m2", 6), ("m1", 2)]
    assert rows["defect_type"][0].share == pytest.approx(5 / 8)
    assert rows["defect_type"][-1].cumulative == pytest.approx(1.0)
    later = pareto.of_plant(seeded.engine, "p1", until, until + timedelta(days=1), CALENDAR)
    assert later["machine"] == [] and later["shift"] == []


def test_kpi_page_shows_the_pareto_or_says_what_will_appear(
    client: TestClient, plant: Seeded
) -> None:
    viewer = as_user(plant[1], "viewer")
    empty = client.get("/kpi", headers=viewer).text
    assert "No part was confirmed NG in the last 7 days" in empty
    confirm_ng(plant[1], "m1", range(50, 53), "cold_shut")
    confirm_ng(plant[1], "m2", range(60, 61), "gas_porosity")
    html = client.get("/kpi", headers=viewer).text
    table = html[html.index('class="pareto-defect_type"') :]
    assert table.index("cold shut") < table.index("gas porosity")
    assert "75.0 %" in table
    zh = client.get("/kpi?lang=zh", headers=viewer).text
    assert "缺陷柏拉图" in zh
