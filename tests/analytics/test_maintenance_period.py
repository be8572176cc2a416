"""Maintenance reads the period it is asked about and says when die life is a default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine

from castline.analytics import maintenance
from castline.analytics.config import AnalyticsConfig
from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store, insert_ignore

JAN = datetime(2019, 1, 7, tzinfo=UTC)
MAR = datetime(2019, 3, 5, tzinfo=UTC)


def record(engine: Engine) -> None:
    """January: NG climbing from 1 % to 30 %; March, after a polish: steady 2 %."""
    database.upgrade(engine)
    store = Store(engine)
    store.ensure_machine("p1", Machine("m1"))
    store.ensure_die("8573", machine="m1", plant="p1")
    rng = np.random.default_rng(1)
    jan = [JAN + timedelta(minutes=2 * i) for i in range(1500)]
    mar = [MAR + timedelta(minutes=2 * i) for i in range(600)]
    p = np.concatenate((np.linspace(0.01, 0.3, 1500), np.full(600, 0.02)))
    bad = rng.random(p.size) < p
    shots = [Shot(PartKey("p1", "m1", i), "8573", when, {}) for i, when in enumerate(jan + mar)]
    store.record_shots(shots)
    rows = [
        {
            "plant": "p1",
            "machine": "m1",
            "shot_number": s.key.shot_number,
            "defective": bool(b),
            "defect_type": None,
            "cause": "",
        }
        for s, b in zip(shots, bad, strict=True)
    ]
    with engine.begin() as conn:
        insert_ignore(conn, t.truths, rows)


def test_the_trend_is_of_the_period_and_a_default_life_is_said(engine: Engine) -> None:
    record(engine)
    whole = maintenance.report(engine, "p1", JAN, JAN + timedelta(days=3))
    (die,) = whole["dies"]
    assert die["ng_rising"] and die["action"] == "plan polish at next setup"
    march = maintenance.report(engine, "p1", MAR, MAR + timedelta(days=2))
    (die,) = march["dies"]
    assert die["shots_in_period"] == 600 and die["shots_since_maintenance"] == 2100
    assert not die["ng_rising"] and die["action"] == "no action"
    assert die["rated_life_source"] == "default"
    assert "rated life 100,000 shots is a default" in die["reason"]
    config = AnalyticsConfig(rated_life_by_die={"8573": 2000})
    (set_die,) = maintenance.report(engine, "p1", MAR, MAR + timedelta(days=2), config)["dies"]
    assert set_die["rated_life_source"] == "configured" and set_die["rated_life_shots"] == 2000
    assert set_die["action"] == "maintain now: rated life exceeded"
    assert "default" not in set_die["reason"]
