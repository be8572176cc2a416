"""Live alarms in the record, on SQLite and PostgreSQL: one open alarm per key, repeats
counted, closed with a named cause, and a new alarm after that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from castline.domain.alarms import DRIFT, RULE1, Alarm
from castline.domain.live_spc import learn
from castline.store import alarms, database
from castline.store import tables as t

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def drift(at: datetime, count: int = 1, message: str = "melt down") -> Alarm:
    return Alarm("p1", "m1", "D1", "melt_temp_c", DRIFT, message, at, count=count)


def test_repeats_count_on_the_open_alarm_and_a_cause_closes_it(engine: Engine) -> None:
    database.upgrade(engine)
    (first,) = alarms.raise_many(engine, [drift(T0)])
    again, other = alarms.raise_many(
        engine,
        [
            drift(T0 + timedelta(minutes=5), 3, "still down"),
            Alarm("p1", "m1", "D1", "melt_temp_c", RULE1, "x", T0),
        ],
    )
    assert first.opened and not again.opened and other.opened
    assert again.id == first.id and again.count == 4
    assert again.last_seen_at == T0 + timedelta(minutes=5) and again.raised_at == T0
    assert alarms.open_count(engine, "p1") == 2

    with pytest.raises(ValueError):
        alarms.close_with_cause(engine, first.id, "ana", "weather", "it rained")
    with pytest.raises(ValueError):
        alarms.close_with_cause(engine, first.id, "ana", "melt", "  ")
    assert alarms.close_with_cause(engine, first.id, "ana", "melt", "furnace burner out")
    assert not alarms.close_with_cause(engine, first.id, "ana", "melt", "twice")
    with engine.connect() as conn:
        row = conn.execute(select(t.alarms).where(t.alarms.c.id == first.id)).one()
    assert row.cause_category == "melt" and row.acked_by == "ana" and row.cleared_at is not None

    (later,) = alarms.raise_many(engine, [drift(T0 + timedelta(hours=1))])
    assert later.opened and later.id != first.id  # closed: the next report opens anew


def test_the_database_refuses_a_second_open_alarm_of_a_key(engine: Engine) -> None:
    database.upgrade(engine)
    alarms.raise_many(engine, [drift(T0)])
    a = drift(T0)
    row = dict(
        plant="p1",
        machine="m1",
        die="D1",
        subject="melt_temp_c",
        rule=DRIFT,
        severity="warning",
        message="m",
        dedup_key=a.key,
        raised_at=T0,
        last_seen_at=T0,
        count=1,
    )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(t.alarms.insert().values(**row))


def test_a_learnt_baseline_is_kept_and_read_back(engine: Engine) -> None:
    database.upgrade(engine)
    names = ("melt_temp_c", "vacuum_mbar", "spray_time_s")
    rows = np.column_stack(
        [680 + np.arange(100) % 5, 60 + np.arange(100) % 7, np.full(100, np.nan)]
    )
    learnt = learn(names, rows.astype(float))
    kept = alarms.StoredBaseline("p1", "m1", "D1", 2, learnt, T0)
    alarms.save_baselines(engine, [kept])
    alarms.save_baselines(engine, [kept])  # a new regime replaces the row, never adds one
    (back,) = alarms.load_baselines(engine, ("vacuum_mbar", "melt_temp_c", "spray_time_s"))
    assert (back.plant, back.machine, back.die, back.regime) == ("p1", "m1", "D1", 2)
    assert back.baseline.center[1] == pytest.approx(learnt.center[0])
    assert back.baseline.sigma[0] == pytest.approx(learnt.sigma[1])
    assert np.isnan(back.baseline.sigma[2]) and back.baseline.charted == 2
