"""The verdict journal: the one place that says which verdict a part was told.

Every verdict is journaled in this JetStream key-value bucket before the robot cell hears
it. The first worker to journal a part's verdict wins (create, never overwrite), so a part
keeps one verdict however many workers, redeliveries, expiries or database outages meet
it; the database records what the journal holds, now or when it is back. The die of a part
whose shot record waits for the database is noted here too, for the worker of the group
that gets the part's photo.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from castline.domain.shot import PartKey
from castline.domain.verdict import PartVerdict, Region, Verdict

BUCKET = "castline_verdicts"
# Longer than a photo can wait unacknowledged (a database outage); a redelivery after this
# finds the verdict in the database instead.
KEEP = timedelta(days=2)


class VerdictJournal:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, replicas: int = 1) -> VerdictJournal:
        config = KeyValueConfig(
            bucket=BUCKET,
            ttl=KEEP.total_seconds(),
            storage=StorageType.FILE,
            replicas=replicas,
            history=1,
        )
        return cls(await js.create_key_value(config))

    async def first(self, key: PartKey, verdict: PartVerdict) -> tuple[PartVerdict, bool]:
        """Journal `verdict` unless the part has one already; returns the part's verdict
        and whether it is `verdict`."""
        try:
            await self._kv.create(_key(key), encode(verdict))
            return verdict, True
        except KeyWrongLastSequenceError:
            existing = await self.get(key)
            if existing is None:  # pragma: no cover - it was there a moment ago
                raise
            return existing, False

    async def get(self, key: PartKey) -> PartVerdict | None:
        fields = await self._read(_key(key))
        return decode(fields) if fields is not None else None

    async def add_view(
        self, key: PartKey, view: str, verdict: PartVerdict
    ) -> dict[str, PartVerdict]:
        """Note one view's verdict of a part photographed from several views (the first
        of each view stands); returns every view's verdict noted so far. The views of a
        part may reach different workers: the one that completes the set decides."""
        name = f"views.{_key(key)}"
        while True:
            try:
                entry = await self._kv.get(name)
            except KeyNotFoundError:
                entry = None
            noted: dict[str, Any] = json.loads(entry.value) if entry and entry.value else {}
            if view in noted:
                return {v: decode(f) for v, f in noted.items()}
            noted[view] = json.loads(encode(verdict))
            data = json.dumps(noted).encode()
            try:
                if entry is None:
                    await self._kv.create(name, data)
                else:
                    await self._kv.update(name, data, last=entry.revision)
            except KeyWrongLastSequenceError:  # another view came at the same moment
                continue
            return {v: decode(f) for v, f in noted.items()}

    async def note_die(self, key: PartKey, die: str, trial: bool) -> None:
        await self._kv.put(_die_key(key), json.dumps([die, trial]).encode())

    async def die_of(self, key: PartKey) -> tuple[str, bool] | None:
        noted = await self._read(_die_key(key))
        return (str(noted[0]), bool(noted[1])) if noted else None

    async def _read(self, name: str) -> Any:
        """The JSON value under `name`, or None."""
        try:
            entry = await self._kv.get(name)
        except KeyNotFoundError:
            return None
        return json.loads(entry.value) if entry.value is not None else None


def encode(verdict: PartVerdict) -> bytes:
    return json.dumps(asdict(verdict), default=str).encode()


def decode(fields: dict[str, Any]) -> PartVerdict:
    return PartVerdict(
        verdict=Verdict(fields["verdict"]),
        decided_at=datetime.fromisoformat(fields["decided_at"]),
        reason=fields["reason"],
        score=fields["score"],
        model_version=fields["model_version"],
        latency_ms=fields["latency_ms"],
        regions=tuple(Region(**r) for r in fields["regions"]),
        timings=fields["timings"],
    )


def _die_key(key: PartKey) -> str:
    return f"die.{_key(key.of_cavity(1))}"  # the shot's die: the same for every cavity


def _key(key: PartKey) -> str:
    base = f"{key.plant}.{key.machine}.{key.shot_number}"
    return base if key.cavity == 1 else f"{base}.c{key.cavity}"  # cavity 1: as before
