"""Fast failover: a worker killed with photos or records in flight hands them on within a
second, and the other worker decides every part in time (none held for the kill alone)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from sqlalchemy import Connection, Engine, insert, select

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

# Long enough for a loaded test machine (the one worker left decides most of the burst
# within it), far shorter than the records' ack wait (10 s) that photos had before they
# had their own consumer: a kill then quarantined its photos.
DEADLINE_S = 6.0
PARTS = 30  # more than two workers' places (2 x PHOTOS_AT_ONCE): both hold photos
HELD = 12  # shots a worker is killed holding


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


def _workers(tmp_path: Path, url: str, nats_url: str) -> Callable[[], subprocess.Popen[bytes]]:
    env = os.environ | {
        "CASTLINE_HOME": str(tmp_path / "home"),
        "CASTLINE_DATABASE_URL": url,
        "CASTLINE_VERDICT_DEADLINE_S": str(DEADLINE_S),
        # The second worker may take a minute to start on a loaded machine: the stuck one
        # must not settle the shots as photo-less meanwhile.
        "CASTLINE_JOIN_WINDOW_S": "600",
    }
    command = [sys.executable, "-m", "castline.cli", "line", "run", "--nats", nats_url]
    return lambda: subprocess.Popen(command, env=env)


def _hold(conn: Connection, shots: list[ShotMessage]) -> None:
    """Rows of the same shots, written and not committed: a worker's batch of them waits on
    these (the natural key) until this transaction ends, as on a stalled database."""
    conn.execute(
        insert(t.shots),
        [dict(plant=s.plant, machine=s.machine, shot_number=s.shot_number, die=s.die, at=s.ts,
              trial=True, extra={}) for s in shots],
    )  # fmt: skip


async def _pulling(js: Any, workers: int) -> None:
    for _ in range(900):  # a worker that starts on a loaded machine takes its time
        if (await read_backlog(js, jetstream.LINE_CONSUMER)).idle_pulls >= workers:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workers} workers never waited for records")


async def take_over_shots(
    url: str, engine: Engine, start: Callable[[], subprocess.Popen[bytes]]
) -> tuple[dict[int, set[str]], list[subprocess.Popen[bytes]], dict[str, int]]:
    """Worker A takes the shots of machine m2 and is stuck writing them; worker B starts
    after, so it never saw them (nor any die of m2). A is killed; the photos come."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    told: dict[int, set[str]] = {}

    async def on_verdict(msg: Any) -> None:
        body = json.loads(msg.data)
        told.setdefault(int(body["shot_number"]), set()).add(body["verdict"])

    await nc.subscribe("castline.out.v1.p1.m2.verdict", cb=on_verdict)
    workers = [start()]
    await _pulling(js, 1)
    # Warm-up shots: only the shot says so, and the part is then NG by rule whatever its
    # photo shows. A photo decided without its own shot would be inspected instead.
    shots = [ShotMessage(plant="p1", machine="m2", shot_number=n, die=DIE, ts=_now(), trial=True)
             for n in range(1, HELD + 1)]  # fmt: skip
    with engine.connect() as blocker:
        blocker.begin()
        await asyncio.to_thread(_hold, blocker, shots)
        for shot in shots:
            await js.publish("castline.v1.p1.m2.shot", shot.to_json())
        for _ in range(300):
            info = await js.consumer_info(jetstream.STREAM, jetstream.LINE_CONSUMER)
            if info.num_ack_pending == HELD:
                break
            await asyncio.sleep(0.1)
        workers.append(start())  # seconds to start: many times the records' ack wait
        await _pulling(js, 2)
        info = await js.consumer_info(jetstream.STREAM, jetstream.LINE_CONSUMER)
        kept = {"held": info.num_ack_pending or 0, "redelivered": info.num_redelivered or 0}
        workers[0].send_signal(signal.SIGKILL)
        await asyncio.to_thread(workers[0].wait)
        blocker.rollback()
    subject = "castline.v1.p1.m2.image.front"
    photos = [ImageMessage.of("p1", "m2", s.shot_number, "front", _now(), casting_jpeg(n))
              for n, s in enumerate(shots)]  # fmt: skip
    await asyncio.gather(*(js.publish(subject, p.to_json()) for p in photos))
    for _ in range(600):
        if len(told) == HELD:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # a second verdict for a part would show now
    await nc.close()
    return told, workers, kept


def test_a_killed_workers_shots_are_recorded_by_the_other_and_their_parts_decided(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path, pg_engine: Engine
) -> None:
    """The shots a killed worker held come back within the records' ack wait (1 s), in
    time for their photos: each part is decided with its own shot, none is held for want
    of its die. While the worker lived
    and was slow (its batch waiting on the database), it kept its shots: said in progress,
    none was handed on."""
    url = pg_engine.url.render_as_string(hide_password=False)
    engine = open_store(url)
    activate(engine, synthetic_model)
    asyncio.run(queues(broker.url))
    workers: list[subprocess.Popen[bytes]] = []
    try:
        told, workers, kept = asyncio.run(
            take_over_shots(broker.url, engine, _workers(tmp_path, url, broker.url))
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    assert kept == {"held": HELD, "redelivered": 0}, "a slow worker lost its shots"
    assert sorted(told) == list(range(1, HELD + 1)), "every part is told a verdict"
    assert all(len(v) == 1 for v in told.values()), "and only one"
    with engine.connect() as conn:
        verdicts = conn.execute(
            select(t.verdicts.c.shot_number, t.verdicts.c.verdict, t.verdicts.c.reason)
        ).all()
    held = [(n, reason) for n, verdict, reason in verdicts if verdict == "QUARANTINE"]
    assert held == [], f"parts held although only a worker died: {held}"
    unshot = [(n, reason) for n, verdict, reason in verdicts if "trial" not in reason]
    assert unshot == [], f"parts decided without their own shot: {unshot}"
    store = Store(engine)
    assert len(verdicts) == store.count(t.shots) == store.count(t.images) == HELD
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
