"""Fast failover: a worker killed with photos in flight hands them on within a second, and
the other worker decides every one of them in time (none held for the kill alone)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from sqlalchemy import Engine, select

from castline.domain.shot import PartKey
from castline.line.intake import PHOTOS_AT_ONCE
from castline.messaging import jetstream
from castline.messaging.backlog import read_backlog
from castline.messaging.broker import EmbeddedNats
from castline.messaging.schema import ImageMessage, ShotMessage, StateMessage
from castline.store import tables as t
from castline.store.database import open_store
from castline.store.repository import Store
from tests.line.conftest import DIE, casting_jpeg, until
from tests.line.test_runtime import Line, activate, line  # noqa: F401 (the fixture)

# Long enough for a loaded test machine, far shorter than the records' ack wait (10 s) that
# photos had before they had their own consumer: a kill then quarantined its photos.
DEADLINE_S = 4.0
PARTS = 40


async def play(url: str, workers: list[subprocess.Popen[bytes]]) -> dict[int, set[str]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    told: dict[int, set[str]] = {}

    async def on_verdict(msg: Any) -> None:
        body = json.loads(msg.data)
        told.setdefault(int(body["shot_number"]), set()).add(body["verdict"])

    await nc.subscribe("castline.out.v1.p1.m1.verdict", cb=on_verdict)
    for _ in range(600):  # both workers wait for photos
        if (await read_backlog(js, jetstream.PHOTO_CONSUMER)).idle_pulls >= 2:
            break
        await asyncio.sleep(0.1)
    state = StateMessage(plant="p1", machine="m1", state="running", ts=_now(), die=DIE)
    await js.publish("castline.v1.p1.m1.state", state.to_json())
    parts = range(1, PARTS + 1)
    photos = [ImageMessage.of("p1", "m1", n, "front", _now(), casting_jpeg(n)) for n in parts]
    for n in parts:
        shot = ShotMessage(plant="p1", machine="m1", shot_number=n, die=DIE, ts=_now())
        await js.publish("castline.v1.p1.m1.shot", shot.to_json())
    subject = "castline.v1.p1.m1.image.front"
    await asyncio.gather(*(js.publish(subject, p.to_json()) for p in photos))  # a burst
    both_deciding = False
    for _ in range(200):  # a worker holds at most PHOTOS_AT_ONCE: over it, both hold some
        info = await js.consumer_info(jetstream.STREAM, jetstream.PHOTO_CONSUMER)
        if both_deciding := (info.num_ack_pending or 0) > PHOTOS_AT_ONCE:
            break
        await asyncio.sleep(0.01)
    workers[0].send_signal(signal.SIGKILL)
    assert both_deciding, "the worker was not killed with photos in flight: nothing tested"
    for _ in range(600):
        if len(told) == PARTS:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # a second verdict for a part would show now
    await nc.close()
    return told


def _now() -> datetime:
    return datetime.now(UTC)


async def queues(url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    await jetstream.ensure_line_consumer(js)
    await jetstream.ensure_photo_consumer(js)
    await nc.close()


def test_a_killed_workers_photos_are_decided_by_the_other_in_time(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path, pg_engine: Engine
) -> None:
    url = pg_engine.url.render_as_string(hide_password=False)
    engine = open_store(url)
    activate(engine, synthetic_model)
    asyncio.run(queues(broker.url))
    env = os.environ | {
        "CASTLINE_HOME": str(tmp_path / "home"),
        "CASTLINE_DATABASE_URL": url,
        "CASTLINE_VERDICT_DEADLINE_S": str(DEADLINE_S),
    }
    command = [sys.executable, "-m", "castline.cli", "line", "run", "--nats", broker.url]
    workers = [subprocess.Popen(command, env=env) for _ in range(2)]
    try:
        told = asyncio.run(play(broker.url, workers))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    assert sorted(told) == list(range(1, PARTS + 1)), "every part is told a verdict"
    assert all(len(v) == 1 for v in told.values()), "and only one"
    with engine.connect() as conn:
        held = conn.execute(
            select(t.verdicts.c.shot_number, t.verdicts.c.reason).where(
                t.verdicts.c.verdict == "QUARANTINE"
            )
        ).all()
    assert held == [], f"parts held although only a worker died: {held}"
    assert Store(engine).count(t.verdicts) == PARTS
    engine.dispose()


async def test_a_photo_ahead_of_its_shot_waits_for_the_die_rather_than_quarantine(
    line: Line,  # noqa: F811 (the fixture imported above)
) -> None:
    """Photos and records come by different queues: a photo of a machine whose die no
    message has named yet waits (within its deadline) for its shot to name it."""
    line.device.machine = "m3"  # no state message named m3's die
    line.device.image(7, casting_jpeg(7))
    await asyncio.sleep(0.8)  # the shot's queue is behind
    line.device.shot(7)
    line.device.machine = "m1"
    key = PartKey("p1", "m3", 7)
    await until(lambda: line.store.verdict(key) is not None)
    verdict = line.store.verdict(key) or {}
    assert verdict["verdict"] != "QUARANTINE", verdict["reason"]
    assert verdict["model_version"] == line.model.version


async def test_a_trial_shot_photo_ahead_of_its_shot_is_still_scrapped_by_rule(
    line: Line,  # noqa: F811 (the fixture imported above)
) -> None:
    """The die is known (mounted), but only the shot says it was a warm-up shot: a photo
    that comes first waits for it, and the part is NG by rule whatever its photo shows."""
    line.device.state()  # the machine's die is named: no wait for a die
    line.device.image(41, casting_jpeg(1))
    await asyncio.sleep(0.6)  # the shots' queue is behind
    trial = ShotMessage(
        plant="p1", machine="m1", shot_number=41, die=DIE, ts=datetime.now(UTC),
        params={"melt_temp_c": 680.0}, trial=True,
    )  # fmt: skip
    line.device.send("shot", trial.to_json())
    key = PartKey("p1", "m1", 41)
    await until(lambda: line.store.verdict(key) is not None)
    verdict = line.store.verdict(key) or {}
    assert verdict["verdict"] == "NG" and "trial" in verdict["reason"], verdict
