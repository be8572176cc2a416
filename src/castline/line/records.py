"""Records: shots, machine states and ground truths of a fetched batch, kept together.

Each record is noted at once (the decider learns the part's die before any photo of the
batch is looked at), then the batch is written in one transaction and shown on the
dashboards. While the database is away, shots' dies go to the journal for the worker of
the group that gets the photo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine

from castline.domain.shot import PartKey, Shot
from castline.line.alarms import LineAlarms
from castline.line.cameras import Cameras
from castline.line.decision import Decider
from castline.line.intake import STORE_DOWN
from castline.line.output import Output
from castline.messaging.journal import VerdictJournal
from castline.messaging.schema import CellMessage, Message, ShotMessage, StateMessage, TruthMessage
from castline.messaging.topics import Kind
from castline.store.facts import Facts, StateFact, TruthFact, record_facts

Db = Callable[..., Awaitable[Any]]


class Recorder:
    def __init__(
        self,
        engine: Engine,
        db: Db,
        decider: Decider,
        output: Output,
        journal: VerdictJournal,
        check: Callable[[Shot], Shot] | None = None,
    ) -> None:
        self.engine = engine
        self.check = check  # the shot's curve: features and envelope (line/curve_check.py)
        # Noted shots until their batch is written, by (plant, machine, shot number): a
        # plain tuple, cheaper to build than a second PartKey a shot.
        self._checked: dict[tuple[str, str, int], Shot] = {}
        self.db = db
        self.decider = decider
        self.output = output
        self.journal = journal
        self._machines: set[tuple[str, str]] = set()  # (plant, machine) made sure of
        self._dies: set[str] = set()  # dies made sure of: a batch names them again
        self.alarms: LineAlarms | None = None  # live SPC, fed each batch
        self.cameras = Cameras()  # a machine without a camera: its shots wait for no photo

    def note(self, message: Message) -> None:
        match message:
            case ShotMessage():
                shot = message.to_shot()
                if self.check is not None:
                    shot = self.check(shot)
                self._checked[message.plant, message.machine, message.shot_number] = shot
                if self.cameras.photographed(message.plant, message.machine):
                    self.decider.shot(shot)
            case StateMessage() if message.die:
                self.decider.mounted(message.plant, message.machine, message.die)

    async def record(self, messages: list[Message]) -> None:
        facts = self._facts(messages)
        if self.alarms is not None:  # here, in fetch order: batches are written side by side
            self.alarms.shots(facts.shots)
        try:
            await self.db(record_facts, self.engine, facts)
        except STORE_DOWN:
            await asyncio.gather(*(self._note_die(s) for s in facts.shots))
            raise
        self._machines |= facts.machines
        self._dies.update(s.die for s in facts.shots)
        latest = {(m.plant, m.machine, type(m)): m for m in messages}  # what a tile shows
        for message in latest.values():
            self._show(message)

    def _facts(self, messages: list[Message]) -> Facts:
        facts = Facts(known_dies=frozenset(self._dies))
        for message in messages:
            if (message.plant, message.machine) not in self._machines:
                facts.machines.add((message.plant, message.machine))
            match message:
                case ShotMessage():
                    noted = (message.plant, message.machine, message.shot_number)
                    checked = self._checked.pop(noted, None)  # built once, in note()
                    facts.shots.append(checked or message.to_shot())
                case StateMessage():
                    state = (message.state, message.ts, message.die, message.reason)
                    facts.states.append(StateFact(message.plant, message.machine, *state))
                case TruthMessage():
                    key = PartKey(
                        message.plant, message.machine, message.shot_number, None, message.cavity
                    )
                    truth = (message.defective, message.defect_type, message.cause)
                    facts.truths.append(TruthFact(key, *truth))
        return facts

    async def _note_die(self, shot: Any) -> None:
        await self.journal.note_die(shot.key, shot.die, shot.trial)

    def _show(self, message: Message) -> None:
        match message:
            case ShotMessage():
                payload = message.model_dump(mode="json", exclude={"curve", "curve_b64"})
                self.output.event(message.plant, message.machine, Kind.SHOT, payload)
            case StateMessage():
                payload = message.model_dump(mode="json")
                self.output.event(message.plant, message.machine, Kind.STATE, payload)
            case CellMessage():
                payload = message.model_dump(mode="json")
                self.output.event(message.plant, message.machine, Kind.CELL, payload)
