"""Alarms: raised by analytics, de-duplicated, acknowledged by a person, then cleared.

One open alarm per dedup key (plant/machine/die/subject/rule): a repeat of an open
alarm bumps its count and last-seen time instead of adding a row. Once cleared, the
same condition raises a new alarm.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from castline.store import tables as t

SEVERITIES = ("info", "warning", "critical")


def dedup_key(plant: str, machine: str | None, die: str | None, subject: str, rule: str) -> str:
    return f"{plant}/{machine or '-'}/{die or '-'}/{subject}/{rule}"


def raise_alarm(
    engine: Engine,
    plant: str,
    machine: str | None,
    die: str | None,
    subject: str,
    rule: str,
    message: str,
    *,
    severity: str = "warning",
    at: datetime | None = None,
    seen_until: datetime | None = None,
) -> tuple[int, bool]:
    """Raise an alarm or bump the open one with the same key; return (id, is_new).

    `at` is when the condition was first seen, `seen_until` the last time (if later):
    a scan over past shots raises at the first hit and remembers the last.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    at = at or datetime.now(UTC)
    last = max(at, seen_until) if seen_until else at
    key = dedup_key(plant, machine, die, subject, rule)
    a = t.alarms
    with engine.begin() as conn:
        query = select(a.c.id, a.c.last_seen_at).where(
            a.c.dedup_key == key, a.c.cleared_at.is_(None)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is not None:
            conn.execute(
                update(a)
                .where(a.c.id == row.id)
                .values(
                    count=a.c.count + 1, last_seen_at=max(last, row.last_seen_at), message=message
                )
            )
            return int(row.id), False
        result = conn.execute(
            a.insert().values(
                plant=plant,
                machine=machine,
                die=die,
                subject=subject,
                rule=rule,
                severity=severity,
                message=message,
                dedup_key=key,
                raised_at=at,
                last_seen_at=last,
                count=1,
            )
        )
        new_id = result.inserted_primary_key
        assert new_id is not None
        return int(new_id[0]), True


def acknowledge(
    engine: Engine, alarm_id: int, who: str, comment: str = "", at: datetime | None = None
) -> bool:
    """A person has seen the alarm (and says what caused it); False if no such open alarm."""
    if not who:
        raise ValueError("an acknowledgement needs the name of who acknowledges")
    a = t.alarms
    with engine.begin() as conn:
        result = conn.execute(
            update(a)
            .where(a.c.id == alarm_id, a.c.cleared_at.is_(None))
            .values(acked_by=who, acked_at=at or datetime.now(UTC), ack_comment=comment)
        )
        return result.rowcount == 1


def clear(engine: Engine, alarm_id: int, at: datetime | None = None) -> bool:
    """The condition is gone; False if the alarm does not exist or is already cleared."""
    a = t.alarms
    with engine.begin() as conn:
        result = conn.execute(
            update(a)
            .where(a.c.id == alarm_id, a.c.cleared_at.is_(None))
            .values(cleared_at=at or datetime.now(UTC))
        )
        return result.rowcount == 1


def listing(
    engine: Engine,
    plant: str,
    *,
    open_only: bool = True,
    machine: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Alarms of a plant, newest first, as plain dicts (timestamps in ISO 8601)."""
    a = t.alarms
    query = select(a).where(a.c.plant == plant).order_by(a.c.last_seen_at.desc()).limit(limit)
    if open_only:
        query = query.where(a.c.cleared_at.is_(None))
    if machine:
        query = query.where(a.c.machine == machine)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        for k, v in row.items():
            if isinstance(v, datetime):
                row[k] = v.isoformat()
    return rows
