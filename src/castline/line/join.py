"""Pairing shot records with casting photos by part key, within a time window.

Pure bookkeeping: the runtime tells it what arrived and when, and asks what expired.
A shot makes one part per cavity of its die; each part waits for as many views as its
die is photographed from. A part whose photos never all come is a part nobody fully
inspected; a photo whose shot never comes is a part without process data. Both are
reported, never silently forgotten. A photo may name its part by the data-matrix code
the camera read: the shot told which part carries which code (`marked`), so a cooling
rack that reorders castings does not mix them up.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from castline.domain.shot import PartKey

RECENT_PARTS = 100_000  # parts whose die (and mark) is remembered from their shot record
MAX_VIEWS = 16  # views one part may be photographed from


class UnknownPart(ValueError):
    """A photo that names no part castline can find: its code matches no shot, and it
    gives no shot number. `reason` is for people (it goes with the dead letter)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Pending:
    first_seen: float
    shot: bool = False
    views: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Unjoined:
    key: PartKey
    missing: Literal["image", "shot", "view"]  # "view": some views came, not all
    views: tuple[str, ...] = ()  # the views that came


class Joiner:
    def __init__(self, window_s: float, views_of: Callable[[str], int] | None = None) -> None:
        self.window_s = window_s
        self._views_of = views_of or (lambda _die: 1)  # views a die's parts are shot from
        self._pending: dict[PartKey, _Pending] = {}
        self._die: dict[tuple[str, str], str] = {}  # (plant, machine) -> die mounted
        self._part_die: OrderedDict[PartKey, str] = OrderedDict()  # recent shots' dies
        self._marked: OrderedDict[tuple[str, str], PartKey] = OrderedDict()  # (plant, code)
        self._code: dict[PartKey, str] = {}  # the mark of each recent marked part
        self._trial: set[PartKey] = set()  # recent parts of trial shots (as long as their die)

    def shot(
        self,
        key: PartKey,
        die: str,
        now: float,
        trial: bool = False,
        parts: list[PartKey] | None = None,
    ) -> None:
        """A shot record: its parts (one per cavity; `key` alone for one cavity) wait for
        their photos."""
        self._die[(key.plant, key.machine)] = die
        for part in parts or [key]:
            self._remember(part, die)
            if trial:
                self._trial.add(part)
            pending = self._pending.setdefault(part, _Pending(now))
            pending.shot = True
            self._settle(part)

    def _remember(self, part: PartKey, die: str) -> None:
        self._part_die[part] = die
        if len(self._part_die) > RECENT_PARTS:
            self._trial.discard(self._part_die.popitem(last=False)[0])
        if part.data_matrix is not None:
            self._marked[(part.plant, part.data_matrix)] = part
            self._code[part] = part.data_matrix
            if len(self._marked) > RECENT_PARTS:
                self._code.pop(self._marked.popitem(last=False)[1], None)

    def image(self, key: PartKey, view: str, now: float) -> None:
        self._pending.setdefault(key, _Pending(now)).views.add(view)
        self._settle(key)

    def marked(self, plant: str, data_matrix: str) -> PartKey | None:
        """The part whose shot record named this code (recently), if any."""
        return self._marked.get((plant, data_matrix))

    def with_mark(self, key: PartKey) -> PartKey:
        """The key with its mark, where its shot record named one (recently)."""
        code = self._code.get(key)
        return key if code is None or key.data_matrix == code else replace(key, data_matrix=code)

    def die_of(self, key: PartKey) -> str | None:
        """The die that made the part: known from its shot, else the die mounted now."""
        return self._part_die.get(key) or self._die.get((key.plant, key.machine))

    def views_expected(self, key: PartKey) -> int:
        """How many views the part is photographed from (its die's setting, default 1)."""
        die = self.die_of(key)
        return min(max(self._views_of(die), 1), MAX_VIEWS) if die else 1

    def has_shot(self, key: PartKey) -> bool:
        """Whether this joiner saw the part's own shot record (recently)."""
        return key in self._part_die

    def is_trial(self, key: PartKey) -> bool:
        return key in self._trial

    def mounted(self, plant: str, machine: str, die: str) -> None:
        """A state message told which die is on the machine."""
        self._die[(plant, machine)] = die

    def forget(self, key: PartKey, parts: list[PartKey] | None = None) -> None:
        """The part's shot was refused: it is no part, and nothing waits for its photo."""
        for part in parts or [key]:
            self._pending.pop(part, None)
            self._part_die.pop(part, None)
            self._trial.discard(part)

    def _settle(self, key: PartKey) -> None:
        pending = self._pending[key]
        if pending.shot and len(pending.views) >= self.views_expected(key):
            del self._pending[key]  # its trial flag stays: the photo's decision reads it

    def expire(self, now: float) -> list[Unjoined]:
        """Parts whose window closed with something missing; forgotten after this."""
        out = []
        for key, pending in list(self._pending.items()):
            if now - pending.first_seen >= self.window_s:
                views = tuple(sorted(pending.views))
                missing: Literal["image", "shot", "view"] = "shot"
                if pending.shot:
                    missing = "view" if views else "image"
                out.append(Unjoined(key, missing, views))
                del self._pending[key]
        return out

    def __len__(self) -> int:
        return len(self._pending)
