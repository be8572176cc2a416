"""A line that cannot keep up says so: a real line worker with a verdict deadline no
inspection can meet quarantines every part for lateness; the dashboard beside it, fed
from the same NATS, shows the overload banner with what to change."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi.testclient import TestClient

from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats
from castline.settings import Settings
from castline.store import database
from castline.web.app import LineLink, create_app
from castline.web.auth import Role, add_user, new_api_key
from castline.web.overload import MIN_VERDICTS

from .conftest import Device, casting_jpeg
from .test_runtime import activate


async def test_a_line_too_slow_for_its_deadline_shows_the_overload_banner(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path
) -> None:
    settings = Settings(
        home=tmp_path / "home", verdict_deadline_s=0.001, secret_key="overload-test-secret"
    )
    engine = database.open_store(settings.db_url)
    activate(engine, synthetic_model)
    add_user(engine, "vera", "correct horse battery", Role.VIEWER, ["p1"])
    viewer = {"X-API-Key": new_api_key(engine, "vera")}
    stop, ready = asyncio.Event(), asyncio.Event()
    line = asyncio.create_task(LineRuntime(settings, engine, broker.url).run(stop, ready))
    client = TestClient(create_app(settings, engine, line=LineLink(broker.url)))
    await asyncio.to_thread(client.__enter__)  # the dashboard hears the line's events
    try:
        await asyncio.wait_for(ready.wait(), 15)
        assert broker.mqtt_port is not None
        device = Device(broker.mqtt_port)
        device.state()
        await asyncio.sleep(1.0)  # the dashboard's subscription is in place
        shots = set(range(1, MIN_VERDICTS + 6))
        for n in shots:
            device.shot(n)
            device.image(n, casting_jpeg(n))
        told = await asyncio.to_thread(device.wait_verdicts, shots, 60.0)
        device.close()
        assert {v["verdict"] for v in told.values()} == {"QUARANTINE"}
        page = ""
        for _ in range(50):
            page = (await asyncio.to_thread(client.get, "/", headers=viewer)).text
            if "The line cannot keep up" in page:
                break
            await asyncio.sleep(0.2)
        assert "The line cannot keep up" in page
        assert "because their verdict came after the deadline" in page
        assert "castline up --machines" in page
    finally:
        stop.set()
        await asyncio.wait_for(line, 15)
        await asyncio.to_thread(client.__exit__, None, None, None)
        engine.dispose()
