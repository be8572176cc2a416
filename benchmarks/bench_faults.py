"""Fault drill under load: many machines, a group of line workers, a three-node NATS cluster
and PostgreSQL. A worker is killed with SIGKILL, the database is stopped for `--outage`
seconds, a broker node is killed and restarted; at the end every shot must have exactly one
record, one photo and one verdict, and no part may have been told two different verdicts.

    .venv/bin/python benchmarks/bench_faults.py [--machines 1000] [--speed 1.5] [--workers 2]
        [--outage 30] [--model MODEL] [--json FILE] [--mqtt]

Everything runs on loopback: the cluster nodes, a throwaway PostgreSQL (`castline.store.
drill`), `castline line run` worker processes, and a load generator in which each machine
first tells its state and mounted die (as a machine does when it connects), then plays its
cycle (30-90 s, divided by `--speed`) and publishes its shot record (12 parameters) and
photograph into JetStream, retrying until the stream has it. Printed:
throughput, verdict latency (photo published -> verdict received) outside and during the
faults, and the recovery time after each fault: from the end of the fault until the oldest
unacknowledged message in the line's consumer is younger than the verdict deadline again.
With --mqtt every machine is its own MQTT client of the cluster's MQTT listeners (the
simulator's links, all on one asyncio loop, spread over the two nodes that are not
restarted) and publishes with QoS 1 instead of straight into JetStream. With --bridge the
machines are clients of a plant broker (a Mosquitto of the drill's own) and one
`castline line bridge` process carries their messages into the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import numpy as np
from nats.aio.client import Client as NATS
from sqlalchemy import Engine, func, select

from castline.domain.states import MachineState
from castline.messaging import jetstream
from castline.messaging.backlog import read_backlog
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ImageMessage, ShotMessage, StateMessage
from castline.sim.link import MachineLink
from castline.sim.photos import encode_jpeg, render_casting
from castline.store import tables as t
from castline.store.database import open_store
from castline.testing.postgres import DrillPostgres
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry
from castline.vision.train import TrainConfig, train_model

PLANT = "drill"
DIES = 20
DEADLINE_S = 2.0
PARAMS = (
    "melt_temp_c", "die_temp_fixed_c", "die_temp_moving_c", "slow_speed_m_s", "fast_speed_m_s",
    "cast_pressure_mpa", "biscuit_mm", "cycle_s", "fill_time_s", "cooling_s", "vacuum_kpa",
    "spray_s",
)  # fmt: skip


@dataclass
class Drill:
    machines: int
    speed: float
    workers: int
    outage_s: float
    settle_s: float = 25.0  # load before the first fault, and after each one
    mqtt: bool = False  # machines publish over MQTT (one client each), not into JetStream
    bridge: bool = False  # ... to a plant broker (Mosquitto) that `castline line bridge` reads

    def schedule(self) -> list[tuple[str, float, float]]:
        """(fault, start, end) in seconds from the start of the load."""
        kill = self.settle_s
        db = kill + self.settle_s
        node = db + self.outage_s + self.settle_s
        return [("worker_kill", kill, kill + 2.0), ("db_restart", db, db + self.outage_s),
                ("broker_node_restart", node, node + 5.0)]  # fmt: skip

    @property
    def load_s(self) -> float:
        return self.schedule()[-1][2] + self.settle_s


@dataclass
class Observed:
    t0: float = field(default_factory=time.monotonic)  # the load starts
    published_at: dict[tuple[str, int], float] = field(default_factory=dict)  # image sent
    verdicts: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    first_verdict_at: dict[tuple[str, int], float] = field(default_factory=dict)
    backlog: list[tuple[float, int, float | None]] = field(default_factory=list)
    publish_retries: int = 0
    mqtt_disconnects: int = 0  # machines' MQTT connections lost during the load


# --- the plant ------------------------------------------------------------------------------


def small_model(folder: Path) -> Path:
    """A small model of the synthetic casting: the drill measures the line, not the model."""
    rng = np.random.default_rng(3)
    good = []
    for i in range(40):
        image, _ = render_casting(rng, None, size=128)
        good.append(folder / f"good{i:03d}.jpeg")
        good[-1].write_bytes(encode_jpeg(image))
    config = TrainConfig(input_size=128, bank_images=20, placements_per_image=1, memory_rows=256)
    train_model(good, folder / "model", progress=False, config=config)
    return folder / "model"


def start_cluster(root: Path, mqtt: bool = False) -> list[EmbeddedNats]:
    routes = [free_port() for _ in range(3)]
    nodes = [
        EmbeddedNats(root / f"n{i}", port=free_port(), mqtt_port=free_port() if mqtt else None,
                     name=f"n{i}", cluster_port=routes[i],
                     routes=tuple(r for r in routes if r != routes[i]))
        for i in range(3)
    ]  # fmt: skip
    for node in nodes:
        node.start()
    return nodes


async def replicated_stream(url: str) -> None:
    nc = await nats.connect(servers=url.split(","))
    js = nc.jetstream()
    for _ in range(150):  # the cluster elects its meta leader first
        try:
            await jetstream.ensure_stream(js, replicas=3)
            await jetstream.ensure_line_consumer(js)
            break
        except Exception:
            await asyncio.sleep(0.2)
    else:
        raise RuntimeError("the cluster did not accept the replicated stream")
    await nc.close()


def start_worker(url: str, db_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "CASTLINE_DATABASE_URL": db_url,
        "CASTLINE_HOME": str(log.parent / "home"),
        "CASTLINE_VERDICT_DEADLINE_S": str(DEADLINE_S),
    }
    command = [sys.executable, "-m", "castline.cli", "line", "run", "--nats", url]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


# --- the load -------------------------------------------------------------------------------


def photos() -> list[bytes]:
    rng = np.random.default_rng(5)
    return [encode_jpeg(render_casting(rng, None, 128)[0]) for _ in range(16)]


async def publish(js: Any, subject: str, body: bytes, msg_id: str, seen: Observed) -> None:
    """Until the stream has it: the message id makes a retried publish a no-op."""
    for attempt in range(600):
        try:
            await js.publish(subject, body, timeout=2.0, headers={"Nats-Msg-Id": msg_id})
            return
        except Exception:
            seen.publish_retries += 1
            await asyncio.sleep(min(0.1 * (attempt + 1), 1.0))
    raise RuntimeError(f"the stream never accepted {msg_id}")


def mqtt_urls(drill: Drill, nodes: list[EmbeddedNats], plant_broker: int | None) -> list[str]:
    """Where the machines connect: the plant broker, or the cluster's MQTT listeners on the
    nodes that stay up (node 1 is restarted)."""
    if drill.bridge:
        return [f"mqtt://127.0.0.1:{plant_broker}"]
    return [f"mqtt://127.0.0.1:{nodes[i].mqtt_port}" for i in (0, 2)]


@contextmanager
def mosquitto(root: Path) -> Iterator[int]:
    """A plant broker of the drill's own, on a free port, kept in memory."""
    port = free_port()
    config = root / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                      "max_queued_messages 0\npersistence false\n")  # fmt: skip
    with (root / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=log, stderr=log)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def start_bridge(mqtt_url: str, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"CASTLINE_HOME": str(log.parent / "home")}
    command = [sys.executable, "-m", "castline.cli", "line", "bridge", mqtt_url, "--nats", url]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


