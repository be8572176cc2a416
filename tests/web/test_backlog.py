"""The dashboard shows how far inspection is behind, read from a real JetStream."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from castline.messaging import jetstream, parking
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ShotMessage
from castline.store import database
from castline.web.app import LineLink, create_app
from castline.web.auth import Role, add_user, new_api_key

from .conftest import Plant, Server, as_user, settings_in
from .test_browser import browser, log_in, page, shot  # noqa: F401 (fixtures)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(tmp_path / "nats", port=free_port(), mqtt_port=None) as server:
        yield server


async def queue_shots(url: str, count: int) -> None:
    """What a plant sends while no line runtime takes it: it waits in the stream."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    await jetstream.ensure_line_consumer(js, "p1")
    for n in range(count):
        shot = ShotMessage(plant="p1", machine="m1", shot_number=n, die="D1", ts=datetime.now(UTC))
        await js.publish("castline.v1.p1.m1.shot", shot.to_json())
    await nc.close()


async def work_off(url: str, count: int) -> None:
    """A worker of the line's consumer group takes and acknowledges `count` messages."""
    nc = await nats.connect(url)
    sub = await nc.jetstream().pull_subscribe_bind("line-p1", stream=jetstream.STREAM)
    for msg in await sub.fetch(batch=count, timeout=5):
        await msg.ack_sync()
    await nc.close()


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on a thread of its own: Playwright's sync API holds this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def plant(
    seeded_home: tuple[Path, Plant], tmp_path: Path, broker: EmbeddedNats
) -> Iterator[tuple[FastAPI, Plant]]:
    """The seeded plant's dashboard, watching the line's broker."""
    template, seeded = seeded_home
    home = tmp_path / "home"
    shutil.copytree(template, home)
    settings = settings_in(home)
    engine = database.open_store(settings.db_url)
    app = create_app(settings, engine, line=LineLink(broker.url))
    yield app, replace(seeded, engine=engine, settings=settings)
    engine.dispose()


def line_status(client: TestClient, headers: dict[str, str], **expect: Any) -> dict[str, Any]:
    """Ask until the watch (every 2 s) shows what is expected."""
    status: dict[str, Any] = {}
    for _ in range(60):
        status = client.get("/api/v1/plants/p1/line", headers=headers).json()
        if all(status.get(k) == v for k, v in expect.items()):
            return status
        time.sleep(0.25)
    raise AssertionError(f"line status never showed {expect}: {status}")


def test_backlog_grows_while_no_worker_runs_and_empties_when_one_does(
    plant: tuple[FastAPI, Plant], broker: EmbeddedNats
) -> None:
    app, seeded = plant
    viewer = as_user(seeded, "viewer")
    with TestClient(app) as client:
        run(queue_shots(broker.url, 7))
        status = line_status(client, viewer, waiting=7)
        assert status["in_progress"] == 0 and status["oldest_s"] >= 0
        assert status["level"] in ("busy", "behind") and "7 waiting" in status["text"]
        run(work_off(broker.url, 7))
        status = line_status(client, viewer, total=0)
        assert status["level"] == "ok" and status["oldest_s"] is None


async def park_two(url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for n in range(2):
        await parking.park(js, f"castline/v1/p1/m {n}/shot", b"{}", "no NATS subject")
    await nc.close()


def test_parked_messages_are_counted_on_the_dead_letters_page(
    plant: tuple[FastAPI, Plant], broker: EmbeddedNats
) -> None:
    """What could not even be dead-lettered is counted for those who see every plant; an
    engineer of one plant does not see other plants' traffic."""
    app, seeded = plant
    add_user(seeded.engine, "eng_p1", "pw-eng-p1-long", Role.ENGINEER, ["p1"])
    scoped = {"X-API-Key": new_api_key(seeded.engine, "eng_p1")}
    everyone = as_user(seeded, "engineer")
    with TestClient(app) as client:
        page = client.get("/dead-letters", headers=everyone).text
        assert 'id="parked"' not in page
        run(park_two(broker.url))
        for _ in range(60):
            if 'id="parked"' in (page := client.get("/dead-letters", headers=everyone).text):
                break
            time.sleep(0.25)
        assert "2 message(s) parked" in page and "castline line parked" in page
        assert 'id="parked"' not in client.get("/dead-letters", headers=scoped).text


def test_without_a_broker_the_backlog_is_unknown_and_says_why(
    seeded_home: tuple[Path, Plant], tmp_path: Path
) -> None:
    template, seeded = seeded_home
    shutil.copytree(template, tmp_path / "home")
    settings = settings_in(tmp_path / "home")
    app = create_app(settings, database.open_store(settings.db_url))
    with TestClient(app) as client:
        status = client.get("/api/v1/plants/p1/line", headers=as_user(seeded, "viewer")).json()
    assert status["level"] == "unknown" and "--nats" in status["text"]


def test_overview_page_shows_the_backlog_in_a_browser(
    page: Any,  # noqa: F811 (the browser fixture)
    server: Server,
    broker: EmbeddedNats,
) -> None:
    log_in(page, "viewer")
    page.goto("/plants/p1")
    run(queue_shots(broker.url, 3))
    from playwright.sync_api import expect

    expect(page.locator("#line")).to_contain_text("3 waiting", timeout=15_000)
    assert page.locator("#line").get_attribute("class") in (
        "line-status line-busy",
        "line-status line-behind",
    )
    shot(page, "overview-backlog")
    run(work_off(broker.url, 3))
    page.wait_for_selector("#line.line-ok", timeout=15_000)
