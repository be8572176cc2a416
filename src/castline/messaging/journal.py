"""The verdict journal: a part's verdict kept in JetStream while the database is away.

The line records a verdict before it tells the cell. Normally the record is the database;
when the database cannot be reached, the record is this key-value bucket, so inspection
goes on. The first worker to journal a part's verdict wins (create, never overwrite): a
part keeps one verdict however many workers or redeliveries meet it. When the database is
back, the redelivered photo finds its verdict here and it goes into the database as it was
told to the cell. The die of a part whose shot record waits for the database is noted here
too, for the worker of the group that gets the part's photo.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from castline.domain.shot import PartKey

BUCKET = "castline_verdicts"
KEEP = timedelta(days=7)  # as long as the stream keeps the photos that may be redelivered

Row = dict[str, Any]


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

    async def first(self, key: PartKey, row: Row) -> tuple[Row, bool]:
        """Journal `row` unless the part has a verdict already; returns the part's verdict
        and whether it is `row`."""
        try:
            await self._kv.create(_key(key), json.dumps(row, default=str).encode())
            return row, True
        except KeyWrongLastSequenceError:
            existing = await self.get(key)
            if existing is None:  # pragma: no cover - it was there a moment ago
                raise
            return existing, False

    async def get(self, key: PartKey) -> Row | None:
        row: Row | None = await self._read(_key(key))
        if row is not None:
            row["decided_at"] = datetime.fromisoformat(row["decided_at"])
        return row

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


def _die_key(key: PartKey) -> str:
    return f"die.{_key(key)}"


def _key(key: PartKey) -> str:
    return f"{key.plant}.{key.machine}.{key.shot_number}"
