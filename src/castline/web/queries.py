"""Read queries of the dashboard, on the store's tables (SQLite and PostgreSQL alike).

Every query that returns plant data takes the plants the caller may see (None: all).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, false, func, or_, select, union
from sqlalchemy.sql import Select

from castline.domain.verdict import Verdict
from castline.store import tables as t
from castline.web.auth import Principal, Role

Row = dict[str, Any]
Plants = Sequence[str] | None  # None: every plant


def _rows(engine: Engine, query: Select[Any]) -> list[Row]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _scoped(query: Select[Any], column: Any, plants: Plants) -> Select[Any]:
    return query if plants is None else query.where(column.in_(list(plants)))


def _same_part(a: Any, b: Any) -> Any:
    return and_(
        a.c.plant == b.c.plant, a.c.machine == b.c.machine, a.c.shot_number == b.c.shot_number
    )


def plants(engine: Engine, visible: Plants) -> list[Row]:
    """Plants from the master data and from the facts (a line may record shots and states
    of a plant nobody registered)."""
    p, s, st = t.plants, t.shots, t.machine_states
    known = union(select(p.c.id), select(s.c.plant), select(st.c.plant)).subquery()
    query = (
        select(known.c.id, func.coalesce(p.c.name, known.c.id).label("name"))
        .select_from(known.outerjoin(p, p.c.id == known.c.id))
        .order_by(known.c.id)
    )
    return _rows(engine, _scoped(query, known.c.id, visible))


def _machines(plant: str) -> Select[Any]:
    """Machines of a plant from the master data and from the facts, with their names."""
    m, s, st = t.machines, t.shots, t.machine_states
    known = union(
        select(m.c.id).where(m.c.plant == plant),
        select(s.c.machine).where(s.c.plant == plant),
        select(st.c.machine).where(st.c.plant == plant),
    ).subquery()
    return (
        select(known.c.id, func.coalesce(m.c.name, known.c.id).label("name"))
        .select_from(known.outerjoin(m, and_(m.c.plant == plant, m.c.id == known.c.id)))
        .order_by(known.c.id)
    )


def _latest(table: Any, plant: str, *order: Any) -> Any:
    """Subquery: the newest row of `table` per machine of a plant."""
    rank = func.row_number().over(partition_by=table.c.machine, order_by=[o.desc() for o in order])
    ranked = select(table, rank.label("rank")).where(table.c.plant == plant).subquery()
    return select(ranked).where(ranked.c.rank == 1).subquery()


def _newest_part(table: Any, plant: str) -> Any:
    """Subquery: the row of each machine's highest shot number (the machine's counter),
    found through the unique (plant, machine, shot_number) index."""
    newest = (
        select(table.c.machine, func.max(table.c.shot_number).label("shot_number"))
        .where(table.c.plant == plant)
        .group_by(table.c.machine)
        .subquery()
    )
    on = and_(
        table.c.plant == plant,
        table.c.machine == newest.c.machine,
        table.c.shot_number == newest.c.shot_number,
    )
    return select(table).join(newest, on).subquery()


def machine_tiles(engine: Engine, plant: str, since: datetime) -> list[Row]:
    """Per machine: state, die, shots and verdicts since `since`, last casting, open alarms.

    One query per figure for all machines together, so a plant of many machines costs
    no more round trips than one.
    """
    s, v, st, a, img = t.shots, t.verdicts, t.machine_states, t.alarms, t.images
    state = _latest(st, plant, st.c.at)
    last_shot = _newest_part(s, plant)
    last = _newest_part(v, plant)
    first_image = (
        select(func.min(img.c.blob)).where(_same_part(img, last)).correlate(last).scalar_subquery()
    )
    with engine.connect() as conn:
        machines_ = conn.execute(_machines(plant)).all()
        states = {r.machine: r for r in conn.execute(select(state))}
        shots_ = {
            r.machine: r
            for r in conn.execute(
                select(last_shot.c.machine, last_shot.c.shot_number, last_shot.c.die)
            )
        }
        lasts = {
            r.machine: r
            for r in conn.execute(
                select(
                    last.c.machine, last.c.shot_number, last.c.verdict, last.c.score,
                    last.c.decided_at, last.c.heatmap, first_image.label("image"),
                )
            )
        }  # fmt: skip
        shots_today: dict[str, int] = dict(
            conn.execute(
                select(s.c.machine, func.count())
                .where(s.c.plant == plant, s.c.at >= since)
                .group_by(s.c.machine)
            ).all()
        )
        counts: dict[str, dict[str, int]] = {}
        for machine, verdict, n in conn.execute(
            select(v.c.machine, v.c.verdict, func.count())
            .where(v.c.plant == plant, v.c.decided_at >= since)
            .group_by(v.c.machine, v.c.verdict)
        ):
            counts.setdefault(machine, {})[verdict] = int(n)
        alarms_open: dict[str | None, int] = dict(
            conn.execute(
                select(a.c.machine, func.count())
                .where(a.c.plant == plant, a.c.cleared_at.is_(None))
                .group_by(a.c.machine)
            ).all()
        )
    tiles = []
    for machine in machines_:
        here, shot, verdicts = (
            states.get(machine.id),
            shots_.get(machine.id),
            counts.get(machine.id, {}),
        )
        latest = lasts.get(machine.id)
        decided = sum(verdicts.values())
        tiles.append(
            {
                "plant": plant,
                "machine": machine.id,
                "name": machine.name,
                "state": here.state if here else "offline",
                "state_at": here.at if here else None,
                "die": (here.die if here and here.die else None) or (shot.die if shot else None),
                "shot_number": shot.shot_number if shot else None,
                "shots_today": int(shots_today.get(machine.id, 0)),
                "verdicts_today": verdicts,
                "yield_today": verdicts.get(Verdict.OK.value, 0) / decided if decided else None,
                "last": {
                    k: getattr(latest, k)
                    for k in ("shot_number", "verdict", "score", "decided_at", "heatmap")
                }
                if latest
                else None,
                "image": latest.image if latest else None,
                "alarms_open": int(alarms_open.get(machine.id, 0)),
            }
        )
    return tiles


def review_queue(engine: Engine, visible: Plants, limit: int = 100) -> list[Row]:
    """REVIEW and NG parts that no person has confirmed yet, newest first."""
    v, r, img = t.verdicts, t.reviews, t.images
    first_image = (
        select(func.min(img.c.blob))
        .where(_same_part(img, v))
        .correlate(v)
        .scalar_subquery()
        .label("image")
    )
    query = (
        select(v, first_image)
        .select_from(v.outerjoin(r, _same_part(r, v)))
        .where(v.c.verdict.in_([Verdict.REVIEW.value, Verdict.NG.value]), r.c.id.is_(None))
        .order_by(v.c.decided_at.desc(), v.c.id.desc())
        .limit(limit)
    )
    return _rows(engine, _scoped(query, v.c.plant, visible))


def reviews(engine: Engine, visible: Plants, limit: int = 100) -> list[Row]:
    r = t.reviews
    query = select(r).order_by(r.c.at.desc(), r.c.id.desc()).limit(limit)
    return _rows(engine, _scoped(query, r.c.plant, visible))


def alarms(engine: Engine, visible: Plants, open_only: bool = False, limit: int = 200) -> list[Row]:
    a = t.alarms
    query = select(a).order_by(a.c.cleared_at.is_not(None), a.c.raised_at.desc()).limit(limit)
    if open_only:
        query = query.where(a.c.cleared_at.is_(None))
    return _rows(engine, _scoped(query, a.c.plant, visible))


def alarm(engine: Engine, alarm_id: int) -> Row | None:
    rows = _rows(engine, select(t.alarms).where(t.alarms.c.id == alarm_id))
    return rows[0] if rows else None


def dies(engine: Engine, visible: Plants) -> list[Row]:
    d = t.dies
    query = select(d).order_by(d.c.code)
    if visible is not None:
        query = query.where(or_(d.c.plant.in_(list(visible)), d.c.plant.is_(None)))
    rows = _rows(engine, query)
    for row in rows:
        rated = row["rated_life_shots"] or 0
        row["life_used"] = row["shot_counter"] / rated if rated else None
    return rows


def die_maintenance(engine: Engine, die: str) -> list[Row]:
    m = t.die_maintenance
    return _rows(engine, select(m).where(m.c.die == die).order_by(m.c.at.desc()))


def parameter_series(
    engine: Engine, plant: str, machine: str, parameter: str, limit: int = 500
) -> list[Row]:
    """The last `limit` readings of one parameter, oldest first, with each part's verdict."""
    s, v = t.shots, t.verdicts
    query = (
        select(s.c.shot_number, s.c.at, s.c.die, s.c[parameter].label("value"), v.c.verdict)
        .select_from(s.outerjoin(v, _same_part(v, s)))
        .where(s.c.plant == plant, s.c.machine == machine)
        .order_by(s.c.at.desc(), s.c.shot_number.desc())
        .limit(limit)
    )
    return list(reversed(_rows(engine, query)))


