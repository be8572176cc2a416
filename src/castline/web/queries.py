"""Read queries of the dashboard: what only the dashboard asks (tiles, queues, users,
audit), on the shared reads of `castline.store.reads` (the part join is written there).

Every query that returns plant data takes the plants the caller may see (None: all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, false, func, or_, select
from sqlalchemy.sql import Select

from castline.domain.verdict import Verdict
from castline.store import reads, rollups
from castline.store import tables as t
from castline.store.reads import PartFilter
from castline.web.auth import Principal, Role

Row = dict[str, Any]
Plants = Sequence[str] | None  # None: every plant


def _scoped(query: Select[Any], column: Any, plants: Plants) -> Select[Any]:
    return query if plants is None else query.where(column.in_(list(plants)))


def plants(engine: Engine, visible: Plants) -> list[Row]:
    """Plants from the master data and from the facts, with their names."""
    known = reads.known_plants().subquery()
    query = select(known).order_by(known.c.id)
    return reads.rows(engine, _scoped(query, known.c.id, visible))


def machine_tiles(engine: Engine, plant: str, since: datetime) -> list[Row]:
    """Per machine: state, die, shots and verdicts since `since`, last casting, open alarms.

    One query per figure for all machines together, so a plant of many machines costs
    no more round trips than one.
    """
    with engine.connect() as conn:
        figures = _tile_figures(conn, plant, since)
    return [_tile(plant, machine, figures) for machine in figures.machines]


@dataclass(frozen=True, slots=True)
class _TileFigures:
    """Each figure of the tiles, by machine."""

    machines: list[Any]
    states: dict[str, Any]
    shots: dict[str, Any]  # the newest shot
    lasts: dict[str, Any]  # the newest decided part
    shots_today: dict[str, int]
    verdicts_today: dict[str, dict[str, int]]
    alarms_open: dict[str, int]
    envelope_today: dict[str, int]  # shots outside their die's golden envelope


def _tile_figures(conn: Connection, plant: str, since: datetime) -> _TileFigures:
    # shots counted by the hour (store/rollups.py) need not be searched for machines
    mark = rollups.hour_mark(conn)
    machines = list(conn.execute(reads.known_machines(plant, rollups.month_of(mark))))
    ids = [m.id for m in machines] or [""]  # found once, probed by each query below
    newest_since = rollups.newest_bound(conn, plant, ids, mark)  # older partitions: not read
    last_shot = reads.newest_part(t.shots, plant, ids, since=newest_since)
    last = reads.newest_part(t.verdicts, plant, ids)
    newest = select(last_shot.c.machine, last_shot.c.shot_number, last_shot.c.die)
    decided = select(
        last.c.machine, last.c.shot_number, last.c.verdict, last.c.score,
        last.c.decided_at, last.c.heatmap, reads.first_image(last),
    )  # fmt: skip
    a = t.alarms
    open_alarms = (
        select(a.c.machine, func.count())
        .where(a.c.plant == plant, a.c.cleared_at.is_(None))
        .group_by(a.c.machine)
    )
    counts: dict[str, dict[str, int]] = {}
    for machine, verdict, n in conn.execute(reads.verdict_counts(plant, since)):
        counts.setdefault(machine, {})[verdict] = int(n)
    made = conn.execute(_made(plant, since)).all()  # the day's shots read once for both
    return _TileFigures(
        machines=machines,
        states={r.machine: r for r in conn.execute(reads.latest_states(plant, machines=ids))},
        shots={r.machine: r for r in conn.execute(newest)},
        lasts={r.machine: r for r in conn.execute(decided)},
        shots_today={m: int(n) for m, n, _ in made},
        verdicts_today=counts,
        alarms_open={m: int(n) for m, n in conn.execute(open_alarms)},
        envelope_today={m: int(b) for m, _, b in made if b},
    )


def _made(plant: str, since: datetime) -> Select[Any]:
    """(machine, shots, shots outside their die's golden envelope) since `since`."""
    s = t.shots.c
    return (
        select(s.machine, func.count(), func.count(s.envelope_breach))
        .where(s.plant == plant, s.at >= since)
        .group_by(s.machine)
    )


def _tile(plant: str, machine: Any, f: _TileFigures) -> Row:
    here, shot, latest = f.states.get(machine.id), f.shots.get(machine.id), f.lasts.get(machine.id)
    verdicts = f.verdicts_today.get(machine.id, {})
    decided = sum(verdicts.values())
    last_keys = ("shot_number", "verdict", "score", "decided_at", "heatmap")
    return {
        "plant": plant,
        "machine": machine.id,
        "name": machine.name,
        "state": here.state if here else "offline",
        "state_at": here.at if here else None,
        "die": (here.die if here and here.die else None) or (shot.die if shot else None),
        "shot_number": shot.shot_number if shot else None,
        "shots_today": f.shots_today.get(machine.id, 0),
        "verdicts_today": verdicts,
        "yield_today": verdicts.get(Verdict.OK.value, 0) / decided if decided else None,
        "last": {k: getattr(latest, k) for k in last_keys} if latest else None,
        "image": latest.image if latest else None,
        "alarms_open": f.alarms_open.get(machine.id, 0),
        "envelope_breaches_today": f.envelope_today.get(machine.id, 0),
    }


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which waiting parts: of one machine id, of one verdict (REVIEW or NG)."""

    machine: str | None = None
    verdict: Verdict | None = None


def _queue(columns: Sequence[Any], visible: Plants, f: QueueFilter) -> Select[Any]:
    v = t.verdicts
    where = PartFilter(plants=visible, machine=f.machine, verdict=f.verdict)
    waiting = [Verdict.REVIEW.value, Verdict.NG.value]
    return reads.parts(*columns, where=where, anchor=v).where(
        v.c.verdict.in_(waiting), t.reviews.c.id.is_(None)
    )


def review_queue(
    engine: Engine,
    visible: Plants,
    limit: int = 100,
    offset: int = 0,
    where: QueueFilter | None = None,
) -> list[Row]:
    """REVIEW and NG parts that no person has confirmed yet, newest first."""
    v = t.verdicts
    query = (
        _queue((v, reads.first_image(v)), visible, where or QueueFilter())
        .order_by(v.c.decided_at.desc(), v.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return reads.rows(engine, query)


def review_queue_size(engine: Engine, visible: Plants, where: QueueFilter | None = None) -> int:
    query = _queue((func.count(),), visible, where or QueueFilter())
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def review_queue_machines(engine: Engine, visible: Plants) -> list[str]:
    """Machine ids with parts waiting, for the queue's filter links."""
    machine = t.verdicts.c.machine
    query = _queue((machine,), visible, QueueFilter()).distinct().order_by(machine)
    with engine.connect() as conn:
        return [str(m) for m in conn.execute(query).scalars()]


def reviews(engine: Engine, visible: Plants, limit: int = 100) -> list[Row]:
    r = t.reviews
    query = select(r).order_by(r.c.at.desc(), r.c.id.desc()).limit(limit)
    return reads.rows(engine, _scoped(query, r.c.plant, visible))


def alarms(engine: Engine, visible: Plants, open_only: bool = False, limit: int = 200) -> list[Row]:
    a = t.alarms
    query = select(a).order_by(a.c.cleared_at.is_not(None), a.c.raised_at.desc()).limit(limit)
    if open_only:
        query = query.where(a.c.cleared_at.is_(None))
    return reads.rows(engine, _scoped(query, a.c.plant, visible))


def alarm(engine: Engine, alarm_id: int) -> Row | None:
    rows = reads.rows(engine, select(t.alarms).where(t.alarms.c.id == alarm_id))
    return rows[0] if rows else None


def dies(engine: Engine, visible: Plants) -> list[Row]:
    rows = reads.rows(engine, reads.dies(visible))
    for row in rows:
        rated = row["rated_life_shots"] or 0
        row["life_used"] = row["shot_counter"] / rated if rated else None
    return rows


def die_maintenance(engine: Engine, die: str) -> list[Row]:
    return reads.rows(engine, reads.die_maintenance(die))


def parameter_series(
    engine: Engine, plant: str, machine: str, parameter: str, limit: int = 500
) -> list[Row]:
    """The last `limit` readings of one parameter, oldest first, with each part's verdict."""
    s = t.shots
    columns = (
        s.c.shot_number,
        s.c.at,
        s.c.die,
        s.c[parameter].label("value"),
        t.verdicts.c.verdict,
    )
    query = (
        reads.parts(*columns, where=PartFilter(plant, machine=machine))
        .order_by(s.c.at.desc(), s.c.shot_number.desc())
        .limit(limit)
    )
    return list(reversed(reads.rows(engine, query)))


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


PARETO_BY = ("defect_type", "machine", "die")


def confirmed_defects(
    engine: Engine, plant: str, since: datetime, until: datetime, by: str
) -> list[tuple[str | None, int]]:
    """Parts a person confirmed NG in [since, until), counted by defect type, machine or
    die (the shot's), most frequent first; None: not named (no defect type, no shot)."""
    r = t.reviews
    key = {"defect_type": r.c.defect_type, "machine": r.c.machine, "die": t.shots.c.die}[by]
    query = (
        reads.parts(key, func.count().label("n"), where=PartFilter(plant=plant), anchor=r)
        .where(r.c.decision == Verdict.NG.value, r.c.at >= since, r.c.at < until)
        .group_by(key)
        .order_by(func.count().desc(), key.is_(None), key)
    )
    with engine.connect() as conn:
        return [(None if k is None else str(k), int(n)) for k, n in conn.execute(query)]


def confirmed_defect_times(
    engine: Engine, plant: str, since: datetime, until: datetime
) -> list[datetime]:
    """When each part a person confirmed NG in [since, until) was cast (its shot's time;
    the review's where no shot was recorded): the shift that made it is the one to ask."""
    r = t.reviews
    cast = func.coalesce(t.shots.c.at, r.c.at)
    query = reads.parts(cast, where=PartFilter(plant=plant), anchor=r).where(
        r.c.decision == Verdict.NG.value, r.c.at >= since, r.c.at < until
    )
    with engine.connect() as conn:
        return [at for (at,) in conn.execute(query)]


def models(engine: Engine) -> list[Row]:
    m = t.models
    return reads.rows(engine, select(m).order_by(m.c.die, m.c.view, m.c.created_at.desc()))


def model(engine: Engine, model_id: int) -> Row | None:
    rows = reads.rows(engine, select(t.models).where(t.models.c.id == model_id))
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
    return reads.rows(engine, query)


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
    rows = reads.rows(engine, query.order_by(u.c.username))
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
    return reads.rows(engine, query)


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
