"""Part identity through the real broker and database: data-matrix codes through a cooling
rack, dies with several cavities, parts photographed from several views. Every part gets
exactly one verdict (the journal's), whatever the order its photos come in."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from castline.domain.shot import PartKey, Shot
from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats
from castline.messaging.schema import ImageMessage, ShotMessage
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry
from tests.line.conftest import DIE, Device, casting_jpeg, line_running, until

TWO_VIEWS = "D2"  # a die whose parts are photographed from the front and the side


class Hall:
    def __init__(self, runtime: LineRuntime, store: Store, device: Device) -> None:
        self.runtime, self.store, self.device = runtime, store, device

    def shot(self, n: int, die: str = DIE, marks: list[str] | None = None) -> None:
        fields: dict[str, object] = {"plant": "p1", "machine": "m1", "shot_number": n}
        fields |= {"die": die, "ts": datetime.now(UTC), "params": {"melt_temp_c": 680.0}}
        if marks:
            fields |= {"cavities": len(marks), "data_matrices": marks}
        self.device.send("shot", ShotMessage.model_validate(fields).to_json())

    def photo(
        self,
        jpeg: bytes,
        n: int | None = None,
        view: str = "front",
        cavity: int = 1,
        code: str | None = None,
    ) -> None:
        now = datetime.now(UTC)
        msg = ImageMessage.of("p1", "m1", n, view, now, jpeg, cavity=cavity, data_matrix=code)
        self.device.send(f"image/{view}", msg.to_json())

    def told(self) -> Counter[tuple[int, int]]:
        """How often the cell heard a verdict of each (shot, cavity)."""
        received = self.device.received
        return Counter((int(str(b["shot_number"])), int(str(b.get("cavity", 1)))) for b in received)

    def heard(self, shot: int, cavity: int = 1) -> dict[str, object]:
        return next(
            b
            for b in self.device.received
            if (b["shot_number"], b.get("cavity", 1)) == (shot, cavity)
        )


@pytest.fixture
async def hall(tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path) -> AsyncIterator[Hall]:
    settings = Settings(
        home=tmp_path / "home",
        join_window_s=1.5,
        verdict_deadline_s=5.0,
        views_per_part={TWO_VIEWS: 2},
    )
    engine = database.open_store(settings.db_url)
    model = InspectionModel.load(synthetic_model)
    registry = ModelRegistry(engine)
    for die, view in ((DIE, "front"), (TWO_VIEWS, "front"), (TWO_VIEWS, "side")):
        registry.register(die, view, synthetic_model, model.manifest, {}, activate=True)
    runtime = LineRuntime(settings, engine, broker.url)
    async with line_running(runtime, broker) as device:
        yield Hall(runtime, Store(engine), device)
    engine.dispose()


async def heard_all(hall: Hall, parts: set[tuple[int, int]]) -> None:
    await until(lambda: parts <= set(hall.told()))
    await asyncio.sleep(0.5)  # a second verdict would come now
    assert all(hall.told()[p] == 1 for p in parts), hall.told()


async def test_cooling_rack_reorders_parts_and_each_photo_lands_on_its_own_shot(
    hall: Hall,
) -> None:
    shots = list(range(1, 9))
    defects = {3: "crack", 6: "misrun"}
    photos = {n: casting_jpeg(200 + n, defects.get(n)) for n in shots}
    for n in shots:
        hall.shot(n, marks=[f"DMC-{n:04d}"])
    await asyncio.sleep(0.3)
    rack = [5, 2, 8, 1, 7, 3, 6, 4]  # the order the castings leave the cooling rack
    for place, n in enumerate(rack):
        # The camera knows only the code it read; some cameras count parts and are wrong.
        wrong = rack[(place + 1) % len(rack)] if place % 2 else None
        hall.photo(photos[n], wrong, code=f"DMC-{n:04d}")
    await heard_all(hall, {(n, 1) for n in shots})
    for n in shots:
        heard = hall.heard(n)
        assert heard["data_matrix"] == f"DMC-{n:04d}"
        part = hall.store.part(PartKey("p1", "m1", n))
        assert part is not None and len(part["images"]) == 1
        assert part["images"][0]["blob"] == _digest(photos[n]), f"photo of {n} elsewhere"
        assert part["verdict"]["verdict"] == heard["verdict"]


async def test_a_code_no_shot_names_without_shot_number_is_a_dead_letter(hall: Hall) -> None:
    before = hall.runtime.dead_letter_count
    hall.photo(casting_jpeg(5), code="NOBODY-0001")
    await until(lambda: hall.runtime.dead_letter_count > before)
    await until(lambda: len(hall.store.dead_letters()) > 0)  # counted before it is stored
    letters = hall.store.dead_letters()
    assert "NOBODY-0001" in letters[0]["reason"] and "names no shot" in letters[0]["reason"]


async def test_a_worker_that_saw_no_shot_of_the_machine_learns_its_die_from_the_record(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path
) -> None:
    """A worker just started (or one whose group mates got every shot of the machine) and a
    part whose own shot is late (held by a worker that died): the die on the machine, as
    recorded, is inspected against, as a worker that saw the machine's shots would."""
    settings = Settings(home=tmp_path / "home", join_window_s=1.5, verdict_deadline_s=2.0)
    engine = database.open_store(settings.db_url)
    model = InspectionModel.load(synthetic_model)
    ModelRegistry(engine).register(DIE, "front", synthetic_model, model.manifest, {}, True)
    earlier = datetime.now(UTC)
    Store(engine).record_shots([Shot(PartKey("p1", "m1", 1), DIE, earlier, {})])
    runtime = LineRuntime(settings, engine, broker.url)
    async with line_running(runtime, broker, tell_state=False) as device:
        hall = Hall(runtime, Store(engine), device)
        hall.photo(casting_jpeg(41), 2)  # shot 2's record never comes to this worker
        await until(lambda: (2, 1) in hall.told())
        reason = str(hall.heard(2)["reason"])
        assert reason.startswith("score"), reason
    engine.dispose()


