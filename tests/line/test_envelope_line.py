"""The golden envelope in the real line (embedded NATS, the record, a real model): a shot
whose curve leaves its die's envelope raises an alarm and holds a part whose photo looks
good, by the die's rule; `envelope_action = "none"` lets it pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from castline.domain.curve import ShotCurve
from castline.domain.envelope import learn
from castline.domain.envelope_rule import EnvelopeAction
from castline.domain.shot import PartKey
from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats
from castline.messaging.schema import ShotMessage
from castline.settings import Settings
from castline.sim.calibration import PROFILES
from castline.sim.curves import CurveFault, CurveProfile, conditions, shot_curve
from castline.sim.process import ProcessModel
from castline.store import database
from castline.store import tables as t
from castline.store.envelopes import Envelopes
from castline.store.reads import rows
from castline.store.repository import Store
from tests.line.conftest import Device, casting_jpeg, until
from tests.line.test_runtime import activate

HELD, FREE = "D1", "D2"  # review by default; none by setting


def die_curves(n: int) -> tuple[list[ShotCurve], ShotCurve]:
    """n good curves of one die and one with a late switch-over."""
    rng = np.random.default_rng(5)
    process = ProcessModel(PROFILES[0], rng, 60.0)
    profile = CurveProfile.draw(rng, process)
    make = lambda faults: shot_curve(  # noqa: E731
        profile, conditions(profile, process, process.next_shot({}), faults), rng
    )
    good = [make(frozenset()) for _ in range(n)]
    return good, make(frozenset({CurveFault.LATE_SWITCHOVER}))


GOOD, FAULTY = die_curves(42)


@dataclass
class Line:
    runtime: LineRuntime
    store: Store
    device: Device  # one machine; each shot names its die


@pytest.fixture
async def line(tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path) -> AsyncIterator[Line]:
    settings = Settings(
        home=tmp_path / "home",
        join_window_s=3.0,
        verdict_deadline_s=5.0,
        envelope_actions={FREE: EnvelopeAction.NONE},
    )
    engine = database.open_store(settings.db_url)
    envelopes = Envelopes(engine)
    for die in (HELD, FREE):
        activate(engine, synthetic_model, die)
        envelopes.save(die, learn(GOOD[:40]), "test")
    runtime = LineRuntime(settings, engine, broker.url)
    runtime.curves.refresh_s = 0.3  # envelopes of newly seen dies loaded at once
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    assert broker.mqtt_port is not None
    device = Device(broker.mqtt_port)
    device.state(die=HELD)
    yield Line(runtime, Store(engine), device)
    device.close()
    stop.set()
    await asyncio.wait_for(task, 15)
    engine.dispose()


def send(device: Device, n: int, die: str, curve: ShotCurve) -> None:
    message = ShotMessage.model_validate(
        dict(plant=device.plant, machine=device.machine, shot_number=n, die=die)
        | {"ts": datetime.now(UTC), "params": {"melt_temp_c": 680.0}}
        | ShotMessage.curve_fields(curve)
    )
    device.send("shot", message.to_json())
    device.image(n, casting_jpeg(101))  # a good photo


async def test_a_curve_outside_the_envelope_holds_a_good_photo_part_by_die_rule(
    line: Line,
) -> None:
    send(line.device, 1, HELD, GOOD[40])
    send(line.device, 2, FREE, GOOD[41])
    await asyncio.to_thread(line.device.wait_verdicts, {1, 2})
    await until(lambda: len(line.runtime.curves._latest) == 2, timeout=20)
    send(line.device, 3, HELD, GOOD[41])
    send(line.device, 4, HELD, FAULTY)
    send(line.device, 5, FREE, FAULTY)
    got = await asyncio.to_thread(line.device.wait_verdicts, {1, 2, 3, 4, 5})
    assert [got[n]["verdict"] for n in (1, 2, 3)] == ["OK"] * 3  # the photo is good
    assert got[4]["verdict"] == "REVIEW"
    assert "golden envelope" in str(got[4]["reason"])
    assert got[5]["verdict"] == "OK"  # envelope_action none: the alarm only
    with line.store.engine.connect() as conn:
        shots = {r.shot_number: r for r in conn.execute(select(t.shots))}
    assert shots[4].envelope_version == 1 and shots[4].envelope_breach
    assert shots[5].envelope_version == 1 and shots[5].envelope_breach
    assert shots[3].envelope_version == 1 and shots[3].envelope_breach is None
    assert shots[1].envelope_version is None  # before the envelope was loaded
    assert shots[3].curve_fill_time_ms > 0  # features stored as parameters
    assert line.runtime.curves.breaches == 2
    a = t.alarms.c
    found = lambda: rows(line.store.engine, select(t.alarms).where(a.rule == "envelope_breach"))  # noqa: E731
    await until(lambda: len(found()) == 2)
    assert sorted((r["die"], r["count"]) for r in found()) == [(HELD, 1), (FREE, 1)]
    assert line.store.shot_curve(PartKey("p1", "m1", 4)) == FAULTY
