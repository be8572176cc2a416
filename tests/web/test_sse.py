"""Server-sent events through a real HTTP server: retained state first, then live events."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx

from .conftest import Server, as_user


def events(lines: Iterator[str]) -> Iterator[dict[str, object]]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


def test_live_stream_sends_retained_then_new_events_of_visible_plants(server: Server) -> None:
    hub = server.app.state.hub
    hub.publish("castline/v1/p1/m1/state", {"state": "running", "die": "D1"})
    hub.publish("castline/v1/p2/m9/state", {"state": "breakdown"})
    url = f"{server.url}/api/v1/live"
    with (
        httpx.Client(timeout=10) as http,
        http.stream("GET", url, headers=as_user(server.plant, "op1")) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        received = events(stream.iter_lines())
        first = next(received)
        assert first == {
            "topic": "castline/v1/p1/m1/state",
            "payload": {"state": "running", "die": "D1"},
        }
        hub.publish("castline/v1/p2/m9/verdict", {"shot_number": 5, "verdict": "NG"})
        hub.publish("castline/v1/p1/m2/verdict", {"shot_number": 9, "verdict": "OK"})
        assert next(received)["topic"] == "castline/v1/p1/m2/verdict"  # p2 is not op1's
    for _ in range(100):  # the server notices the closed connection and unsubscribes
        if hub.subscribers == 0:
            break
        time.sleep(0.05)
    assert hub.subscribers == 0
