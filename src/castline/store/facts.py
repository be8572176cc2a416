"""What the line records from one batch of messages, written in one transaction.

Shot records, machine states and ground truths come in thousands a second at a central
site; one transaction per message would cap the line far below what the database takes.
The line gathers a fetched batch into `Facts` and writes it here at once (COPY on
PostgreSQL for large batches), still idempotent: natural keys, ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.store import tables as t
from castline.store.repository import (
    Row,
    curve_rows,
    insert_ignore,
    mark_rows,
    part_row,
    shot_row,
)


@dataclass(frozen=True, slots=True)
class StateFact:
    plant: str
    machine: str
    state: MachineState
    at: datetime
    die: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TruthFact:
    key: PartKey
    defective: bool
    defect_type: str | None = None
    cause: str = ""


@dataclass(slots=True)
class Facts:
    machines: set[tuple[str, str]] = field(default_factory=set)  # (plant, machine), new ones
    shots: list[Shot] = field(default_factory=list)
    states: list[StateFact] = field(default_factory=list)
    truths: list[TruthFact] = field(default_factory=list)
    known_dies: frozenset[str] = frozenset()  # recorded before: not written again

    def __len__(self) -> int:
        return len(self.shots) + len(self.states) + len(self.truths)


def record_facts(engine: Engine, facts: Facts) -> None:
    """Write a batch in one transaction: the machines and dies it names first (the
    record's foreign keys), then shots, states and truths."""
    with engine.begin() as conn:
        plants = sorted({plant for plant, _ in facts.machines})
        insert_ignore(conn, t.plants, [{"id": p, "name": p} for p in plants])
        insert_ignore(conn, t.machines, [_machine_row(p, m) for p, m in sorted(facts.machines)])
        insert_ignore(conn, t.dies, _die_rows(facts.shots, facts.known_dies))
        insert_ignore(conn, t.shots, [shot_row(s) for s in facts.shots])
        insert_ignore(conn, t.shot_curves, curve_rows(facts.shots))
        insert_ignore(conn, t.part_marks, mark_rows(facts.shots))
        insert_ignore(conn, t.machine_states, [_state_row(s) for s in facts.states])
        insert_ignore(conn, t.truths, [_truth_row(f) for f in facts.truths])


def _machine_row(plant: str, machine_id: str) -> Row:
    machine = Machine(machine_id)  # as first seen by the line; people add the rest
    views = [v.name for v in machine.views]
    return {
        "plant": plant,
        "id": machine.id,
        "name": machine.id,
        "clamp_force_t": None,
        "views": views,
    }


def _die_rows(shots: list[Shot], known: frozenset[str]) -> list[Row]:
    # Each new die once, as its first shot names it.
    first = {s.die: s for s in reversed(shots) if s.die not in known}
    return [
        {
            "code": die,
            "part_name": "",
            "rated_life_shots": 100_000,
            "shot_counter": 0,
            "machine": shot.key.machine,
            "plant": shot.key.plant,
        }
        for die, shot in first.items()
    ]


def _state_row(s: StateFact) -> Row:
    return {
        "plant": s.plant,
        "machine": s.machine,
        "state": s.state.value,
        "at": s.at,
        "die": s.die,
        "reason": s.reason,
    }


def _truth_row(f: TruthFact) -> Row:
    return {
        **part_row(f.key),
        "defective": f.defective,
        "defect_type": f.defect_type,
        "cause": f.cause,
    }
