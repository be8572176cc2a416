"""Alarm de-duplication, acknowledgement and clearing, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from castline.analytics import alarms
from castline.store import database

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def test_repeat_bumps_count_ack_then_clear(engine: Engine) -> None:
    database.upgrade(engine)
    args = ("p1", "m1", "8412", "melt_temp_c", "nelson2", "melt temperature: nine in a row")
    first, new = alarms.raise_alarm(engine, *args, at=T0)
    again, new_again = alarms.raise_alarm(engine, *args, at=T0 + timedelta(minutes=5))
    other, other_new = alarms.raise_alarm(
        engine, "p1", "m1", "8412", "melt_temp_c", "nelson1", "beyond 3 sigma", at=T0
    )
    assert new and not new_again and other_new
    assert again == first != other
    (row,) = [a for a in alarms.listing(engine, "p1") if a["id"] == first]
    assert row["count"] == 2
    assert row["dedup_key"] == "p1/m1/8412/melt_temp_c/nelson2"
    assert datetime.fromisoformat(row["last_seen_at"]) == T0 + timedelta(minutes=5)

    assert alarms.acknowledge(engine, first, "ana", "ladle furnace thermocouple", at=T0)
    (row,) = [a for a in alarms.listing(engine, "p1") if a["id"] == first]
    assert row["acked_by"] == "ana" and row["ack_comment"] == "ladle furnace thermocouple"

    assert alarms.clear(engine, first, at=T0 + timedelta(hours=1))
    assert not alarms.clear(engine, first)  # already cleared
    assert [a["id"] for a in alarms.listing(engine, "p1")] == [other]
    assert len(alarms.listing(engine, "p1", open_only=False)) == 2

    reraised, is_new = alarms.raise_alarm(engine, *args, at=T0 + timedelta(hours=2))
    assert is_new and reraised not in (first, other)


def test_unknown_alarm_cannot_be_acknowledged(sqlite_engine: Engine) -> None:
    database.upgrade(sqlite_engine)
    assert not alarms.acknowledge(sqlite_engine, 999, "ana")
