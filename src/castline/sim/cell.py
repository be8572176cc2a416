"""The robot cell at each machine: it moves every casting where its verdict says.

OK goes to the next station, NG to the reject chute, REVIEW and QUARANTINE to the
quarantine rack; a part whose verdict has not arrived by its deadline goes to the
quarantine rack too (no part passes without an OK). The cell knows the ground truth,
so it counts what the line got wrong: escapes (defective parts sent on) and false
rejects (good parts in the reject chute). Pure: times are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from castline.domain.verdict import Verdict

ACTIONS = {
    Verdict.OK: "next_station",
    Verdict.NG: "reject_chute",
    Verdict.REVIEW: "quarantine_rack",
    Verdict.QUARANTINE: "quarantine_rack",
}


@dataclass(slots=True)
class CellCounters:
    parts: int = 0  # parts the cell acted on
    next_station: int = 0
    reject_chute: int = 0
    quarantined: int = 0
    escapes: int = 0  # defective parts sent to the next station
    false_rejects: int = 0  # good parts sent to the reject chute
    missing_verdicts: int = 0  # deadline passed without a verdict
    late_verdicts: int = 0  # verdicts for parts already acted on
    unknown_verdicts: int = 0  # verdicts for parts this cell never made

    def add(self, other: CellCounters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True, slots=True)
class Action:
    """What the cell did with one part; `verdict` None: none arrived in time."""

    shot_number: int
    action: str
    verdict: Verdict | None
    cavity: int = 1  # the die's cavity that cast it (one part per cavity and shot)
    defective: bool = False  # the ground truth the cell knows (a downstream test finds it)


@dataclass(slots=True)
class _Part:
    defective: bool
    deadline: float


@dataclass(slots=True)
class RobotCell:
    machine: str
    counters: CellCounters = field(default_factory=CellCounters)
    _waiting: dict[tuple[int, int], _Part] = field(default_factory=dict)  # (shot, cavity)
    _done: set[tuple[int, int]] = field(default_factory=set)

    def expect(self, shot_number: int, defective: bool, deadline: float, cavity: int = 1) -> None:
        """A part is on its way; it must have its verdict by `deadline`."""
        self._waiting[shot_number, cavity] = _Part(defective, deadline)

    def waiting(self) -> int:
        """Parts still waiting for their verdict."""
        return len(self._waiting)

    def on_verdict(self, shot_number: int, verdict: Verdict, cavity: int = 1) -> Action | None:
        part = self._waiting.pop((shot_number, cavity), None)
        if part is None:
            if (shot_number, cavity) in self._done:
                self.counters.late_verdicts += 1
            else:
                self.counters.unknown_verdicts += 1
            return None
        return self._act((shot_number, cavity), part, verdict)

    def expire(self, now: float) -> list[Action]:
        """Parts past their deadline go to the quarantine rack."""
        late = [n for n, part in self._waiting.items() if part.deadline <= now]
        actions = []
        for casting in late:
            part = self._waiting.pop(casting)
            self.counters.missing_verdicts += 1
            actions.append(self._act(casting, part, None))
        return actions

    def _act(self, casting: tuple[int, int], part: _Part, verdict: Verdict | None) -> Action:
        c = self.counters
        action = ACTIONS[verdict] if verdict is not None else "quarantine_rack"
        c.parts += 1
        if action == "next_station":
            c.next_station += 1
            c.escapes += part.defective
        elif action == "reject_chute":
            c.reject_chute += 1
            c.false_rejects += not part.defective
        else:
            c.quarantined += 1
        self._done.add(casting)
        shot_number, cavity = casting
        return Action(shot_number, action, verdict, cavity, part.defective)
