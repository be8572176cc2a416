"""Expiry: parts whose other half never came within the join window.

A shot whose photo never came to this worker is QUARANTINE, unless another worker of the
group had the photo and decided the part (the journal knows); settled in chunks, each one
journal round and one store transaction. A photo whose shot never came anywhere is
counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from castline.domain.shot import PartKey
from castline.line.decision import Decider
from castline.line.intake import BROKER_BUSY, STORE_DOWN, StoreHealth
from castline.line.join import Unjoined
from castline.line.metrics import LineMetrics
from castline.line.output import Output

ShotDie = Callable[[PartKey], Awaitable[tuple[str, bool] | None]]

log = logging.getLogger(__name__)
SETTLE_AT_ONCE = 500  # parts without photo settled in one journal round and transaction


class Expiry:
    def __init__(
        self,
        decider: Decider,
        output: Output,
        health: StoreHealth,
        metrics: LineMetrics,
        shot_die: ShotDie,
    ) -> None:
        self.decider = decider
        self.output = output
        self.health = health
        self.metrics = metrics
        self.shot_die = shot_die  # from the record: did another worker have the shot?

    async def run(self, stop: asyncio.Event) -> None:
        retry: list[Unjoined] = []  # parts whose end could not be recorded yet
        while not stop.is_set():
            await asyncio.sleep(1.0)
            due = self.decider.expired()
            no_photo, retry = retry + [u for u in due if u.missing in ("image", "view")], []
            for chunk in range(0, len(no_photo), SETTLE_AT_ONCE):
                keys = no_photo[chunk : chunk + SETTLE_AT_ONCE]
                try:
                    await self.settle_without_photo(keys)
                except STORE_DOWN as exc:
                    self.health.lost(exc)
                    retry += keys
                except BROKER_BUSY:  # the journal did not answer in time: next round
                    retry += keys
                except Exception:
                    log.exception("%d parts without photo not settled", len(keys))
            for unjoined in (u for u in due if u.missing == "shot"):
                await self.photo_without_shot(unjoined.key)

    async def settle_without_photo(self, parts: list[Unjoined]) -> None:
        """Shots whose photos (or some views) never came to this worker: QUARANTINE,
        unless another worker of the group had them and decided the part (the journal
        knows)."""
        keys = [u.key for u in parts]
        verdicts = [self.decider.photo_missing(u) for u in parts]
        told = await asyncio.gather(
            *(self.output.tell(key, v, None) for key, v in zip(keys, verdicts, strict=True))
        )
        self.metrics.unjoined.labels("no_image").inc(sum(ours for _, ours in told))
        await self.output.record_many([(key, v) for key, (v, _) in zip(keys, told, strict=True)])

    async def photo_without_shot(self, key: PartKey) -> None:
        try:
            if await self.shot_die(key) is None:
                self.metrics.unjoined.labels("no_shot").inc()
                log.info("image of %s had no shot record in time", key)
        except STORE_DOWN as exc:
            self.health.lost(exc)
