"""Each shot's curve as it is recorded: its features as parameters, checked against its
die's golden envelope; a breach raises an alarm and, by the die's rule, holds the part.

The envelopes are the newest stored version per die (`store/envelopes.py`), reloaded in
the background; a die without one gets it learnt automatically once it has enough good
shots with curves. The same background duty deletes curves past their retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from castline.domain.alarms import ENVELOPE_BREACH, Alarm, AlarmSink
from castline.domain.curve_features import features
from castline.domain.envelope import EnvelopeCheck, EnvelopeError, describe, outside
from castline.domain.envelope_rule import EnvelopeAction, held
from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import Verdict
from castline.store.envelopes import Envelopes, StoredEnvelope, prune_curves

log = logging.getLogger(__name__)
Db = Callable[..., Awaitable[Any]]
Shooting = tuple[str, str, int]  # plant, machine, shot number: every cavity of the shot

RECENT_BREACHES = 10_000  # parts whose breach is remembered until their photo comes
PRUNE_EVERY_S = 3600.0


class CurveCheck:
    def __init__(
        self,
        envelopes: Envelopes,
        learn_shots: int,
        retention_days: float,
        action_of: Callable[[str], EnvelopeAction],
        sink: AlarmSink | None = None,
        refresh_s: float = 10.0,
        history: Callable[[], Any] | None = None,
    ) -> None:
        self.envelopes = envelopes
        self.history = history  # the history's duty (partitions ahead, retention), hourly too
        self.learn_shots = learn_shots
        self.retention = timedelta(days=retention_days)
        self.action_of = action_of
        self.sink = sink
        self.refresh_s = refresh_s
        self._latest: dict[str, StoredEnvelope] = {}
        self._dies: set[str] = set()  # dies whose shots came with curves
        self._breaches: OrderedDict[Shooting, str] = OrderedDict()
        self.breaches = 0

    # --- on the hot path (the event loop) ------------------------------------------

    def check(self, shot: Shot) -> Shot:
        """The shot with its curve features filled in (where the machine did not send
        them) and its envelope result; a breach is remembered and raised."""
        if shot.curve is None:
            return shot
        self._dies.add(shot.die)
        measured = features(shot.curve)
        params = dict(shot.params)
        if measured is not None:
            for name, value in measured.as_parameters().items():
                if params.get(name) is None:
                    params[name] = value
        stored = self._latest.get(shot.die)
        if stored is None or shot.trial:  # a trial shot is scrapped anyway
            return replace(shot, params=params)
        breach = outside(shot.curve, stored.envelope)
        text = describe(breach) if breach else None
        if text is not None:
            self._breached(shot, stored.version, text)
        return replace(shot, params=params, envelope=EnvelopeCheck(stored.version, text))

    def _breached(self, shot: Shot, version: int, text: str) -> None:
        self.breaches += 1
        key = shot.key
        self._breaches[(key.plant, key.machine, key.shot_number)] = text
        if len(self._breaches) > RECENT_BREACHES:
            self._breaches.popitem(last=False)
        if self.sink is not None:
            message = f"shot {key.shot_number} of die {shot.die} (envelope v{version}): {text}"
            alarm = Alarm(
                key.plant, key.machine, shot.die, "envelope", ENVELOPE_BREACH, message, shot.at
            )
            self.sink.raise_(alarm)

    def hold(
        self, key: PartKey, die: str | None, verdict: Verdict, reason: str
    ) -> tuple[Verdict, str]:
        """The part's verdict under its die's envelope rule (unchanged if its shot stayed
        inside, was not checked, or was checked by another worker of the group)."""
        breach = self._breaches.get((key.plant, key.machine, key.shot_number))
        if breach is None or die is None:
            return verdict, reason
        return held(verdict, reason, breach, self.action_of(die))

    # --- in the background (blocking: run in the store's executor) --------------------

    def refresh(self) -> None:
        """Load newer envelope versions; learn one for a die that has none and enough
        good shots with curves."""
        versions = self.envelopes.versions()
        for die in sorted(self._dies):
            version = versions.get(die)
            loaded = self._latest.get(die)
            if version is not None and (loaded is None or loaded.version < version):
                latest = self.envelopes.latest(die)
                if latest is not None:
                    self._latest[die] = latest
            elif version is None and self._due(die):
                self._learn(die)

    def _due(self, die: str) -> bool:
        return self.envelopes.good_curve_count(die, self.learn_shots) >= self.learn_shots

    def _learn(self, die: str) -> None:
        try:
            stored = self.envelopes.learn(die, "auto", shots=max(self.learn_shots, 200))
        except EnvelopeError as exc:  # e.g. curves without a fast shot among them
            log.warning("die %s: no envelope learnt yet: %s", die, exc)
            return
        self._latest[die] = stored
        log.info(
            "die %s: envelope v%d learnt from %d good shots",
            die,
            stored.version,
            stored.envelope.shots,
        )

    def prune(self) -> int:
        return prune_curves(self.envelopes.engine, datetime.now(UTC) - self.retention)

    async def watch(self, stop: asyncio.Event, db: Db) -> None:
        """The background duty: envelopes every `refresh_s`, retention every hour."""
        pruned_at = float("-inf")
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await db(self.refresh)
                if loop.time() - pruned_at >= PRUNE_EVERY_S:
                    gone = await db(self.prune)
                    if self.history is not None:
                        await db(self.history)
                    pruned_at = loop.time()
                    if gone:
                        log.info("deleted %d shot curves older than %s", gone, self.retention)
            except Exception:  # the store away, a bad row: try again next round
                log.exception("envelope refresh failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.refresh_s)
