"""Live updates: the line's events from NATS to every open browser page.

`NatsFeed` listens to the line's events (`messaging/events.py`), wherever the line runs,
and hands them to the hub; every open page subscribes to the hub. Topics are the MQTT
topics of protocol v1 (`castline/v1/<plant>/<machine>/verdict`), so the browser and the
robot cells share one namespace. Like MQTT retain, the hub keeps the
last payload of each topic, so a page that opens now starts with every machine's state.

The line must never wait for a browser: each subscriber has a bounded queue, and when a
slow page lets it fill up, the oldest event is dropped and counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.msg import Msg

from castline.messaging import events
from castline.messaging.topics import parse

log = logging.getLogger(__name__)
Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    payload: Payload


class Subscription:
    """The events of one connection, in order; `get()` waits on the connection's loop."""

    def __init__(self, hub: Hub, accepts: Callable[[str], bool], size: int) -> None:
        self._hub = hub
        self._accepts = accepts
        self._events: deque[Event] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self.dropped = 0

    def offer(self, event: Event) -> None:
        """Called by the hub from any thread; never blocks."""
        if not self._accepts(event.topic):
            return
        with self._lock:
            was_empty = not self._events
            if len(self._events) == self._events.maxlen:
                self.dropped += 1
                self._hub.count_drop()
            self._events.append(event)
        if not was_empty:
            return  # the reader was woken when the first waiting event came
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the connection's loop is closed: it will never read again
            self.close()

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when `timeout` seconds pass without one."""
        while True:
            with self._lock:
                if self._events:
                    return self._events.popleft()
                self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Hub:
    def __init__(self, queue_size: int = 500) -> None:
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._retained: dict[str, Payload] = {}
        self._subscribers: list[Subscription] = []
        self.published = 0
        self.dropped = 0

    def publish(self, topic: str, payload: Payload) -> None:
        """Send to every subscriber and keep as the topic's last value; thread-safe."""
        parse(topic)  # a topic outside castline/v1 is a programming error: say so here
        event = Event(topic, payload)
        with self._lock:
            self._retained[topic] = payload
            self.published += 1
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.offer(event)

    def subscribe(self, accepts: Callable[[str], bool] = lambda _t: True) -> Subscription:
        """A new subscription (call on the event loop that will read it).

        It starts with the retained events it accepts, then receives new ones.
        """
        subscription = Subscription(self, accepts, self.queue_size)
        with self._lock:
            retained = [Event(t, p) for t, p in self._retained.items()]
            self._subscribers.append(subscription)
        for event in retained:
            subscription.offer(event)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def retained(self, accepts: Callable[[str], bool] = lambda _t: True) -> list[Event]:
        with self._lock:
            return [Event(t, p) for t, p in self._retained.items() if accepts(t)]

    def count_drop(self) -> None:
        with self._lock:
            self.dropped += 1

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)


class NatsFeed:
    """Feeds the hub with the line's events from NATS until told to stop."""

    def __init__(self, hub: Hub, nats_url: str, connect_options: dict[str, Any] | None = None):
        self.hub = hub
        self.nats_url = nats_url
        self.connect_options = connect_options or {}
        self.received = 0

    async def run(self, stop: asyncio.Event) -> None:
        nc = await nats.connect(
            servers=self.nats_url.split(","),
            name="castline-dashboard",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1.0,
            error_cb=self._broker_error,
            **self.connect_options,
        )
        try:
            await nc.subscribe(events.ALL, cb=self._on_event)
            await stop.wait()
        finally:
            await nc.close()

    async def _on_event(self, msg: Msg) -> None:
        try:
            payload = json.loads(msg.data)
            self.hub.publish(events.topic_of(msg.subject), payload)
        except ValueError as exc:  # not from the line: nothing to show
            log.debug("event on %s ignored: %s", msg.subject, exc)
            return
        self.received += 1

    async def _broker_error(self, exc: Exception) -> None:
        log.debug("live events from %s: %s", self.nats_url, exc)
