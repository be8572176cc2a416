"""Pages show each role what it may do, and nothing more."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from .conftest import Plant, as_user

Seeded = tuple[FastAPI, Plant]


def test_viewer_sees_the_queue_and_alarms_without_action_buttons(
    client: TestClient, plant: Seeded
) -> None:
    viewer, operator = as_user(plant[1], "viewer"), as_user(plant[1], "operator")
    for url, action in (("/reviews", ">Confirm NG<"), ("/alarms", "<button>Acknowledge</button>")):
        assert action not in client.get(url, headers=viewer).text
        assert action in client.get(url, headers=operator).text
    models = client.get("/models", headers=viewer).text
    assert "v3" in models and "Promote…" not in models
    assert "Promote…" in client.get("/models", headers=as_user(plant[1], "engineer")).text
    nav = client.get("/plants/p1", headers=viewer).text
    assert "Dead letters" not in nav and "Users" not in nav


def test_part_page_shows_photo_regions_parameters_and_verdict(
    client: TestClient, plant: Seeded
) -> None:
    page = client.get("/plants/p1/parts/m1/3", headers=as_user(plant[1], "viewer"))
    assert page.status_code == 200
    html = page.text
    assert 'viewBox="0 0 120 120"' in html  # sized to the photograph
    assert '<rect class="region" x="60" y="30" width="15" height="15"/>' in html
    assert ">1</text>" in html and "region-chip" in html  # numbered on the photo and listed
    assert "Melt temperature" in html and "663.00" in html
    assert "v2" in html and "41.0 ms" in html
    missing = client.get("/plants/p1/parts/m1/77", headers=as_user(plant[1], "viewer"))
    assert missing.status_code == 404 and "no record of part p1/m1/77" in missing.text


def test_search_by_part_key(client: TestClient, plant: Seeded) -> None:
    headers = as_user(plant[1], "viewer")
    found = client.get("/parts?key=p1/m1/2", headers=headers, follow_redirects=False)
    assert found.headers["location"] == "/plants/p1/parts/m1/2"
    bad = client.get("/parts?key=m1-2", headers=headers)
    assert "m1-2 is not a part key: write plant/machine/shot" in bad.text


def test_promoting_asks_for_confirmation_first(client: TestClient, plant: Seeded) -> None:
    model = plant[1].models["v3"]
    confirm = client.get(f"/models/{model}/promote", headers=as_user(plant[1], "engineer"))
    assert "Promote v3?" in confirm.text and f'action="/models/{model}/promote"' in confirm.text
    denied = client.get(f"/models/{model}/promote", headers=as_user(plant[1], "operator"))
    assert denied.status_code == 403 and "engineer role" in denied.text
    rollback = client.get(
        "/models/rollback?die=D1&view=front", headers=as_user(plant[1], "engineer")
    )
    assert "Roll back die D1 view front?" in rollback.text


def test_new_api_key_is_shown_once_to_an_admin(client: TestClient, plant: Seeded) -> None:
    admin = as_user(plant[1], "admin")
    page = client.post("/users/admin/keys", headers=admin)
    assert 'id="new-key">cl_' in page.text
    listing = client.get("/users", headers=admin).text
    assert "cl_" not in listing
    assert "<td>admin</td><td>admin</td><td>all</td><td>2</td>" in listing  # seeded + new
    for_another = client.post("/users/viewer/keys", headers=admin)
    assert "Not done: An API key is created by its own user only." in for_another.text
    assert "cl_" not in for_another.text


def test_passing_a_held_part_on_the_page_asks_for_a_reason_and_a_second_yes(
    client: TestClient, plant: Seeded
) -> None:
    operator = as_user(plant[1], "operator")
    url = "/plants/p1/parts/m1/3/review"  # part 3 was judged NG by castline
    first = client.post(url, data={"decision": "OK"}, headers=operator, follow_redirects=False)
    assert first.status_code == 200, first.text
    assert 'name="confirmed" value="yes"' in first.text and 'name="comment"' in first.text
    form = {"decision": "OK", "comment": "sand, not a pore", "confirmed": "yes"}
    done = client.post(url, data=form, headers=operator, follow_redirects=False)
    assert done.status_code == 303
    queue = client.get("/api/v1/reviews/queue", headers=operator).json()
    assert ("m1", 3) not in {(r["machine"], r["shot_number"]) for r in queue}


def test_a_refusal_is_said_in_the_page_language(client: TestClient, plant: Seeded) -> None:
    zh = as_user(plant[1], "operator") | {"Accept-Language": "zh-CN", "Accept": "text/html"}
    url = "/plants/p1/parts/m1/2/review"
    refused = client.post(url, data={"decision": "NG", "next": "/reviews"}, headers=zh)
    assert "未执行：判为不合格的铸件须选择缺陷类型。" in refused.text
    assert "name the defect type" not in refused.text
    api = client.post(
        f"/api/v1{url.removesuffix('/review')}/review", json={"decision": "NG"}, headers=zh
    )
    assert api.status_code == 400 and "name the defect type" in api.json()["detail"]
    assert "不是有效的铸件编号" in client.get("/parts?key=m1-2", headers=zh).text
    missing = client.get("/plants/p1/machines/m9", headers=zh)
    assert missing.status_code == 404 and "工厂 p1 没有压铸机 m9" in missing.text
    model = plant[1].models["v3"]
    denied = client.get(f"/models/{model}/promote", headers=zh)
    assert denied.status_code == 403 and "此操作需要工程师或更高的角色。" in denied.text


def test_an_unknown_address_is_a_page_for_people_and_json_for_programs(
    client: TestClient, plant: Seeded
) -> None:
    viewer = as_user(plant[1], "viewer") | {"Accept": "text/html"}
    page = client.get("/no-such-page", headers=viewer)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<nav" in page.text or "<main" in page.text  # the site's page, not bare JSON
    api = client.get("/api/v1/no-such-thing", headers=as_user(plant[1], "viewer"))
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    anonymous = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert anonymous.status_code in (303, 404)
