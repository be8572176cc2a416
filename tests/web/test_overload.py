"""The line cannot keep up: the rule over a sliding minute, and the banner on every page
when a real broker carries late quarantine verdicts to the dashboard."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from castline.domain.verdict import Verdict
from castline.messaging import events
from castline.messaging.backlog import BacklogWatch
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import VerdictMessage
from castline.messaging.topics import Kind
from castline.store import database
from castline.web.app import LineLink, create_app
from castline.web.live import Hub
from castline.web.overload import (
    MIN_VERDICTS,
    LineLoad,
    LoadMonitor,
    Overload,
    advice,
    is_late,
    warn_while_overloaded,
)

from .conftest import Plant, as_user, settings_in
from .test_backlog import run

SLOW = "deadline passed: inspection took over 0.29 s"


def test_a_growing_backlog_over_the_minute_is_overload_a_burst_worked_off_is_not() -> None:
    load = LineLoad(window_s=60)
    for second in range(0, 61, 2):
        load.backlog(second, 10 + second)  # 10 -> 70 parts, never falling
    found = load.overload(60)
    assert found is not None and found.growing
    assert (found.backlog_from, found.backlog_to) == (10, 70)
    burst = LineLoad(window_s=60)
    for second in range(0, 61, 2):
        burst.backlog(second, 0 if second < 10 else max(30, 150 - 3 * (second - 10)))
    assert burst.overload(60) is None
    young = LineLoad(window_s=60)
    for second in range(0, 20, 2):  # a third of a minute: too soon to say
        young.backlog(second, 10 * second)
    assert young.overload(20) is None


def test_late_quarantine_over_a_few_percent_is_overload_and_it_passes() -> None:
    load = LineLoad(window_s=60)
    for n in range(100):
        load.verdict(n * 0.5, late=n < 3)  # 3 % late: still keeping up
    assert load.overload(50) is None
    load.verdict(50, late=True)
    found = load.overload(50)
    assert found is not None and not found.growing
    assert (found.late, found.verdicts) == (4, 101)
    assert load.overload(50 + 61) is None  # a minute later the window has moved on
    few = LineLoad(window_s=60)
    for n in range(MIN_VERDICTS - 1):
        few.verdict(n, late=True)
    assert few.overload(MIN_VERDICTS) is None  # too few verdicts to judge a share


def test_only_deadline_quarantines_count_as_late() -> None:
    assert is_late({"verdict": "QUARANTINE", "reason": SLOW})
    assert is_late({"verdict": "QUARANTINE", "reason": "deadline passed 1.2 s before inspection"})
    assert not is_late({"verdict": "QUARANTINE", "reason": "die unknown for machine m1"})
    assert not is_late({"verdict": "NG", "reason": SLOW})
    assert not is_late({"verdict": "QUARANTINE", "reason": 7})


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(tmp_path / "nats", port=free_port(), mqtt_port=None) as server:
        yield server


@pytest.fixture
def watched(
    seeded_home: tuple[Path, Plant], tmp_path: Path, broker: EmbeddedNats
) -> Iterator[tuple[FastAPI, Plant]]:
    template, seeded = seeded_home
    shutil.copytree(template, tmp_path / "home")
    settings = settings_in(tmp_path / "home")
    engine = database.open_store(settings.db_url)
    yield create_app(settings, engine, line=LineLink(broker.url)), seeded
    engine.dispose()


async def tell_verdicts(url: str, late: int, on_time: int) -> None:
    """What the line tells dashboards when it decides parts: `late` of them quarantined
    because the deadline passed."""
    nc = await nats.connect(url)
    for n in range(late + on_time):
        message = VerdictMessage(
            plant="p1",
            machine="m1",
            shot_number=1000 + n,
            verdict=Verdict.QUARANTINE if n < late else Verdict.OK,
            decided_at=datetime.now(UTC),
            reason=SLOW if n < late else "",
        )
        subject = events.subject("p1", "m1", Kind.VERDICT)
        await nc.publish(subject, events.encode(message.model_dump(mode="json")))
    await nc.flush()
    await nc.close()


def test_every_page_says_the_line_cannot_keep_up_in_both_languages(
    watched: tuple[FastAPI, Plant], broker: EmbeddedNats
) -> None:
    app, seeded = watched
    viewer = as_user(seeded, "viewer")
    with TestClient(app) as client:
        assert "The line cannot keep up" not in client.get("/", headers=viewer).text
        time.sleep(0.5)  # the dashboard subscribes to the line's events as it starts
        run(tell_verdicts(broker.url, late=6, on_time=24))
        for _ in range(40):
            if app.state.load.now() is not None:
                break
            time.sleep(0.1)
        for path in ("/", "/kpi", "/alarms"):
            page = client.get(path, headers=viewer).text
            assert "The line cannot keep up" in page, path
            assert "6 of 30 parts (20.0 %)" in page and "castline up --machines" in page
        zh = client.get("/?lang=zh", headers=viewer).text
        assert "产线处理不过来" in zh and "--speed" in zh


def test_castline_up_says_what_to_change_in_figures(capsys: pytest.CaptureFixture[str]) -> None:
    grew = Overload(60, 10, 70, late=0, verdicts=5)
    line = advice(grew, machines=9, speed=60)
    assert "backlog 10 -> 70 parts in a minute" in line
    assert "--machines 6 (now 9)" in line and "--speed 40 (now 60)" in line
    assert "castline line run" in line
    late = advice(Overload(60, None, None, late=50, verdicts=100), machines=9, speed=60)
    assert "50 of 100 parts (50%) quarantined" in late and "--machines 4 (now 9)" in late

    monitor = LoadMonitor(Hub(), BacklogWatch("nats://127.0.0.1:1"))

    async def behind_then_caught_up() -> None:
        stop = asyncio.Event()
        for n in range(30):
            monitor.load.verdict(time.monotonic(), late=n < 10)
        task = asyncio.create_task(warn_while_overloaded(monitor, 9, 60, stop, every_s=0.01))
        await asyncio.sleep(0.1)
        monitor.load = LineLoad()  # the minute has moved on: nothing late any more
        await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(behind_then_caught_up())
    said = capsys.readouterr().out.splitlines()
    assert len(said) == 2  # said once while behind (not every check), once when caught up
    assert said[0].startswith("warning: the line cannot keep up (10 of 30 parts (33%)")
    assert said[1] == "the line keeps up again"
