"""Pairing shot records with casting images by part key, within a time window.

Pure bookkeeping: the runtime tells it what arrived and when, and asks what expired.
A shot whose image never comes is a part nobody inspected; an image whose shot never
comes is a part without process data. Both are reported, never silently forgotten.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

from castline.domain.shot import PartKey

RECENT_PARTS = 100_000  # parts whose die is remembered from their shot record


@dataclass
class _Pending:
    first_seen: float
    shot: bool = False
    views: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Unjoined:
    key: PartKey
    missing: Literal["image", "shot"]


class Joiner:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._pending: dict[PartKey, _Pending] = {}
        self._die: dict[tuple[str, str], str] = {}  # (plant, machine) -> die mounted
        self._part_die: OrderedDict[PartKey, str] = OrderedDict()  # recent shots' dies
        self._trial: set[PartKey] = set()

    def shot(self, key: PartKey, die: str, now: float, trial: bool = False) -> None:
        self._die[(key.plant, key.machine)] = die
        self._part_die[key] = die
        if len(self._part_die) > RECENT_PARTS:
            self._part_die.popitem(last=False)
        if trial:
            self._trial.add(key)
        pending = self._pending.setdefault(key, _Pending(now))
        pending.shot = True
        self._settle(key)

    def image(self, key: PartKey, view: str, now: float) -> None:
        self._pending.setdefault(key, _Pending(now)).views.add(view)
        self._settle(key)

    def die_of(self, key: PartKey) -> str | None:
        """The die that made the part: known from its shot, else the die mounted now."""
        return self._part_die.get(key) or self._die.get((key.plant, key.machine))

    def has_shot(self, key: PartKey) -> bool:
        """Whether this joiner saw the part's own shot record (recently)."""
        return key in self._part_die

    def is_trial(self, key: PartKey) -> bool:
        return key in self._trial

    def mounted(self, plant: str, machine: str, die: str) -> None:
        """A state message told which die is on the machine."""
        self._die[(plant, machine)] = die

    def forget(self, key: PartKey) -> None:
        """The part's shot was refused: it is no part, and nothing waits for its photo."""
        self._pending.pop(key, None)
        self._part_die.pop(key, None)
        self._trial.discard(key)

    def _settle(self, key: PartKey) -> None:
        pending = self._pending[key]
        if pending.shot and pending.views:
            del self._pending[key]
            self._trial.discard(key)

    def expire(self, now: float) -> list[Unjoined]:
        """Parts whose window closed with one side missing; they are forgotten after this."""
        out = []
        for key, pending in list(self._pending.items()):
            if now - pending.first_seen >= self.window_s:
                out.append(Unjoined(key, "image" if pending.shot else "shot"))
                del self._pending[key]
                self._trial.discard(key)
        return out

    def __len__(self) -> int:
        return len(self._pending)
