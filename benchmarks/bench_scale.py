"""Scale-out: shots per second against 1, 2 and 4 line-runtime worker processes.

    .venv/bin/python benchmarks/bench_scale.py --model MODEL [--parts 600] [--workers 1 2 4]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each worker count: a fresh embedded NATS and a fresh PostgreSQL database; `--parts`
parts (shot record + real holdout photograph, or a synthetic one) are queued in JetStream,
then that many `castline line run` processes are started on the same durable consumer
(a JetStream consumer group) and the clock runs until every part has its verdict row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import nats
import numpy as np
from sqlalchemy import create_engine, text

from castline import datasets
from castline.messaging import jetstream
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ImageMessage, ShotMessage
from castline.settings import Settings
from castline.sim.photos import encode_jpeg, render_casting
from castline.store import tables as t
from castline.store.database import open_store
from castline.store.repository import Store
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry

DIE = "scale-die"


def photos(data: Path) -> list[bytes]:
    root = datasets.casting_root(data)
    if root:
        return [p.read_bytes() for p in datasets.images_in_split(root / "ok_front", "holdout")][:20]
    rng = np.random.default_rng(1)
    return [encode_jpeg(render_casting(rng, None, 256)[0]) for _ in range(20)]


async def queue_parts(url: str, parts: int, images: list[bytes]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    now = datetime.now(UTC)
    for n in range(parts):
        machine = f"m{n % 9}"
        shot = ShotMessage(plant="scale", machine=machine, shot_number=n, die=DIE, ts=now)
        image = ImageMessage.of("scale", machine, n, "front", now, images[n % len(images)])
        await js.publish(f"castline.v1.scale.{machine}.shot", shot.to_json())
        await js.publish(f"castline.v1.scale.{machine}.image.front", image.to_json())
    await nc.close()


def run(
    workers: int,
    parts: int,
    model: Path,
    pg: str,
    images: list[bytes],
    cores_per_worker: int | None = None,
) -> float:
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    name = f"castline_scale_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = open_store(url)
            manifest = InspectionModel.load(model).manifest
            ModelRegistry(engine).register(DIE, "front", model, manifest, activate=True)
            with EmbeddedNats(Path(tmp) / "nats", port=free_port(), mqtt_port=None) as broker:
                asyncio.run(queue_parts(broker.url, parts, images))
                env = os.environ | {
                    "CASTLINE_DATABASE_URL": url,
                    "CASTLINE_HOME": tmp,
                    "CASTLINE_VERDICT_DEADLINE_S": "60",
                }
                command = [
                    sys.executable,
                    "-m",
                    "castline.cli",
                    "line",
                    "run",
                    "--nats",
                    broker.url,
                ]
                procs = [
                    subprocess.Popen(command, env=env, preexec_fn=pin(i, cores_per_worker))
                    for i in range(workers)
                ]
                store = Store(engine)
                first, start = 0, None  # the clock starts with the first verdict: not startup
                while (done := store.count(t.verdicts)) < parts:
                    if any(proc.poll() is not None for proc in procs):
                        raise SystemExit("a worker died: run `castline line run` to see why")
                    if start is None and done:
                        first, start = done, time.perf_counter()
                    time.sleep(0.2)
                seconds = time.perf_counter() - (start or time.perf_counter())
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(30)
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return (parts - first) / seconds


def pin(worker: int, cores: int | None) -> Callable[[], None] | None:
    """Confine worker `worker` to `cores` cores of its own (round robin over the machine)."""
    if not cores:
        return None
    total = os.cpu_count() or 1
    mine = {(worker * cores + c) % total for c in range(cores)}
    return lambda: os.sched_setaffinity(0, mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--parts", type=int, default=600)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--cores-per-worker", type=int, help="pin each worker to this many cores of its own"
    )
    args = parser.parse_args()
    images = photos(Settings().data)
    pinned = f", {args.cores_per_worker} core(s) per worker" if args.cores_per_worker else ""
    print(f"{args.parts} parts per run, {os.cpu_count()} cores{pinned}, PostgreSQL store")
    base = None
    for workers in args.workers:
        rate = run(workers, args.parts, args.model, args.pg, images, args.cores_per_worker)
        base = base or rate
        print(f"{workers} worker(s): {rate:6.1f} shots/s  (x{rate / base:.2f})")


if __name__ == "__main__":
    main()
