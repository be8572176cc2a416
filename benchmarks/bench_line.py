"""Line runtime figures: verdict latency under a simulated hall, and the most shots per
second one runtime process sustains.

    .venv/bin/python benchmarks/bench_line.py [--model MODEL_DIR] [--seconds 60]
        [--speeds 1 60] [--machines 9] [--burst 1500]

Latency is measured by an independent MQTT client of the embedded broker, the way a robot
cell sees it: from the moment the casting image reaches subscribers to the moment the
verdict does. Throughput: `--burst` parts are queued in JetStream before the runtime
starts; the figure is parts decided per second while it drains the backlog.
Without --model the demo model is trained (real photographs if the data folder exists).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import nats
import numpy as np
import paho.mqtt.client as mqtt

from castline import datasets
from castline.app import die_codes
from castline.demo_model import ensure_models
from castline.line.runtime import LineRuntime
from castline.messaging import jetstream, topics
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ImageMessage, ShotMessage
from castline.messaging.topics import Kind
from castline.settings import Settings
from castline.sim.fleet import FleetConfig
from castline.sim.photos import encode_jpeg, render_casting
from castline.sim.runner import HallConfig, run_hall
from castline.store.database import open_store
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry


class Observer:
    """Times each part from its image to its verdict, as a robot cell would."""

    def __init__(self, port: int) -> None:
        self.image_at: dict[tuple[str, int], float] = {}
        self.latency_ms: list[float] = []
        self.verdicts = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([("castline/v1/+/+/image/+", 0), ("castline/out/v1/+/+/verdict", 0)])
        self.client.loop_start()

    def _message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        route = topics.parse(message.topic)
        body = json.loads(message.payload)
        if route.kind is Kind.IMAGE:
            with self.lock:
                self.image_at[(route.machine, int(body["shot_number"]))] = now
        else:
            with self.lock:
                self.verdicts += 1
                seen = self.image_at.pop((route.machine, int(body["shot_number"])), None)
                if seen is not None:
                    self.latency_ms.append((now - seen) * 1e3)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


async def hall_latency(
    settings: Settings,
    broker: EmbeddedNats,
    engine: object,
    speed: float,
    machines: int,
    seconds: float,
) -> None:
    assert broker.mqtt_port is not None
    observer = Observer(broker.mqtt_port)
    runtime = LineRuntime(settings, engine, broker.url)  # type: ignore[arg-type]
    stop_line, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop_line, ready))
    await ready.wait()
    hall = HallConfig(
        plant=f"bench{int(speed)}",
        fleet=FleetConfig(machines=machines),
        speed=speed,
        duration_s=seconds,
        data=settings.data if settings.data.is_dir() else None,
    )
    report = await run_hall(hall, broker.mqtt_url, asyncio.Event())
    await asyncio.sleep(2)
    stop_line.set()
    await task
    observer.close()
    lat = observer.latency_ms
    print(
        f"{machines} machines at {speed:g}x for {seconds:g} s: {report.shots} shots, "
        f"{len(lat)} verdicts timed; image -> verdict p50 {pct(lat, 50):.1f} ms, "
        f"p99 {pct(lat, 99):.1f} ms, max {max(lat, default=float('nan')):.1f} ms; "
        f"missing verdicts {report.total.missing_verdicts}"
    )


async def burst(
    settings: Settings, broker: EmbeddedNats, engine: object, parts: int, die: str
) -> None:
    nc = await nats.connect(broker.url)
    js = nc.jetstream()
    await jetstream.ensure_stream(js)
    root = datasets.casting_root(settings.data)
    if root:  # good holdout photos of the real part the model knows
        photos = [p.read_bytes() for p in datasets.images_in_split(root / "ok_front", "holdout")]
        photos = photos[:20]
    else:
        rng = np.random.default_rng(5)
        photos = [encode_jpeg(render_casting(rng, None, 256)[0]) for _ in range(20)]
    now = datetime.now(UTC)
    for n in range(parts):
        machine = f"m{n % 9}"
        shot = ShotMessage(
            plant="burst",
            machine=machine,
            shot_number=n,
            die=die,
            ts=now,
            params={"melt_temp_c": 680.0},
        )
        image = ImageMessage.of("burst", machine, n, "front", now, photos[n % len(photos)])
        await js.publish(f"castline.v1.burst.{machine}.shot", shot.to_json())
        await js.publish(f"castline.v1.burst.{machine}.image.front", image.to_json())
    await nc.close()
    settings = settings.model_copy(update={"verdict_deadline_s": 3600.0})  # judge, not expire
    runtime = LineRuntime(settings, engine, broker.url)  # type: ignore[arg-type]
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await ready.wait()
    start = time.perf_counter()
    while sum(runtime.verdict_counts.values()) < parts:
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - start
    stop.set()
    await task
    print(
        f"burst: {parts} queued parts (shot + image each) decided in {seconds:.1f} s"
        f" = {parts / seconds:.1f} shots/s by one runtime process; "
        f"verdicts {dict(runtime.verdict_counts)}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--speeds", type=float, nargs="+", default=[1.0, 60.0])
    parser.add_argument("--machines", type=int, default=9)
    parser.add_argument("--burst", type=int, default=1500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp))
        engine = open_store(settings.db_url)
        dies = [*die_codes(FleetConfig(machines=args.machines)), "burst-die"]
        if args.model:
            model = InspectionModel.load(args.model)
            for die in dies:
                ModelRegistry(engine).register(
                    die, "front", args.model, model.manifest, activate=True
                )
        else:
            ensure_models(engine, settings, dies)
        source = "real photographs" if datasets.casting_root(settings.data) else "synthetic"
        print(f"model: {source}; broker: embedded NATS; store: SQLite")
        with EmbeddedNats(Path(tmp) / "nats", port=free_port(), mqtt_port=free_port()) as broker:
            for speed in args.speeds:
                await hall_latency(settings, broker, engine, speed, args.machines, args.seconds)
            if args.burst:
                await burst(settings, broker, engine, args.burst, "burst-die")


if __name__ == "__main__":
    asyncio.run(main())
