"""The record as analytics reads it: DataFrames over the shared reads of
`castline.store.reads` (the part join is written there, not here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select, union_all
from sqlalchemy.sql import Select

from castline.domain.units import NAMES
from castline.store import reads
from castline.store import tables as t
from castline.store.reads import PartFilter


def _frame(engine: Engine, query: Select[Any]) -> pd.DataFrame:
    with engine.connect() as conn:  # plain tuples: pandas looks at each Row object slowly
        rows = [tuple(row) for row in conn.execute(query).all()]
    frame = pd.DataFrame.from_records(rows, columns=list(query.selected_columns.keys()))
    if "at" in frame:
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def shots(
    engine: Engine,
    plant: str,
    *,
    machine: str | None = None,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    parameters: Sequence[str] = NAMES,
) -> pd.DataFrame:
    """Shots in time order with their verdict, review and truth, one row per casting
    (`cavity`: 1 to the die's cavities; a shot without a verdict is one row, cavity 1).

    Adds `ng`: 1.0 defective, 0.0 good, NaN unknown, from the best evidence there is
    (ground truth, else a downstream station's NG, else a person's review, else the
    automatic OK/NG verdict). `parameters`: the process parameters to read (a month of a
    plant is 100,000s of rows: read only what is used).
    """
    s = t.shots
    columns = (*reads.SHOT_FACTS, *(s.c[name] for name in parameters), *reads.OUTCOME)
    columns += (reads.downstream_outcome(), func.coalesce(t.verdicts.c.cavity, 1).label("cavity"))
    where = PartFilter(plant, machine=machine, die=die, since=since, until=until)
    query = reads.parts(*columns, where=where).order_by(s.c.machine, s.c.at, s.c.shot_number)
    frame = _frame(engine, query)
    for name in parameters:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    frame["ng"] = outcome(frame)
    return frame


def outcome(frame: pd.DataFrame) -> pd.Series:
    """1.0 NG, 0.0 OK, NaN unknown: truth, else a downstream NG (X-ray sees porosity a
    photo cannot; a downstream OK says nothing of other defects, so it is not a label),
    else review, else an OK/NG verdict."""
    decided = frame["verdict"].map({"OK": 0.0, "NG": 1.0})
    reviewed = frame["review"].map({"OK": 0.0, "NG": 1.0})
    truth = frame["truth"].map({True: 1.0, False: 0.0})  # SQLite gives 1/0: equal keys
    late = frame["downstream"].map({"NG": 1.0}) if "downstream" in frame else None
    known = truth if late is None else truth.fillna(late)
    return known.fillna(reviewed).fillna(decided).astype(float)


def states(
    engine: Engine,
    plant: str,
    machine: str | None = None,
    until: datetime | None = None,
    since: datetime | None = None,
) -> pd.DataFrame:
    """Machine state changes in time order before `until`; with `since`, those from
    `since` on and, of each machine, the one in force at `since` (a state lasts), not a
    year of older ones."""
    m = t.machine_states
    columns = (m.c.machine, m.c.state, m.c.at, m.c.reason)
    query = reads.states(plant, machine, since=since, until=until).with_only_columns(*columns)
    if since is None:
        return _frame(engine, query)
    in_force = reads.latest_states(plant, before=since).with_only_columns(*columns)
    if machine:
        in_force = in_force.where(m.c.machine == machine)
    both = union_all(query.order_by(None), in_force).subquery()
    return _frame(engine, select(both).order_by(both.c.machine, both.c.at))


def dies(engine: Engine, plant: str | None = None) -> pd.DataFrame:
    """Dies of the plant and of no plant (all dies without a plant)."""
    return _frame(engine, reads.dies([plant] if plant else None))


def die_maintenance(engine: Engine) -> pd.DataFrame:
    m = t.die_maintenance
    query = reads.die_maintenance().with_only_columns(m.c.die, m.c.at, m.c.shot_count, m.c.kind)
    return _frame(engine, query)
