"""Downstream results in the line: a station's result is recorded and joins its part.

A result is kept whether or not castline knows its part yet (a plant wants every X-ray
and leak-test result, and a station may name a part whose shot record is still behind a
broker outage): it joins its part at once if the part is known, else `run` looks again
every `MATCH_EVERY_S` (`store/downstream.py`). Malformed results never get here: the
intake dead-letters them with the reason, like any invalid message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from castline.line.intake import STORE_DOWN
from castline.messaging.schema import DownstreamMessage
from castline.store import downstream

log = logging.getLogger(__name__)
MATCH_EVERY_S = 5.0
SOURCE = "broker"

Db = Callable[..., Awaitable[Any]]
Shown = Callable[[str, str, dict[str, Any]], None]  # plant, station, payload


class DownstreamResults:
    def __init__(self, engine: Engine, db: Db, shown: Shown | None = None) -> None:
        self.engine = engine
        self.db = db
        self.shown = shown  # told of each new result, for the dashboards
        self.recorded = 0
        self.unmatched = 0  # recorded before their part was known
        self.joined_later = 0

    async def take(self, message: DownstreamMessage, arrived: datetime) -> None:
        """Record one result (a redelivery is a no-op); the store being away raises, and
        the intake gives the message back."""
        result = message.to_result()
        recorded = await self.db(downstream.record, self.engine, result, arrived, SOURCE)
        if not recorded.new:
            return
        self.recorded += 1
        if recorded.part is None:
            self.unmatched += 1
            log.info(
                "downstream %s result from %s/%s for %s: part not known yet, kept",
                result.result,
                result.plant,
                result.station,
                result.part,
            )
        if self.shown is not None:
            payload = message.model_dump(mode="json", by_alias=True)
            payload["part_key"] = str(recorded.part) if recorded.part else None
            self.shown(result.plant, result.station, payload)

    async def run(self, stop: asyncio.Event) -> None:
        """Join kept results to parts that have become known, until `stop`."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MATCH_EVERY_S)
            try:
                joined = await self.db(downstream.match_pending, self.engine, datetime.now(UTC))
            except STORE_DOWN:
                continue  # the intake notices and probes; look again next time
            if joined:
                self.joined_later += joined
                log.info("%d downstream results joined their parts", joined)
