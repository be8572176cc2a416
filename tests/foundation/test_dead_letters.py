"""Recording a dead letter cannot fail for what the message was, on SQLite and PostgreSQL.

A shot on a topic with a 400-character machine level once stopped the line for good on
PostgreSQL: its letter did not fit `dead_letters.source`, the error escaped and the
worker died on every redelivery."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from castline.messaging.schema import InvalidMessage, decode
from castline.store import database
from castline.store import tables as t
from castline.store.repository import (
    DEAD_LETTER_KEEP,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SOURCE,
    Store,
)

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
LONG_TOPIC = "castline.v1.p1." + "m" * 400 + ".shot"


@pytest.fixture
def store(engine: Engine) -> Store:
    database.upgrade(engine)
    return Store(engine)


def only_letter(store: Store) -> dict[str, object]:
    letters = store.dead_letters()
    assert len(letters) == 1
    return letters[0]


def test_a_400_character_topic_is_refused_and_its_letter_recorded(store: Store) -> None:
    with pytest.raises(InvalidMessage) as refused:
        decode(LONG_TOPIC, b'{"v": 1}')
    assert store.record_dead_letter(LONG_TOPIC, refused.value.reason, b'{"v": 1}', T0, "S:7")
    assert not store.record_dead_letter(LONG_TOPIC, refused.value.reason, b'{"v": 1}', T0, "S:7")
    letter = only_letter(store)
    source = str(letter["source"])
    assert len(source) == DEAD_LETTER_SOURCE and source.endswith("…")
    assert source.startswith("castline.v1.p1.mmm")
    assert "420 characters" in str(letter["reason"])


HOSTILE = [
    pytest.param("castline/v1/p1/m1/shot\x00\x00", "bad\x00reason", b"\x00\x00", id="nul"),
    pytest.param("castline/v1/p1/\udcff/shot", "lone \ud800 surrogate", b"x", id="surrogate"),
    pytest.param("castline/v1/p1/m1/shot", "not JSON", b"\xff\xfe\xc3\x28\xa0", id="not-utf8"),
    pytest.param("castline/v1/p1/m1/image/x", "too big", b"\x89" * 10_000_000, id="10MB"),
    pytest.param("castline/v1/p1/m1/shot", "r\x00" * 600_000, b"{}", id="huge-reason"),
    pytest.param("c" * 5000 + "\x00", "", b"", id="long-empty"),
    pytest.param("castline/v1/p1/m1/shot", "as text", "payload as str \udcff", id="str-payload"),
]


@pytest.mark.parametrize(("source", "reason", "payload"), HOSTILE)
def test_hostile_letters_are_kept_bounded(
    store: Store, source: str, reason: str, payload: bytes | str
) -> None:
    assert store.record_dead_letter(source, reason, payload, T0)
    assert not store.record_dead_letter(source, reason, payload, T0)  # a redelivery
    whole = payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogatepass")
    letter = only_letter(store)
    assert len(str(letter["source"])) <= DEAD_LETTER_SOURCE
    assert len(str(letter["reason"])) <= DEAD_LETTER_REASON
    for text in (str(letter["source"]), str(letter["reason"])):
        assert "\x00" not in text
        text.encode("utf-8")  # storable and readable: no lone surrogates came back
    assert letter["payload"] == whole[:DEAD_LETTER_KEEP]
    assert letter["payload_size"] == len(whole)
    assert letter["payload_sha256"] == hashlib.sha256(whole).hexdigest()


def test_a_naive_or_missing_time_becomes_now(store: Store) -> None:
    before = datetime.now(UTC)
    assert store.record_dead_letter("castline/v1/p1/m1/shot", "x", b"1", datetime(2026, 1, 1))
    assert store.record_dead_letter("castline/v1/p1/m1/shot", "y", b"2", None, "S:2")
    assert all(letter["received_at"] >= before for letter in store.dead_letters())  # type: ignore[operator]


def test_an_unreachable_database_is_the_one_error_that_escapes(tmp_path: object) -> None:
    engine = database.connect("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises((sa.exc.OperationalError, sa.exc.InterfaceError)):
            Store(engine).record_dead_letter("castline/v1/p1/m1/shot", "x", b"{}", T0)
    finally:
        engine.dispose()


def test_migration_0003_fills_size_and_hash_of_older_letters(engine: Engine) -> None:
    database.upgrade(engine, "0002")
    old = sa.table(
        "dead_letters",
        sa.column("received_at", t.UtcDateTime()),
        sa.column("source", sa.String()),
        sa.column("reason", sa.Text()),
        sa.column("payload", sa.LargeBinary()),
        sa.column("digest", sa.String()),
    )
    payloads = [b"{oops", b"", b"\x00" * 300]
    rows = [
        {"received_at": T0, "source": "s", "reason": "r", "payload": p, "digest": str(i)}
        for i, p in enumerate(payloads)
    ]
    with engine.begin() as conn:
        conn.execute(old.insert(), rows)
    database.upgrade(engine, "0003")
    letters = sorted(Store(engine).dead_letters(), key=lambda r: str(r["digest"]))
    assert [r["payload_size"] for r in letters] == [len(p) for p in payloads]
    assert [r["payload_sha256"] for r in letters] == [
        hashlib.sha256(p).hexdigest() for p in payloads
    ]
    database.downgrade(engine, "0002")
    columns = {c["name"] for c in sa.inspect(engine).get_columns("dead_letters")}
    assert "payload_size" not in columns and "payload_sha256" not in columns