async def test_two_cavities_two_parts_two_verdicts(hall: Hall) -> None:
    hall.shot(20, marks=["A-20-1", "A-20-2"])
    good, cracked = casting_jpeg(101), casting_jpeg(103, "crack")
    hall.photo(good, 20, cavity=1)
    hall.photo(cracked, code="A-20-2")  # cavity 2 by its code
    await heard_all(hall, {(20, 1), (20, 2)})
    first, second = hall.heard(20, 1), hall.heard(20, 2)
    assert first["data_matrix"] == "A-20-1" and second["data_matrix"] == "A-20-2"
    assert float(second["score"]) > float(first["score"])  # type: ignore[arg-type]
    with hall.store.engine.connect() as conn:
        rows = conn.execute(select(t.verdicts.c.cavity).where(t.verdicts.c.shot_number == 20))
        assert sorted(r.cavity for r in rows) == [1, 2]
    for cavity, jpeg in ((1, good), (2, cracked)):
        part = hall.store.part(PartKey("p1", "m1", 20, cavity=cavity))
        assert part is not None and [i["blob"] for i in part["images"]] == [_digest(jpeg)]
        assert part["verdict"]["cavity"] == cavity
    assert hall.store.parts_marked("A-20-2") == [PartKey("p1", "m1", 20, cavity=2)]


async def test_a_downstream_result_by_code_joins_its_own_cavity(hall: Hall) -> None:
    station = Device(hall.device.client.port, machine="xray1")  # an X-ray station
    hall.shot(21, marks=["B-21-1", "B-21-2"])
    await until(lambda: len(hall.store.parts_marked("B-21-2")) == 1)
    try:
        for part, outcome in (({"data_matrix": "B-21-2"}, "NG"), ({"data_matrix": "B-21-1"}, "OK")):
            body = {"v": 1, "plant": "p1", "station": "xray1", "part": part, "test": "xray"}
            body |= {"result": outcome, "ts": datetime.now(UTC).isoformat()}
            station.send("downstream", json.dumps(body).encode())
        await until(lambda: hall.store.count(t.downstream_results) == 2)
    finally:
        station.close()
    assert not hall.store.downstream_results("p1", unmatched=True)
    for cavity, outcome in ((1, "OK"), (2, "NG")):
        (found,) = hall.store.downstream(PartKey("p1", "m1", 21, cavity=cavity))
        assert (found["cavity"], found["result"]) == (cavity, outcome)


async def test_two_views_the_worst_decides_and_a_missing_view_quarantines(hall: Hall) -> None:
    hall.shot(30, TWO_VIEWS)
    hall.shot(31, TWO_VIEWS)
    await asyncio.sleep(0.3)
    hall.photo(casting_jpeg(101), 30, "front")
    hall.photo(casting_jpeg(102), 31, "front")  # its side view never comes
    await asyncio.sleep(0.5)
    assert (30, 1) not in hall.told(), "told before the last view was in"
    hall.photo(casting_jpeg(103, "crack"), 30, "side")
    await heard_all(hall, {(30, 1), (31, 1)})
    part = hall.store.part(PartKey("p1", "m1", 30))
    assert part is not None
    views = {img["view"]: img for img in part["images"]}
    assert set(views) == {"front", "side"} and all(v["verdict"] for v in views.values())
    assert views["side"]["score"] > views["front"]["score"]
    order = ["OK", "REVIEW", "NG", "QUARANTINE"]
    worst = max((v["verdict"] for v in views.values()), key=order.index)
    assert hall.heard(30)["verdict"] == worst == part["verdict"]["verdict"]
    assert worst in ("NG", "REVIEW") and "side" in str(hall.heard(30)["reason"])
    missing = hall.heard(31)
    assert missing["verdict"] == "QUARANTINE" and "only 1 of 2 views" in str(missing["reason"])
    recorded = hall.store.part(PartKey("p1", "m1", 31))
    assert recorded is not None and recorded["verdict"]["verdict"] == "QUARANTINE"
    assert [img["view"] for img in recorded["images"]] == ["front"]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
