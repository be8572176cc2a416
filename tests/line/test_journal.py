"""The verdict journal in a real JetStream: the first verdict of a part stands."""

from __future__ import annotations

from datetime import UTC, datetime

import nats

from castline.domain.shot import PartKey
from castline.messaging.broker import EmbeddedNats
from castline.messaging.journal import VerdictJournal


async def test_first_verdict_stands_and_round_trips(broker: EmbeddedNats) -> None:
    nc = await nats.connect(broker.url)
    journal = await VerdictJournal.open(nc.jetstream())
    key, other = PartKey("p1", "m1", 7), PartKey("p1", "m1", 8)
    decided = datetime(2026, 11, 25, 12, 0, 1, 250_000, tzinfo=UTC)
    ok = {"verdict": "OK", "decided_at": decided, "score": 0.1, "regions": []}
    ng = {"verdict": "NG", "decided_at": datetime.now(UTC), "score": 0.9, "regions": []}
    assert await journal.get(key) is None
    assert await journal.first(key, ok) == (ok, True)
    stands, ours = await journal.first(key, ng)  # a second worker, or a redelivery
    assert not ours and stands["verdict"] == "OK" and stands["decided_at"] == decided
    reopened = await VerdictJournal.open(nc.jetstream())  # another worker, the same bucket
    assert await reopened.get(key) == ok and await reopened.get(other) is None
    assert await journal.die_of(key) is None
    await journal.note_die(key, "D7", True)
    assert await journal.die_of(key) == ("D7", True)
    await nc.close()