async def connect_machines(drill: Drill, urls: list[str]) -> dict[str, MachineLink]:
    """One MQTT client a machine, spread over `urls`."""
    links = {
        f"m{m:04d}": MachineLink(urls[m % len(urls)], PLANT, f"m{m:04d}", lambda _verdict: None)
        for m in range(drill.machines)
    }  # fmt: skip
    started = time.monotonic()
    for link in links.values():
        link.start()
        await asyncio.sleep(0.005)  # not all in one storm
    while sum(link.connected.is_set() for link in links.values()) < len(links):
        if time.monotonic() - started > 60 + 0.1 * len(links):
            raise RuntimeError("the machines did not all connect over MQTT")
        await asyncio.sleep(0.2)
    print(f"  {len(links)} machines connected over MQTT in "
          f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
    return links


async def send(
    js: Any, links: dict[str, MachineLink] | None, machine: str, kind: str, body: bytes,
    msg_id: str, seen: Observed,
) -> None:  # fmt: skip
    if links is None:
        await publish(js, f"castline.v1.{PLANT}.{machine}.{kind}", body, msg_id, seen)
    else:
        links[machine].publish(f"castline/v1/{PLANT}/{machine}/{kind.replace('.', '/')}", body)


async def play(
    nc: NATS, drill: Drill, seen: Observed, stop_at: float, links: dict[str, MachineLink] | None
) -> int:
    """Each machine casts every 30-90 s (simulated); returns the number of shots sent."""
    js = nc.jetstream()
    rng = np.random.default_rng(1)
    images = photos()
    cycles = rng.uniform(30, 90, drill.machines) / drill.speed
    due = [(float(rng.uniform(0, c)) + time.monotonic(), m, 0) for m, c in enumerate(cycles)]
    heapq.heapify(due)
    for m in range(drill.machines):  # as a machine does when it connects: its state, its die
        machine = f"m{m:04d}"
        state = StateMessage(plant=PLANT, machine=machine, state=MachineState.RUNNING,
                             ts=datetime.now(UTC), die=f"d{m % DIES:02d}")  # fmt: skip
        await send(js, links, machine, "state", state.to_json(), f"{machine}-state", seen)
    sent = 0
    while due and due[0][0] < stop_at:
        at, m, n = heapq.heappop(due)
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        machine, now = f"m{m:04d}", datetime.now(UTC)
        params = dict(zip(PARAMS, rng.normal(100, 5, len(PARAMS)).round(3), strict=True))
        shot = ShotMessage(plant=PLANT, machine=machine, shot_number=n, die=f"d{m % DIES:02d}",
                           ts=now, params=params)  # fmt: skip
        image = ImageMessage.of(PLANT, machine, n, "front", now, images[(m + n) % len(images)])
        await send(js, links, machine, "shot", shot.to_json(), f"{machine}-{n}-s", seen)
        seen.published_at[(machine, n)] = time.monotonic()
        await send(js, links, machine, "image.front", image.to_json(), f"{machine}-{n}-i", seen)
        sent += 1
        heapq.heappush(due, (at + cycles[m], m, n + 1))
    return sent


async def workers_ready(nc: NATS, workers: int) -> None:
    """Every worker is waiting for work (its fetch request is pending at the consumer)."""
    for _ in range(600):
        backlog = await read_backlog(nc.jetstream(), jetstream.LINE_CONSUMER)
        if backlog.idle_pulls >= workers:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the line workers did not start: see worker*.log")


async def listen(nc: NATS, seen: Observed) -> None:
    async def on_verdict(msg: Any) -> None:
        body = json.loads(msg.data)
        key = (body["machine"], int(body["shot_number"]))
        seen.verdicts[key].add(body["verdict"])
        seen.first_verdict_at.setdefault(key, time.monotonic())

    await nc.subscribe(f"castline.out.v1.{PLANT}.*.verdict", cb=on_verdict)


async def watch_backlog(nc: NATS, seen: Observed, stop: asyncio.Event) -> None:
    """The line's two queues, records and photos: the total and the oldest of either."""
    js = nc.jetstream()
    while not stop.is_set():
        try:
            queues = [await read_backlog(js, jetstream.LINE_CONSUMER),
                      await read_backlog(js, jetstream.PHOTO_CONSUMER)]  # fmt: skip
            ages = [b.oldest_s for b in queues if b.oldest_s is not None]
            at = time.monotonic() - seen.t0
            seen.backlog.append((at, sum(b.total for b in queues), max(ages, default=None)))
        except Exception:
            pass  # a node is down; the next reading will do
        await asyncio.sleep(0.5)


# --- the faults -----------------------------------------------------------------------------


async def inject(
    drill: Drill,
    nodes: list[EmbeddedNats],
    pg: DrillPostgres,
    workers: list[Any],
    spawn: Any,
    t0: float,
) -> None:
    for fault, start, end in drill.schedule():
        await asyncio.sleep(max(0.0, t0 + start - time.monotonic()))
        print(f"  {start:5.0f} s  {fault} ...", flush=True)
        if fault == "worker_kill":
            workers[0].kill()  # SIGKILL: no goodbye, its unacknowledged work is redelivered
            await asyncio.to_thread(workers[0].wait)
        elif fault == "db_restart":
            await asyncio.to_thread(pg.stop)
        else:
            await asyncio.to_thread(nodes[1].stop, True)
        await asyncio.sleep(max(0.0, t0 + end - time.monotonic()))
        if fault == "worker_kill":
            workers[0] = spawn(0)
        elif fault == "db_restart":
            await asyncio.to_thread(pg.start)
        else:
            await asyncio.to_thread(nodes[1].start)
        print(f"  {end:5.0f} s  {fault} over", flush=True)


def recovery_s(seen: Observed, end: float, until: float) -> float | None:
    """Seconds from the fault's end until the oldest waiting message is within the deadline."""
    for at, _total, oldest in seen.backlog:
        if end <= at <= until and (oldest is None or oldest <= DEADLINE_S):
            return round(at - end, 1)
    return None


async def expected(_error: Exception) -> None:
    """The drill's own connection is cut when its node restarts: that is the drill."""


# --- the run --------------------------------------------------------------------------------


async def run_load(
    drill: Drill, url: str, nodes: list[EmbeddedNats], pg: DrillPostgres, spawn: Any,
    engine: Engine, urls: list[str],
) -> tuple[Observed, int, float, list[Any]]:  # fmt: skip
    workers = [spawn(i) for i in range(drill.workers)]
    nc = await nats.connect(servers=url.split(","), max_reconnect_attempts=-1, error_cb=expected)
    await workers_ready(nc, drill.workers)
    links = await connect_machines(drill, urls) if drill.mqtt else None
    seen = Observed()
    await listen(nc, seen)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_backlog(nc, seen, stop))
    faults = asyncio.create_task(inject(drill, nodes, pg, workers, spawn, seen.t0))
    sent = await play(nc, drill, seen, seen.t0 + drill.load_s, links)
    await faults
    load_s = time.monotonic() - seen.t0
    for _ in range(480):  # drain: every part decided and told, bounded
        if len(seen.first_verdict_at) >= sent or await asyncio.to_thread(decided, engine) >= sent:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2.0)  # late duplicates would show up now
    stop.set()
    await watcher
    await nc.close()
    if links is not None:
        seen.mqtt_disconnects = sum(link.disconnects for link in links.values())
        await asyncio.gather(*(asyncio.to_thread(link.close) for link in links.values()))
    return seen, sent, load_s, workers


