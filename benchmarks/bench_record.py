"""Telemetry recording end to end: JetStream -> line worker -> PostgreSQL, in records/s.

    .venv/bin/python benchmarks/bench_record.py [--shots 20000] [--workers 1 2] [--pin]
        [--repeat 3]

N shot records (12 process parameters each, no photos) are queued in a fresh embedded
NATS; then, in the same run, (1) the raw JetStream rate: one consumer pulls and acks them
all without doing anything else, and (2) for each worker count, `castline line run`
processes on a fresh PostgreSQL database record them all (timed from the first rows
recorded: worker start-up is left out). Both pull and acknowledge the same way, in
batches of the worker's size (`castline.messaging.pull`). Printed: each rate, and the
ratio to the raw rate of the same run, and the load average around it. With --pin each
worker gets a core of its own (taskset). The machines are set up without cameras
(setting machines_without_camera): their shots are recorded only. Databases are dropped
at the end, on SIGTERM too, and those a killed run left are dropped at the start.
With two or more worker counts, the scaling of each against the first is printed too.
With --repeat N the worker counts take turns N times (so a busy spell of the machine falls
on both) and the medians are printed beside every run's figure.

With --confine (implies --pin) the whole path gets as many cores as there are workers:
the PostgreSQL server's processes and the broker are confined to the workers' cores for
the run (their CPU affinity, restored after), so one worker has one core for itself, its
database and its broker, and two workers have two. That is how recording scales with
cores where the database shares the machine's cores; with --pin alone, one worker has a
core to itself and the database takes the other. Needs the right to set the affinity of
the server's processes (root, or the user PostgreSQL runs as).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from sqlalchemy import create_engine, text

from castline.domain.units import NAMES
from castline.line.intake import FETCH_RECORDS
from castline.messaging import jetstream, pull
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ShotMessage
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PREFIX = "castline_rec_"
CREATED: set[str] = set()
MACHINES = 100


async def queue(url: str, shots: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    start = datetime.now(UTC) - timedelta(hours=1)
    params: dict[str, float | None] = {name: 100.0 + i for i, name in enumerate(NAMES[:12])}
    pending = []
    for n in range(shots):
        machine = f"m{n % MACHINES}"
        shot = ShotMessage(
            plant="p1",
            machine=machine,
            shot_number=n // MACHINES,
            die=f"D{n % MACHINES}",
            ts=start + timedelta(milliseconds=n),
            params=params,
        )
        pending.append(js.publish(f"castline.v1.p1.{machine}.shot", shot.to_json()))
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await nc.close()


async def raw_rate(url: str, shots: int) -> float:
    """Pull and ack every queued message with a consumer of its own: the ceiling. Pulled
    and acknowledged exactly as the worker does (`messaging/pull.py`, batches of
    FETCH_RECORDS), so the ratio compares the work, not two ways of fetching."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe("castline.v1.>", durable=f"raw{uuid.uuid4().hex[:6]}")
    started, done = time.perf_counter(), 0
    while done < shots:
        try:
            batch = await pull.fetch(sub, FETCH_RECORDS, timeout=1)
        except (nats.errors.TimeoutError, TimeoutError):
            continue
        await pull.ack_all(batch)
        done += len(batch)
    await nc.flush()  # the last acks are out before the clock stops
    rate = shots / (time.perf_counter() - started)
    await nc.close()
    return rate


def fresh_database() -> tuple[str, str]:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"{PREFIX}{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    CREATED.add(name)  # dropped at exit, whatever ends the run
    url = make_url(name)
    database.upgrade(database.connect(url))
    return name, url


def make_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    CREATED.discard(name)


def drop_stale() -> None:
    """Databases of an earlier run that was killed outright (SIGKILL leaves no time to
    clean up): those of this benchmark that nobody is connected to."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        names = conn.execute(
            text(
                "SELECT datname FROM pg_database WHERE datname LIKE :prefix AND datname NOT IN "
                "(SELECT datname FROM pg_stat_activity WHERE datname IS NOT NULL)"
            ),
            {"prefix": PREFIX.replace("_", r"\_") + "%"},
        ).scalars()
        for name in list(names):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            print(f"dropped {name}, left by an earlier run", flush=True)
    admin.dispose()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`: databases dropped


def _threads(pid: int) -> list[int]:
    try:
        return [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:  # gone meanwhile
        return []


def _database_pids() -> list[int]:
    """The PostgreSQL server's processes (the postmaster forks each new connection's
    backend with its own affinity)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@contextmanager