def defect_pareto(engine: Engine, plant: str, machine: str | None = None) -> list[tuple[str, int]]:
    """Confirmed NG parts by defect type, most frequent first (reviews are the truth here)."""
    r = t.reviews
    kind = func.coalesce(r.c.defect_type, "unnamed")
    query = (
        select(kind, func.count())
        .where(r.c.plant == plant, r.c.decision == Verdict.NG.value)
        .group_by(kind)
        .order_by(func.count().desc(), kind)
    )
    if machine:
        query = query.where(r.c.machine == machine)
    with engine.connect() as conn:
        return [(str(k), int(n)) for k, n in conn.execute(query)]


def models(engine: Engine) -> list[Row]:
    m = t.models
    return _rows(engine, select(m).order_by(m.c.die, m.c.view, m.c.created_at.desc()))


def model(engine: Engine, model_id: int) -> Row | None:
    rows = _rows(engine, select(t.models).where(t.models.c.id == model_id))
    return rows[0] if rows else None


def dead_letters(engine: Engine, visible: Plants, limit: int = 200) -> list[Row]:
    """Invalid messages, newest first; a plant-scoped user sees those sent on its plants."""
    d = t.dead_letters
    query = select(d).order_by(d.c.received_at.desc(), d.c.id.desc()).limit(limit)
    if visible is not None:
        query = query.where(
            or_(
                *(d.c.source.startswith(f"castline/v1/{p}/") for p in visible),
                *(d.c.source.startswith(f"castline.v1.{p}.") for p in visible),
                false(),  # no plants: nothing
            )
        )
    return _rows(engine, query)


