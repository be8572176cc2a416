"""Downstream stations' results in the record: kept as sent, joined to their part.

A result is written whatever castline knows of its part: a station may test a part whose
shot record has not arrived yet (a record behind a broker outage, a part named by a code
the shot will carry). It joins its part at once when the part is known, else later:
`match_pending` looks again for results still without a part, received within
`RETRY_FOR`. A result never joins a part it does not name, and a code that several shots
carry joins none (it stays unmatched and is listed as such) rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, select, update

from castline.domain.downstream import DownstreamResult, PartRef
from castline.domain.shot import PartKey
from castline.store import tables as t
from castline.store.reads import parts_marked
from castline.store.repository import insert_ignore

RETRY_FOR = timedelta(days=7)  # an unmatched result is looked for this long, then only kept
MATCH_BATCH = 500  # unmatched results looked at in one pass, newest first
_d, _s, _v = t.downstream_results, t.shots, t.verdicts


@dataclass(frozen=True, slots=True)
class Recorded:
    new: bool  # False: the same result was recorded before (a redelivery, a repeat post)
    part: PartKey | None  # the part it joined; None: not known yet (kept, joins later)


def record(
    engine: Engine, result: DownstreamResult, received_at: datetime, source: str
) -> Recorded:
    """Keep one result (idempotent on plant, station, test, part as named, test time)."""
    with engine.begin() as conn:
        part = find_part(conn, result.plant, result.part)
        row = {
            "plant": result.plant,
            "station": result.station,
            "test": result.test,
            "result": result.result,
            "defect_type": result.defect_type,
            "tested_at": result.tested_at,
            "received_at": received_at,
            "ref": str(result.part),
            "data_matrix": result.part.data_matrix,
            "ref_machine": result.part.machine,
            "ref_shot_number": result.part.shot_number,
            "ref_cavity": result.part.cavity,
            "machine": part.machine if part else None,
            "shot_number": part.shot_number if part else None,
            "cavity": part.cavity if part else None,
            "matched_at": received_at if part else None,
            "values": result.values,
            "note": result.note,
            "source": source[:120],
        }
        new = insert_ignore(conn, _d, [row]) == 1
    return Recorded(new, part)


def find_part(conn: Connection, plant: str, ref: PartRef) -> PartKey | None:
    """The recorded part a reference names: by key if it has one (its shot or its
    verdict is recorded), else the one casting that carries the code (cavity 1's code is
    on its shot, further cavities' in `part_marks`); None if unknown or ambiguous."""
    key = ref.key(plant)
    if key is not None:
        shot = and_(_s.c.plant == plant, _s.c.machine == key.machine)
        shot = and_(shot, _s.c.shot_number == key.shot_number)
        verdict = and_(_v.c.plant == plant, _v.c.machine == key.machine)
        verdict = and_(verdict, _v.c.shot_number == key.shot_number, _v.c.cavity == key.cavity)
        for table, same in ((_s, shot), (_v, verdict)):
            if conn.execute(select(table.c.id).where(same).limit(1)).first():
                return key
        return None
    if ref.data_matrix is None:  # PartRef names a part by key or code; never neither
        return None
    found = conn.execute(parts_marked(ref.data_matrix, plant).limit(2)).all()
    if len(found) != 1:
        return None
    _, machine, shot_number, _, cavity = found[0]
    return PartKey(plant, machine, shot_number, ref.data_matrix, int(cavity))


def match_pending(engine: Engine, now: datetime, plant: str | None = None) -> int:
    """Join results still without a part to parts that are known now; how many joined."""
    query = (
        select(_d.c.id, _d.c.plant, _d.c.data_matrix, _d.c.ref_machine, _d.c.ref_shot_number)
        .add_columns(_d.c.ref_cavity)
        .where(_d.c.matched_at.is_(None), _d.c.received_at >= now - RETRY_FOR)
        .order_by(_d.c.id.desc())
        .limit(MATCH_BATCH)
    )
    if plant is not None:
        query = query.where(_d.c.plant == plant)
    joined = 0
    with engine.begin() as conn:
        for row in conn.execute(query).all():
            ref = PartRef(row.data_matrix, row.ref_machine, row.ref_shot_number, row.ref_cavity)
            part = find_part(conn, row.plant, ref)
            if part is None:
                continue
            found = {"machine": part.machine, "shot_number": part.shot_number}
            found |= {"cavity": part.cavity, "matched_at": now}
            conn.execute(update(_d).where(_d.c.id == row.id).values(**found))
            joined += 1
    return joined
