"""Which die and view have a version to roll back to, so the page offers "Roll back" only
there (the same rule as `ModelRegistry.rollback`: an earlier activation, not undone, of a
version other than the active one)."""

from __future__ import annotations

from sqlalchemy import Engine, and_, select

from castline.store import tables as t


def can_roll_back(engine: Engine) -> set[tuple[str, str]]:
    a, m = t.model_activations, t.models
    earlier = (
        select(a.c.die, a.c.view)
        .join(m, and_(m.c.die == a.c.die, m.c.view == a.c.view, m.c.active.is_(True)))
        .where(a.c.rolled_back_at.is_(None), a.c.version != m.c.version)
        .distinct()
    )
    with engine.connect() as conn:
        return {(row.die, row.view) for row in conn.execute(earlier)}