def confined(cores: set[int], pids: list[int]) -> Iterator[None]:
    """Every thread of `pids` on `cores` until the block ends, then as before."""
    before: dict[int, set[int]] = {}
    try:
        for tid in (tid for pid in pids for tid in _threads(pid)):
            try:
                cpus = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, cores)
                before[tid] = cpus  # only what was changed is restored
            except ProcessLookupError:
                continue
            except PermissionError:  # restored below; say what is missing, no traceback
                raise SystemExit(
                    "--confine needs the right to set the CPU affinity of the PostgreSQL "
                    "server's processes (run as root or as the user the server runs as)"
                ) from None
        yield
    finally:
        for tid, cpus in before.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:
                continue


def workers_rate(nats_url: str, shots: int, workers: int, pin: bool, home: Path) -> float:
    """`castline line run` workers on a fresh database, timed until every shot is in it."""
    name, db_url = fresh_database()
    env = os.environ | {
        "CASTLINE_HOME": str(home),
        "CASTLINE_DATABASE_URL": db_url,
        # Records only: these machines have no camera, so no part waits for a photo.
        "CASTLINE_MACHINES_WITHOUT_CAMERA": '["*"]',
    }
    command = [sys.executable, "-m", "castline.cli", "line", "run", "--nats", nats_url]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            (["taskset", "-c", str(i % os.cpu_count()), *command] if pin else command),  # type: ignore[operator]
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    store = Store(database.connect(db_url))
    first: tuple[float, int] | None = None  # worker start-up is left out: from the first rows
    try:
        while (count := store.count(t.shots)) < shots:
            if first is None and count:
                first = (time.perf_counter(), count)
            time.sleep(0.1)
            if time.perf_counter() - started > 900:
                raise RuntimeError("the workers did not record everything in 15 minutes")
        begun, already = first or (started, 0)
        return (shots - already) / (time.perf_counter() - begun)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        store.engine.dispose()
        drop(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shots", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--pin", action="store_true")
    parser.add_argument("--confine", action="store_true", help="database and broker too")
    parser.add_argument("--repeat", type=int, default=1, help="turns of every worker count")
    args = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    drop_stale()
    try:
        run(args)
    finally:
        for name in list(CREATED):
            drop(name)


def run(args: argparse.Namespace) -> None:
    runs: dict[int, list[tuple[float, float, str]]] = {w: [] for w in args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        for turn in range(args.repeat):
            for workers in args.workers:
                rate, raw, load = one_run(args, workers, Path(tmp) / f"{turn}-{workers}")
                runs[workers].append((rate, raw, load))
                print(f"{workers} worker(s): {rate:,.0f} shots/s recorded; raw {raw:,.0f}/s; "
                      f"ratio {rate / raw:.3f}; load {load}", flush=True)  # fmt: skip
    print(json.dumps(summary(runs), indent=2))


def one_run(args: argparse.Namespace, workers: int, folder: Path) -> tuple[float, float, str]:
    """(recorded shots/s, raw pull+ack msg/s, load average) of one run on a fresh broker."""
    with EmbeddedNats(folder / "nats", port=free_port(), mqtt_port=None) as broker:
        asyncio.run(queue(broker.url, args.shots))
        load = os.getloadavg()[0]  # the machine is shared: say how busy it was
        raw = asyncio.run(raw_rate(broker.url, args.shots))
        cores = {i % (os.cpu_count() or 1) for i in range(workers)}
        servers = [*_database_pids(), *([broker.pid] if broker.pid else [])]
        servers = servers if args.confine else []
        with confined(cores, servers):
            pin = args.pin or args.confine
            rate = workers_rate(broker.url, args.shots, workers, pin, folder / "home")
        return rate, raw, f"{load:.1f}-{os.getloadavg()[0]:.1f}"


def summary(runs: dict[int, list[tuple[float, float, str]]]) -> dict[str, object]:
    """Medians per worker count (every run's figure beside them), and the scaling."""
    out: dict[str, object] = {}
    median: dict[int, float] = {}
    for workers, each in runs.items():
        median[workers] = statistics.median(rate for rate, _, _ in each)
        raw = statistics.median(r for _, r, _ in each)
        out[f"{workers} worker(s) -> PostgreSQL"] = round(median[workers])
        out[f"raw pull+ack, runs of {workers} worker(s)"] = round(raw)
        out[f"{workers} worker(s) / raw"] = round(
            statistics.median(rate / r for rate, r, _ in each), 3
        )
        out[f"{workers} worker(s), each run"] = [round(rate) for rate, _, _ in each]
        out[f"load average, runs of {workers} worker(s)"] = [load for _, _, load in each]
    first, *more = runs
    for workers in more:
        out[f"{workers} vs {first} worker(s)"] = round(median[workers] / median[first], 2)
    return out


if __name__ == "__main__":
    main()
