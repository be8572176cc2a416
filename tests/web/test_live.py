"""The event hub: retained last values, bounded queues that drop the oldest, any thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from castline.web.live import Hub

VERDICT = "castline/v1/p1/m1/verdict"


async def test_a_new_subscriber_starts_with_the_last_value_of_each_topic() -> None:
    hub = Hub()
    hub.publish(VERDICT, {"shot_number": 1})
    hub.publish(VERDICT, {"shot_number": 2})
    hub.publish("castline/v1/p1/m1/state", {"state": "running"})
    assert [e.payload for e in hub.retained(lambda topic: topic == VERDICT)] == [{"shot_number": 2}]
    with hub.subscribe() as subscription:
        first = [await subscription.get(timeout=1) for _ in range(2)]
        assert await subscription.get(timeout=0.05) is None
    assert {(e.topic, str(e.payload)) for e in first if e} == {
        (VERDICT, "{'shot_number': 2}"),
        ("castline/v1/p1/m1/state", "{'state': 'running'}"),
    }
    assert hub.subscribers == 0


async def test_a_slow_subscriber_loses_the_oldest_events_and_they_are_counted() -> None:
    hub = Hub(queue_size=3)
    with hub.subscribe() as slow, hub.subscribe() as other:
        for number in range(5):
            hub.publish(VERDICT, {"shot_number": number})
        got = [await slow.get(timeout=1) for _ in range(3)]
        assert [e.payload["shot_number"] for e in got if e] == [2, 3, 4]
        assert slow.dropped == 2 and other.dropped == 2
    assert hub.dropped == 4 and hub.published == 5


async def test_publish_from_another_thread_wakes_the_reader() -> None:
    hub = Hub()
    with hub.subscribe() as subscription:
        waiting = asyncio.create_task(subscription.get(timeout=5))
        await asyncio.sleep(0.01)
        thread = threading.Thread(target=hub.publish, args=(VERDICT, {"shot_number": 7}))
        thread.start()
        event = await waiting
        thread.join()
    assert event is not None and event.payload == {"shot_number": 7}


async def test_a_subscription_receives_only_the_topics_it_accepts() -> None:
    hub = Hub()
    with hub.subscribe(lambda topic: topic.startswith("castline/v1/p1/")) as subscription:
        hub.publish("castline/v1/p2/m9/verdict", {"shot_number": 1})
        hub.publish(VERDICT, {"shot_number": 2})
        event = await subscription.get(timeout=1)
        assert event is not None and event.topic == VERDICT
        assert await subscription.get(timeout=0.05) is None


def test_topics_outside_the_protocol_namespace_are_refused() -> None:
    with pytest.raises(ValueError, match="castline/v1"):
        Hub().publish("plant/m1/verdict", {})