def users(engine: Engine, visible: Plants = None) -> list[Row]:
    """Users with their count of live keys; with `visible`, only users whose plants all
    lie within it (a user of every plant is beyond any plant-scoped admin)."""
    u, k = t.users, t.api_keys
    keys = (
        select(func.count())
        .where(k.c.user_id == u.c.id, k.c.revoked_at.is_(None))
        .correlate(u)
        .scalar_subquery()
        .label("key_count")
    )
    query = select(u.c.id, u.c.username, u.c.role, u.c.plants, u.c.created_at, keys)
    rows = _rows(engine, query.order_by(u.c.username))
    if visible is None:
        return rows
    scope = set(visible)
    return [r for r in rows if r["plants"] and set(r["plants"]) <= scope]


def user(engine: Engine, username: str) -> Principal | None:
    with engine.connect() as conn:
        row = conn.execute(select(t.users).where(t.users.c.username == username)).first()
    if row is None:
        return None
    return Principal(row.id, row.username, Role.of(row.role), tuple(row.plants or ()))


def audit_log(engine: Engine, limit: int = 200, visible: Plants = None) -> list[Row]:
    """The newest audit rows; with `visible`, those that name plants, all within it."""
    a, ap = t.audit_log, t.audit_plants
    query = select(a).order_by(a.c.at.desc(), a.c.id.desc()).limit(limit)
    if visible is not None:
        tagged = select(ap.c.audit_id).where(ap.c.audit_id == a.c.id)
        beyond = tagged.where(ap.c.plant.not_in(list(visible)))
        query = query.where(tagged.exists(), ~beyond.exists())
    return _rows(engine, query)


def die_plants(engine: Engine, die: str) -> list[str]:
    """The plant of a die, when the master data names one."""
    with engine.connect() as conn:
        plant = conn.execute(select(t.dies.c.plant).where(t.dies.c.code == die)).scalar()
    return [str(plant)] if plant else []


def blob_plants(engine: Engine, digest: str) -> set[str]:
    """Plants whose images or heat maps hold this blob: who may see it."""
    with engine.connect() as conn:
        found = conn.execute(select(t.images.c.plant).where(t.images.c.blob == digest)).scalars()
        plants_ = set(found)
        found = conn.execute(
            select(t.verdicts.c.plant).where(t.verdicts.c.heatmap == digest)
        ).scalars()
        return plants_ | set(found)


def blob_content_type(engine: Engine, digest: str) -> str:
    with engine.connect() as conn:
        kind = conn.execute(
            select(t.images.c.content_type).where(t.images.c.blob == digest).limit(1)
        ).scalar()
    return str(kind) if kind else "image/png"  # heat maps are PNG
