"""Edge to cloud: what a plant buffers while its uplink is cut, and how fast the hub catches up.

    .venv/bin/python benchmarks/bench_uplink.py [--cut 30] [--rate 200] [--no-resume]

A hub (JetStream domain "hub", stream CASTLINE_CENTRAL) and a plant (domain "plant")
connected as a leaf node through a TCP proxy on loopback. The plant publishes parts (a
shot record and a synthetic casting photograph of about 4 KB each) at `--rate` parts per
second the whole time. The proxy is closed for `--cut` seconds, then reopened; the clock
runs until the central stream holds everything the plant had when the uplink came back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import nats
import numpy as np
from nats.aio.client import Client as NATS

from castline.messaging import jetstream, uplink
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.schema import ImageMessage, ShotMessage
from castline.sim.photos import encode_jpeg, render_casting
from castline.testing.link_proxy import LinkProxy

PLANT = "plant"


async def produce(nc: NATS, rate: float, stop: asyncio.Event) -> None:
    """Parts at a steady rate, as a plant's machines and cameras would send them."""
    js = nc.jetstream()
    rng = np.random.default_rng(1)
    photos = [encode_jpeg(render_casting(rng, None, 128)[0]) for _ in range(10)]
    start, n = time.monotonic(), 0
    while not stop.is_set():
        now = datetime.now(UTC)
        shot = ShotMessage(plant=PLANT, machine=f"m{n % 9}", shot_number=n, die="D1", ts=now)
        image = ImageMessage.of(PLANT, f"m{n % 9}", n, "front", now, photos[n % len(photos)])
        await js.publish(f"castline.v1.{PLANT}.m{n % 9}.shot", shot.to_json())
        await js.publish(f"castline.v1.{PLANT}.m{n % 9}.image.front", image.to_json())
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))


async def last_seq(nc: NATS, stream: str) -> tuple[int, int]:
    state = (await nc.jetstream().stream_info(stream)).state
    return state.last_seq, state.bytes


async def watch(hc: NATS, stop: asyncio.Event) -> None:
    """What `castline hub` does between its lag reports: re-attach stalled sources."""
    while not stop.is_set():
        for plant in await uplink.resume_stalled(hc):
            print(f"  hub: {plant} answers again, its source re-attached")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), uplink.WATCH_S)


async def main(cut_s: float, rate: float, resume: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    proxy = LinkProxy(free_port())
    advertise = f"127.0.0.1:{proxy.port}"  # reconnects go through the proxy too
    hub = EmbeddedNats(folder / "hub", free_port(), None, name="hub", domain="hub",
                       leaf_port=proxy.target_port, leaf_advertise=advertise)  # fmt: skip
    hub.start()
    await proxy.open()
    remote = (f"nats://127.0.0.1:{proxy.port}",)
    plant = EmbeddedNats(folder / PLANT, free_port(), None, name=PLANT, domain=PLANT,
                         leaf_remotes=remote)  # fmt: skip
    plant.start()
    pc, hc = await nats.connect(plant.url), await nats.connect(hub.url)
    await jetstream.ensure_stream(pc.jetstream())
    await uplink.ensure_central(hc, [PLANT])
    stop = asyncio.Event()
    producer = asyncio.create_task(produce(pc, rate, stop))
    watcher = asyncio.create_task(watch(hc, stop) if resume else stop.wait())
    try:
        await asyncio.sleep(3)  # connected: the hub keeps up live
        await proxy.cut()
        cut_at, cut_bytes = await last_seq(pc, jetstream.STREAM)
        await asyncio.sleep(cut_s)
        back_at, back_bytes = await last_seq(pc, jetstream.STREAM)
        print(f"uplink cut {cut_s:.0f} s at {rate:.0f} parts/s: the plant's stream took "
              f"{back_at - cut_at} messages ({(back_bytes - cut_bytes) / 1e6:.1f} MB) "
              f"meanwhile")  # fmt: skip
        central_before, _ = await last_seq(hc, uplink.CENTRAL_STREAM)
        print(f"central stream during the cut: {central_before} messages; lag as the hub "
              f"sees it: {(await uplink.plant_lags(hc))[0].line()}")  # fmt: skip
        await proxy.open()
        await catch_up(hc, back_at, back_at - central_before)
    finally:
        stop.set()
        await asyncio.gather(producer, watcher)
        await pc.close()
        await hc.close()
        await proxy.cut()
        plant.stop()
        hub.stop()
        shutil.rmtree(folder)  # the buffered messages: hundreds of MB after a long cut


async def catch_up(hc: NATS, target: int, missing: int, timeout: float = 600.0) -> None:
    """Time until the central stream holds all `target` messages of the plant."""
    start = time.monotonic()
    first = None
    js = hc.jetstream()
    base = (await js.stream_info(uplink.CENTRAL_STREAM)).state.messages
    while time.monotonic() - start < timeout:
        count = (await js.stream_info(uplink.CENTRAL_STREAM)).state.messages
        if first is None and count > base:
            first = time.monotonic() - start
        if count >= target:
            took = time.monotonic() - start
            flow = took - (first or 0.0)
            print(f"catch-up: first message {first or 0.0:.1f} s after the uplink returned, "
                  f"all {missing} missing messages in {took:.1f} s "
                  f"({missing / max(flow, 1e-3):.0f} msgs/s once flowing)")  # fmt: skip
            return
        await asyncio.sleep(0.05)
    raise SystemExit(f"no catch-up within {timeout:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cut", type=float, default=30.0, help="seconds the uplink is cut")
    parser.add_argument("--rate", type=float, default=200.0, help="parts per second published")
    parser.add_argument(
        "--no-resume", action="store_true", help="leave stalled sources to the server's retry"
    )
    args = parser.parse_args()
    asyncio.run(main(args.cut, args.rate, not args.no_resume))
