"""`castline web` in a process of its own shows what a line worker decides, live.

The line tells its events over NATS; the dashboard subscribes wherever it runs. Here the
dashboard is the real command in a second process, the line a worker in this one, and the
robot cell a real MQTT client; the browser's event stream is read over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats, free_port
from castline.settings import Settings
from castline.store import database
from castline.web.auth import Role, add_user, new_api_key

from .conftest import Device, casting_jpeg
from .test_runtime import activate


def start_dashboard(home: Path, port: int, nats_url: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"CASTLINE_HOME": str(home), "CASTLINE_SECRET_KEY": "live-test-secret"}
    command = [sys.executable, "-m", "castline.cli", "web", "--port", str(port), "--nats", nats_url]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def live_verdicts(
    url: str, key: str, wanted: set[int], found: list[dict[str, object]], live: threading.Event
) -> None:
    """Read the dashboard's event stream until verdicts for the `wanted` shots arrived (in
    any order: photos are decided side by side); `live` is set once a machine state has
    come through (the dashboard hears the line)."""
    with (
        httpx.Client(timeout=30) as http,
        http.stream("GET", f"{url}/api/v1/live", headers={"X-API-Key": key}) as stream,
    ):
        for line in stream.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            if event["topic"].endswith("/state"):
                live.set()
            if event["topic"].endswith("/verdict"):
                found.append(event)
                if wanted <= {e["payload"]["shot_number"] for e in found}:  # type: ignore[index]
                    return


async def wait_until_up(url: str, dashboard: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            assert dashboard.poll() is None, dashboard.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                await http.get(f"{url}/login")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("the dashboard did not start")


async def test_dashboard_in_another_process_shows_the_line_live(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, verdict_deadline_s=5.0)
    engine = database.open_store(settings.db_url)
    activate(engine, synthetic_model)
    add_user(engine, "olga", "correct horse battery", Role.OPERATOR, ["p1"])
    key = new_api_key(engine, "olga")
    port = free_port()
    dashboard = start_dashboard(home, port, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    line = asyncio.create_task(LineRuntime(settings, engine, broker.url).run(stop, ready))
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_until_up(url, dashboard)
        await asyncio.wait_for(ready.wait(), 15)
        assert broker.mqtt_port is not None
        device = Device(broker.mqtt_port)
        found: list[dict[str, object]] = []
        live = threading.Event()
        reading = asyncio.create_task(
            asyncio.to_thread(live_verdicts, url, key, {1, 2}, found, live)
        )
        for _ in range(60):  # the page is open, and hears the line, before the parts come
            device.state()
            if await asyncio.to_thread(live.wait, 0.5):
                break
        assert live.is_set(), "no live event reached the dashboard"
        for n in (1, 2):
            device.shot(n)
            device.image(n, casting_jpeg(n))
        await asyncio.wait_for(reading, 30)
        told = await asyncio.to_thread(device.wait_verdicts, {1, 2})
        device.close()
    finally:
        stop.set()
        await asyncio.wait_for(line, 15)
        dashboard.terminate()
        dashboard.wait(10)
        engine.dispose()
    shown = {e["payload"]["shot_number"]: e["payload"] for e in found}  # type: ignore[index]
    assert set(shown) == {1, 2}
    for n in (1, 2):
        assert shown[n]["verdict"] == told[n]["verdict"]  # the tile shows what the cell was told
        assert shown[n]["image"]  # with the photo to show beside it