def decided(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.verdicts)).scalar_one())


def check(engine: Engine, seen: Observed, sent: int) -> dict[str, Any]:
    with engine.connect() as conn:
        tables = {"shots": t.shots, "images": t.images, "verdicts": t.verdicts}
        tables["dead_letters"] = t.dead_letters
        count = {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in tables.items()
        }
        by_verdict: dict[str, int] = dict(
            conn.execute(
                select(t.verdicts.c.verdict, func.count()).group_by(t.verdicts.c.verdict)
            ).all()
        )
        held = conn.execute(
            select(t.verdicts.c.reason).where(t.verdicts.c.verdict == "QUARANTINE")
        ).scalars()
        held_for = Counter(re.sub(r"[0-9.]+", "N", reason) for reason in held)
        passed_unscored = conn.execute(
            select(func.count()).select_from(t.verdicts)
            .where(t.verdicts.c.verdict == "OK", t.verdicts.c.score.is_(None))
        ).scalar_one()  # fmt: skip
    return {
        "sent": sent,
        **count,
        "lost": sent - min(count["shots"], count["images"], count["verdicts"]),
        "extra_records": max(count["shots"], count["images"], count["verdicts"]) - sent,
        "parts_told_two_verdicts": sum(len(v) > 1 for v in seen.verdicts.values()),
        "parts_without_verdict_message": sent - len(seen.first_verdict_at),
        "passed_without_inspection": passed_unscored,
        "by_verdict": by_verdict,
        "quarantined_because": dict(held_for.most_common(5)),
    }


