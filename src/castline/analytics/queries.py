"""Reads for analytics: shots with their outcome, machine states, dies, as DataFrames."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import ColumnElement, Engine, Table, and_, select

from castline.domain.units import NAMES
from castline.store import tables as t


def _same_part(table: Table) -> ColumnElement[bool]:
    s = t.shots.c
    return and_(
        table.c.plant == s.plant,
        table.c.machine == s.machine,
        table.c.shot_number == s.shot_number,
    )


def shots(
    engine: Engine,
    plant: str,
    *,
    machine: str | None = None,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Shots in time order with their verdict, review and truth, one row each.

    Adds `ng`: 1.0 defective, 0.0 good, NaN unknown, from the best evidence there is
    (ground truth, else a person's review, else the automatic OK/NG verdict).
    """
    s, v, r, tr = t.shots, t.verdicts, t.reviews, t.truths
    query = (
        select(
            s.c.plant,
            s.c.machine,
            s.c.shot_number,
            s.c.die,
            s.c.at,
            s.c.trial,
            *(s.c[name] for name in NAMES),
            v.c.verdict,
            r.c.decision.label("review"),
            tr.c.defective.label("truth"),
            tr.c.defect_type,
        )
        .select_from(
            s.outerjoin(v, _same_part(v)).outerjoin(r, _same_part(r)).outerjoin(tr, _same_part(tr))
        )
        .where(s.c.plant == plant)
        .order_by(s.c.machine, s.c.at, s.c.shot_number)
    )
    if machine:
        query = query.where(s.c.machine == machine)
    if die:
        query = query.where(s.c.die == die)
    if since:
        query = query.where(s.c.at >= since)
    if until:
        query = query.where(s.c.at < until)
    with engine.connect() as conn:
        frame = pd.DataFrame(
            conn.execute(query).fetchall(), columns=list(query.selected_columns.keys())
        )
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    for name in NAMES:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["ng"] = outcome(frame)
    return frame


def outcome(frame: pd.DataFrame) -> pd.Series:
    """1.0 NG, 0.0 OK, NaN unknown: truth, else review, else an OK/NG verdict."""
    decided = frame["verdict"].map({"OK": 0.0, "NG": 1.0})
    reviewed = frame["review"].map({"OK": 0.0, "NG": 1.0})
    truth = frame["truth"].map({True: 1.0, False: 0.0})  # SQLite gives 1/0: equal keys
    return truth.fillna(reviewed).fillna(decided).astype(float)


def states(
    engine: Engine, plant: str, machine: str | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """Machine state changes in time order (all of them before `until`: a state lasts)."""
    m = t.machine_states
    query = select(m.c.machine, m.c.state, m.c.at, m.c.reason).where(m.c.plant == plant)
    if machine:
        query = query.where(m.c.machine == machine)
    if until:
        query = query.where(m.c.at < until)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(m.c.machine, m.c.at)).fetchall()
    frame = pd.DataFrame(rows, columns=["machine", "state", "at", "reason"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def dies(engine: Engine, plant: str | None = None) -> pd.DataFrame:
    d = t.dies
    query = select(d)
    if plant:
        query = query.where((d.c.plant == plant) | d.c.plant.is_(None))
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).fetchall(), columns=list(d.c.keys()))


def die_maintenance(engine: Engine) -> pd.DataFrame:
    m = t.die_maintenance
    with engine.connect() as conn:
        rows = conn.execute(select(m.c.die, m.c.at, m.c.shot_count, m.c.kind)).fetchall()
    frame = pd.DataFrame(rows, columns=["die", "at", "shot_count", "kind"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame
