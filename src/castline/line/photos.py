"""Photos of parts: each one joined to its part, decided and told.

A photo names its part by shot number or by the data-matrix code the camera read (the
decider finds which). A part photographed from several views is told one verdict, when
its last view is in: each view's verdict is noted in the journal (the views may reach
different workers) and the worst decides. A photo of a part already told hears the same
verdict again (the cell may have missed it); a part keeps its first verdict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from castline.domain.shot import PartKey
from castline.line.decision import Decider, RecordedMark, RecordedMount
from castline.line.intake import STORE_DOWN, Delivery
from castline.line.join import UnknownPart
from castline.line.output import Output, Photo
from castline.messaging.schema import ImageMessage
from castline.store.repository import Store

Db = Callable[..., Awaitable[Any]]


def recorded_mark(store: Store, db: Db) -> RecordedMark:
    """The part a data-matrix code marks, as recorded (its shot may be another worker's)."""

    async def part_marked(plant: str, machine: str, code: str) -> PartKey | None:
        marked: list[PartKey] = await db(store.parts_marked, code)
        return next((k for k in marked if (k.plant, k.machine) == (plant, machine)), None)

    return part_marked


def recorded_mount(store: Store, db: Db) -> RecordedMount:
    """The die on a machine, as recorded (None while the database is away: the part's
    own shot may still come)."""

    async def mounted_die(plant: str, machine: str) -> str | None:
        try:
            found: str | None = await db(store.mounted_die, plant, machine)
        except STORE_DOWN:
            return None
        return found

    return mounted_die


class PartPhotos:
    def __init__(self, decider: Decider, output: Output) -> None:
        self.decider = decider
        self.output = output

    async def take(self, message: ImageMessage, delivery: Delivery) -> None:
        key = await self.decider.part_of(message, delivery.arrived)  # UnknownPart: dead letter
        data = message.image_bytes()
        photo = Photo(message.view, message.ts, data, message.content_type)
        told = await self.output.told(key, look_in_record=delivery.redelivered)
        if told is not None:  # the cell may have missed it
            await self.output.retell(key, told)
            await self.output.record(key, told, photo)
            return
        decision = await self.decider.photo(key, message.view, data, delivery.arrived)
        photo = replace(photo, verdict=decision.verdict)
        part, draw = decision.verdict, decision.draw_overlay
        expected = self.decider.views_expected(key)
        if expected > 1:  # the part is decided when its last view is
            views = await self.output.journal.add_view(key, message.view, decision.verdict)
            if len(views) < expected:
                await self.output.record_view(key, photo, draw)
                return
            part = self.decider.combined(views, delivery.arrived)
        told, ours = await self.output.tell(key, part, delivery.arrived)
        await self.output.record(key, told, photo, draw if ours or expected > 1 else None)

    async def unreadable(self, message: ImageMessage, reason: str) -> None:
        """A photo that cannot be inspected: its part is QUARANTINE now, not at expiry."""
        try:
            key = await self.decider.part_of(message)
        except UnknownPart:
            return  # no part to hold: the photo is dead-lettered with its reason
        verdict = self.decider.unreadable(key, message.view, reason)
        told, _ = await self.output.tell(key, verdict, None)
        await self.output.record(key, told)