AFTER_S = 10.0  # a fault's window: from its start to this long after its end


def window_of(drill: Drill, at: float | None) -> str:
    """The fault whose window a part was sent in, else "outside faults"."""
    return next((f for f, s, e in drill.schedule() if at is not None and s <= at <= e + AFTER_S),
                "outside faults")  # fmt: skip


def held_by_fault(engine: Engine, seen: Observed, drill: Drill) -> dict[str, Any]:
    """Per window (each fault's, and outside every fault), by when the part's photo was
    sent: parts sent, QUARANTINE, why (numbers masked), and parts lost whole (no shot
    record). A fault held parts of its own only where its window holds more, or for other
    reasons, than the same time outside the faults."""
    with engine.connect() as conn:
        held = conn.execute(
            select(t.verdicts.c.machine, t.verdicts.c.shot_number, t.verdicts.c.reason)
            .where(t.verdicts.c.verdict == "QUARANTINE")
        ).all()  # fmt: skip
        recorded = set(conn.execute(select(t.shots.c.machine, t.shots.c.shot_number)).all())
    windows: dict[str, dict[str, Any]] = {}

    def window(key: tuple[str, int]) -> dict[str, Any]:
        sent = seen.published_at.get(key)
        name = window_of(drill, None if sent is None else sent - seen.t0)
        return windows.setdefault(name, {"sent": 0, "held": 0, "because": Counter(), "lost": 0})

    for key in seen.published_at:
        window(key)["sent"] += 1
        window(key)["lost"] += (key[0], key[1]) not in recorded
    for machine, shot_number, reason in held:
        counts = window((machine, int(shot_number)))
        counts["held"] += 1
        counts["because"][re.sub(r"[0-9.]+", "N", reason)] += 1
    for counts in windows.values():
        counts["held_per_100"] = round(100 * counts["held"] / max(counts["sent"], 1), 1)
        counts["because"] = dict(counts["because"].most_common(6))
    return windows


