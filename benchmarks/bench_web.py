"""The dashboard under a day of a 9-machine plant: page and API latency, live-hub throughput.

Records 9 machines x 2,000 shots with verdicts, photos and alarms into SQLite, then times
(p50, p95 over repeated requests, in-process with the ASGI test client) the plant overview,
a part, the review queue and the control chart; and publishes 100,000 verdict events into
the hub with 20 subscribers (browsers) that never read, counting what the hub drops.

    .venv/bin/python benchmarks/bench_web.py [--shots 2000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from tqdm import tqdm

from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.verdict import Verdict
from castline.settings import Settings
from castline.store import database
from castline.store.blobs import BlobStore
from castline.store.repository import Store
from castline.web.app import create_app
from castline.web.auth import Role, add_user, new_api_key
from castline.web.live import Hub

MACHINES = 9


def record_day(store: Store, blobs: BlobStore, shots: int) -> None:
    rng = np.random.default_rng(3)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    photo = blobs.put(bytes(rng.integers(0, 255, 8000, dtype=np.uint8)))
    for m in tqdm(range(MACHINES), desc="record a day", unit="machine"):
        machine = f"m{m}"
        store.ensure_machine("p1", Machine(machine))
        store.record_state("p1", machine, MachineState.RUNNING, start, f"D{m}")
        store.ensure_die(f"D{m}", "impeller", 100_000, machine, "p1")
        at = [start + timedelta(seconds=2 * n) for n in range(shots)]
        melt = rng.normal(680, 4, shots)
        store.record_shots(
            Shot(PartKey("p1", machine, n), f"D{m}", at[n], {"melt_temp_c": float(melt[n])})
            for n in range(shots)
        )
        for n in range(shots):
            key = PartKey("p1", machine, n)
            score = float(rng.random())
            verdict = Verdict.NG if score > 0.97 else Verdict.REVIEW if score > 0.9 else Verdict.OK
            store.record_image(key, "front", at[n], photo)
            store.record_verdict(key, verdict, at[n], score=score, model_version="v1")


def timed(client: TestClient, url: str, headers: dict[str, str], repeat: int) -> str:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        answer = client.get(url, headers=headers)
        seconds.append(time.perf_counter() - start)
        assert answer.status_code == 200, (url, answer.status_code)
    p50 = statistics.median(seconds) * 1000
    p95 = sorted(seconds)[int(0.95 * (len(seconds) - 1))] * 1000
    return f"{url:58} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"


async def hub_throughput(events: int, subscribers: int) -> str:
    hub = Hub(queue_size=500)
    subs = [hub.subscribe() for _ in range(subscribers)]
    payload = {"shot_number": 0, "verdict": "OK", "score": 0.1}
    start = time.perf_counter()
    for n in range(events):
        hub.publish(f"castline/v1/p1/m{n % MACHINES}/verdict", payload)
    seconds = time.perf_counter() - start
    await asyncio.sleep(0)
    for sub in subs:
        sub.close()
    return (
        f"hub: {events / seconds:,.0f} events/s published to {subscribers} idle subscribers; "
        f"{hub.dropped:,} deliveries dropped (oldest first), 0 waits"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=2000, help="shots per machine")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), secret_key="bench")
        engine = database.open_store(settings.db_url)
        record_day(Store(engine), BlobStore(settings.blobs), args.shots)
        add_user(engine, "bench", "bench-password", Role.VIEWER)
        headers = {"X-API-Key": new_api_key(engine, "bench")}
        total = MACHINES * args.shots
        print(f"{total:,} shots, verdicts and photos of {MACHINES} machines today (SQLite)")
        with TestClient(create_app(settings, engine)) as client:
            for url in (
                "/api/v1/plants/p1/overview",
                "/plants/p1",
                f"/plants/p1/parts/m4/{args.shots // 2}",
                "/api/v1/reviews/queue",
                "/api/v1/plants/p1/machines/m4/control-chart?parameter=melt_temp_c",
                "/api/v1/plants/p1/machines/m4/trend.png?parameter=melt_temp_c",
            ):
                print(timed(client, url, headers, args.repeat))
        engine.dispose()
    print(asyncio.run(hub_throughput(100_000, 20)))


if __name__ == "__main__":
    main()
