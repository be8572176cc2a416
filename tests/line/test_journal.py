"""The verdict journal in a real JetStream: the first verdict of a part stands."""

from __future__ import annotations

from datetime import UTC, datetime

import nats

from castline.domain.shot import PartKey
from castline.domain.verdict import PartVerdict, Region, Verdict
from castline.messaging.broker import EmbeddedNats
from castline.messaging.journal import VerdictJournal


async def test_first_verdict_stands_and_round_trips(broker: EmbeddedNats) -> None:
    nc = await nats.connect(broker.url)
    journal = await VerdictJournal.open(nc.jetstream())
    key, other = PartKey("p1", "m1", 7), PartKey("p1", "m1", 8)
    decided = datetime(2026, 11, 25, 12, 0, 1, 250_000, tzinfo=UTC)
    ok = PartVerdict(Verdict.OK, decided, "score 0.100", 0.1, "v3", 12.5, timings={"a": 1.0})
    region = Region(1, 2, 3, 4, 12, 2.5)
    ng = PartVerdict(Verdict.NG, datetime.now(UTC), "score 0.9", 0.9, regions=(region,))
    assert await journal.get(key) is None
    assert await journal.first(key, ok) == (ok, True)
    stands, ours = await journal.first(key, ng)  # a second worker, or a redelivery
    assert not ours and stands == ok
    reopened = await VerdictJournal.open(nc.jetstream())  # another worker, the same bucket
    assert await reopened.get(key) == ok and await reopened.get(other) is None
    assert await journal.first(other, ng) == (ng, True)
    assert await reopened.get(other) == ng  # regions and all
    assert await journal.die_of(key) is None
    await journal.note_die(key, "D7", True)
    assert await journal.die_of(key) == ("D7", True)
    await nc.close()