def latency(seen: Observed, drill: Drill) -> dict[str, float]:
    """Photo published -> verdict received, apart for parts sent during a fault (or the 10 s
    after it) and the others."""
    quiet: list[float] = []
    faulty: list[float] = []
    windows = [(s, e + AFTER_S) for _f, s, e in drill.schedule()]
    for key, sent_at in seen.published_at.items():
        got = seen.first_verdict_at.get(key)
        if got is None:
            continue
        at = sent_at - seen.t0
        (faulty if any(s <= at <= e for s, e in windows) else quiet).append((got - sent_at) * 1e3)

    def pct(xs: list[float], q: int) -> float:
        return round(float(np.percentile(xs, q)), 1) if xs else float("nan")

    return {
        "p50_ms": pct(quiet, 50),
        "p99_ms": pct(quiet, 99),
        "during_faults_p50_ms": pct(faulty, 50),
        "during_faults_p99_ms": pct(faulty, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=1.5, help="simulated s per wall s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--outage", type=float, default=30.0, help="database down, seconds")
    parser.add_argument("--settle", type=float, default=25.0, help="load between faults, s")
    parser.add_argument("--model", type=Path, help="inspection model (default: a small one)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--mqtt", action="store_true", help="machines as MQTT clients")
    parser.add_argument("--bridge", action="store_true",
                        help="machines on a plant broker, bridged in (implies --mqtt)")  # fmt: skip
    args = parser.parse_args()
    drill = Drill(args.machines, args.speed, args.workers, args.outage, args.settle,
                  args.mqtt or args.bridge, args.bridge)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="castline-drill-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        model = args.model or small_model(root)
        plant_broker = stack.enter_context(mosquitto(root)) if drill.bridge else None
        nodes = start_cluster(root, drill.mqtt and not drill.bridge)
        pg = DrillPostgres()
        try:
            pg.start()
            result = drill_once(drill, root, model, nodes, pg, plant_broker)
        finally:
            for node in nodes:
                node.stop()
            pg.close()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if result["check"]["lost"] or result["check"]["parts_told_two_verdicts"]:
        sys.exit(1)


def drill_once(
    drill: Drill, root: Path, model: Path, nodes: list[EmbeddedNats], pg: DrillPostgres,
    plant_broker: int | None,
) -> dict[str, Any]:  # fmt: skip
    url = ",".join(node.url for node in nodes)
    asyncio.run(replicated_stream(url))
    engine = open_store(pg.url)
    manifest = InspectionModel.load(model).manifest
    registry = ModelRegistry(engine)
    for d in range(DIES):
        registry.register(f"d{d:02d}", "front", model, manifest, activate=True)

    def spawn(i: int) -> subprocess.Popen[bytes]:
        return start_worker(url, pg.url, root / f"worker{i}.log")

    print(
        f"drill: {drill.machines} machines at {drill.speed}x, {drill.workers} workers, "
        f"database outage {drill.outage_s:.0f} s; load for {drill.load_s:.0f} s",
        flush=True,
    )
    urls = mqtt_urls(drill, nodes, plant_broker)
    bridge = start_bridge(urls[0], url, root / "bridge.log") if drill.bridge else None
    load = run_load(drill, url, nodes, pg, spawn, engine, urls)
    seen, sent, load_s, workers = asyncio.run(load)
    for worker in [*workers, *([bridge] if bridge else [])]:
        worker.terminate()
        worker.wait(timeout=30)
    result = {
        "machines": drill.machines,
        "mqtt": drill.mqtt,
        "bridge": drill.bridge,
        "speed": drill.speed,
        "workers": drill.workers,
        "shots_per_s": round(sent / load_s, 1),
        "data_points_per_s": round(sent * len(PARAMS) / load_s, 0),
        "publish_retries": seen.publish_retries,
        "verdict_latency": latency(seen, drill),
        "recovery_s": {
            fault: recovery_s(seen, end, end + 300) for fault, _s, end in drill.schedule()
        },
        "check": check(engine, seen, sent),
        "quarantined_by_fault": held_by_fault(engine, seen, drill),
        "mqtt_disconnects": seen.mqtt_disconnects,
    }
    engine.dispose()
    return result


if __name__ == "__main__":
    main()
