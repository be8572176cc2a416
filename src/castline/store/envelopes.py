"""The golden envelopes of the dies, in versions, and the shot curves' retention.

An envelope is learnt from the stored curves of a die's good parts (`reads.good_curves`)
and saved as the die's next version; the newest version is the one the line checks
against. Old versions stay: each shot records the version it met.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select, tuple_
from sqlalchemy.exc import IntegrityError

from castline.domain.curve import ShotCurve
from castline.domain.curve import unpack as unpack_curve
from castline.domain.envelope import Envelope, EnvelopeError, learn, pack, unpack
from castline.domain.shot import PartKey
from castline.store import reads
from castline.store import tables as t

LEARN_FROM = 200  # the newest good curves an envelope is learnt from
PRUNE_BATCH = 2000  # curves deleted per transaction: short locks on a busy record


@dataclass(frozen=True, slots=True, eq=False)
class StoredEnvelope:
    die: str
    version: int
    learnt_at: datetime
    reason: str  # "auto" or who asked for it
    envelope: Envelope


class Envelopes:
    """The die envelopes of one record."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads.Reads(engine)

    def latest(self, die: str, version: int | None = None) -> StoredEnvelope | None:
        """The die's newest envelope, or the given version of it."""
        e = t.die_envelopes
        query = select(e).where(e.c.die == die).order_by(e.c.version.desc()).limit(1)
        if version is not None:
            query = query.where(e.c.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredEnvelope(die, row.version, row.learnt_at, row.reason, unpack(row.data))

    def versions(self) -> dict[str, int]:
        """The newest version of every die that has an envelope."""
        e = t.die_envelopes
        query = select(e.c.die, func.max(e.c.version)).group_by(e.c.die)
        with self.engine.connect() as conn:
            return {die: int(v) for die, v in conn.execute(query)}

    def history(self, die: str) -> list[dict[str, Any]]:
        """The die's versions, newest first, without their bands."""
        e = t.die_envelopes
        columns = (e.c.version, e.c.learnt_at, e.c.shots, e.c.rate_hz, e.c.reason)
        query = select(*columns).where(e.c.die == die).order_by(e.c.version.desc())
        return reads.rows(self.engine, query)

    def good_curve_count(self, die: str, up_to: int) -> int:
        """How many good curves the die has, counted up to `up_to`."""
        found = reads.good_curves(die).limit(up_to).subquery()
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(found)).scalar_one())

    def learn(self, die: str, reason: str, shots: int = LEARN_FROM) -> StoredEnvelope:
        """Learn the die's envelope from its newest good curves (those at the rate most of
        them share) and save it as the next version; EnvelopeError if too few."""
        curves = self.reads.good_curves(die, limit=shots)
        if not curves:
            raise EnvelopeError(f"die {die} has no good shots with a curve yet")
        rates = [c.rate_hz for c in curves]
        rate = max(set(rates), key=rates.count)
        envelope = learn([c for c in curves if c.rate_hz == rate])
        return self.save(die, envelope, reason)

    def save(self, die: str, envelope: Envelope, reason: str) -> StoredEnvelope:
        """Save as the die's next version (two workers learning at once: one retries)."""
        e = t.die_envelopes
        now = datetime.now(UTC)
        data = pack(envelope)
        for _ in range(3):
            try:
                with self.engine.begin() as conn:
                    top = conn.execute(select(func.max(e.c.version)).where(e.c.die == die))
                    version = int(top.scalar_one() or 0) + 1
                    conn.execute(
                        e.insert().values(
                            die=die,
                            version=version,
                            learnt_at=now,
                            shots=envelope.shots,
                            rate_hz=envelope.rate_hz,
                            reason=reason[:80],
                            data=data,
                        )
                    )
                return StoredEnvelope(die, version, now, reason[:80], envelope)
            except IntegrityError:
                continue
        raise EnvelopeError(f"die {die}: could not save a new envelope version")


def prune_curves(engine: Engine, before: datetime) -> int:
    """Delete the curves of shots made before `before` (the shots and their features
    stay); returns how many were deleted."""
    s, c = t.shots, t.shot_curves
    key = tuple_(c.c.plant, c.c.machine, c.c.shot_number)
    deleted = 0
    while True:
        old = (
            select(s.c.plant, s.c.machine, s.c.shot_number)
            .join(c, reads.same_part(c, s))
            .where(s.c.at < before)
            .limit(PRUNE_BATCH)
        )
        with engine.begin() as conn:
            # Keys read first: a bounded delete both databases plan the same way.
            keys = [tuple(r) for r in conn.execute(old)]
            if keys:
                conn.execute(delete(c).where(key.in_(keys)))
        deleted += len(keys)
        if len(keys) < PRUNE_BATCH:
            return deleted


def recent_curves(engine: Engine, key: PartKey, die: str, n: int) -> list[ShotCurve]:
    """Up to `n` curves of the machine's shots with the same die just before `key`,
    newest first: what a part's curve is compared with on its page."""
    s, c = t.shots, t.shot_curves
    query = (
        select(c.c.data)
        .join(s, reads.same_part(c, s))
        .where(s.c.plant == key.plant, s.c.machine == key.machine, s.c.die == die)
        .where(s.c.shot_number < key.shot_number)
        .order_by(s.c.shot_number.desc())
        .limit(n)
    )
    with engine.connect() as conn:
        return [unpack_curve(data) for data in conn.execute(query).scalars()]
