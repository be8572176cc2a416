"""Machines without a camera: their shots are recorded, and nothing waits for a photo."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from castline.domain.shot import PartKey
from castline.line.cameras import Cameras
from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats
from castline.settings import Settings, SettingsError, load
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store
from tests.line.conftest import Device, until


def test_patterns_name_machines_of_any_plant_or_of_one() -> None:
    cameras = Cameras(("press-*", "p2/dcm-0[12]"))
    assert not cameras.photographed("p1", "press-7")
    assert not cameras.photographed("p2", "dcm-01")
    assert cameras.photographed("p1", "dcm-01")  # the pattern names plant p2 only
    assert cameras.photographed("p2", "dcm-03")
    assert Cameras().photographed("p1", "anything")  # by default every machine has one


def test_a_bad_pattern_is_a_one_line_settings_error(tmp_path: Path) -> None:
    config = tmp_path / "castline.toml"
    config.write_text('[castline]\nmachines_without_camera = ["press 1; drop"]\n')
    with pytest.raises(SettingsError, match="machines_without_camera"):
        load(config)


async def test_shots_of_a_machine_without_camera_are_recorded_not_held(
    tmp_path: Path, broker: EmbeddedNats
) -> None:
    settings = Settings(
        home=tmp_path / "home", join_window_s=1.0, machines_without_camera=("p1/m2",)
    )
    engine = database.open_store(settings.db_url)
    runtime = LineRuntime(settings, engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    assert broker.mqtt_port is not None
    device = Device(broker.mqtt_port)  # m1, with a camera
    store = Store(engine)
    try:
        device.machine = "m2"  # the same client speaks for m2, which has no camera
        for n in (1, 2, 3):
            device.shot(n)
        device.machine = "m1"
        device.shot(1)  # its photo never comes: QUARANTINE after the window
        await until(lambda: store.verdict(PartKey("p1", "m1", 1)) is not None)
        await until(lambda: store.count(t.shots) == 4)
        await asyncio.sleep(2.5)  # two more rounds of the expiry: m2's parts stay unjudged
        with engine.connect() as conn:
            judged = conn.execute(
                select(func.count()).select_from(t.verdicts).where(t.verdicts.c.machine == "m2")
            ).scalar_one()
        assert judged == 0
        assert (store.verdict(PartKey("p1", "m1", 1)) or {})["verdict"] == "QUARANTINE"
    finally:
        device.close()
        stop.set()
        await asyncio.wait_for(task, 15)
        engine.dispose()
