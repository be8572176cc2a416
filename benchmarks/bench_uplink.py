"""Edge to cloud: what a plant buffers while its uplink is cut, and how fast the hub catches up.

    .venv/bin/python benchmarks/bench_uplink.py [--cut 30] [--rate 200] [--no-resume]
        [--with-photos] [--photo-px 128]

A hub (JetStream domain "hub", stream CASTLINE_CENTRAL) and a plant (domain "plant")
connected as a leaf node through a TCP proxy on loopback that counts the bytes it carries.
The plant publishes parts (a shot record, a synthetic casting photograph of `--photo-px`
pixels a side, and the line's verdict) at `--rate` parts per second the whole time. The
hub copies the records and verdicts, and the photos only with `--with-photos`. The proxy
is closed for `--cut` seconds, then reopened; the clock runs until the central stream holds
everything of the plant's that travels, up to what it had when the uplink came back. Then
the producer stops and the uplink's bytes per part are counted over the whole run.
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

from castline.domain.verdict import Verdict
from castline.messaging import jetstream, uplink
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.cli import lag_line
from castline.messaging.schema import ImageMessage, Region, ShotMessage, VerdictMessage
from castline.sim.photos import encode_jpeg, render_casting
from castline.testing.link_proxy import LinkProxy

PLANT = "plant"


class CountingProxy(LinkProxy):
    """The cuttable link, counting the bytes that go from the plant up to the hub."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.up_bytes = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        pipes = asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer))
        self._pipes.add(pipes)
        await pipes
        self._pipes.discard(pipes)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool = False
    ) -> None:
        try:
            while data := await reader.read(65536):
                self.up_bytes += len(data) if up else 0
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


class Produced:
    """The plant sequence of each message published, and whether it is a photo."""

    def __init__(self) -> None:
        self.photos: list[bool] = []  # index: plant sequence - 1
        self.parts = 0
        self.sizes = {"shot": 0, "image": 0, "verdict": 0}

    def travelling(self, up_to: int, with_photos: bool) -> int:
        """How many of the plant's first `up_to` messages the hub copies."""
        seen = self.photos[:up_to]
        return len(seen) if with_photos else seen.count(False)


async def produce(nc: NATS, rate: float, stop: asyncio.Event, px: int, log: Produced) -> None:
    """Parts at a steady rate, as a plant's machines, cameras and line would send them."""
    js = nc.jetstream()
    rng = np.random.default_rng(1)
    photos = [encode_jpeg(render_casting(rng, None, px)[0]) for _ in range(10)]
    start, n = time.monotonic(), 0
    while not stop.is_set():
        now, machine = datetime.now(UTC), f"m{n % 9}"
        shot = ShotMessage(plant=PLANT, machine=machine, shot_number=n, die="D1", ts=now)
        image = ImageMessage.of(PLANT, machine, n, "front", now, photos[n % len(photos)])
        region = Region(x=10, y=12, w=20, h=16, area_px=240, score=0.7)
        verdict = VerdictMessage(plant=PLANT, machine=machine, shot_number=n, verdict=Verdict.NG,
                                 decided_at=now, score=0.71, reason="front: score 0.71",
                                 model_version="v1", latency_ms=40.0, regions=[region])  # fmt: skip
        for kind, subject, body in (
            ("shot", f"castline.v1.{PLANT}.{machine}.shot", shot.to_json()),
            ("image", f"castline.v1.{PLANT}.{machine}.image.front", image.to_json()),
            ("verdict", f"castline.out.v1.{PLANT}.{machine}.verdict", verdict.to_json()),
        ):
            ack = await js.publish(subject, body)
            log.photos += [False] * (ack.seq - len(log.photos) - 1) + [kind == "image"]
            log.sizes[kind] = len(body)
        n += 1
        log.parts = n
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


async def main(cut_s: float, rate: float, resume: bool, with_photos: bool, px: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    proxy = CountingProxy(free_port())
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
    await uplink.ensure_central(hc, [PLANT], [PLANT] if with_photos else [])
    stop, log = asyncio.Event(), Produced()
    producer = asyncio.create_task(produce(pc, rate, stop, px, log))
    watcher = asyncio.create_task(watch(hc, stop) if resume else stop.wait())
    try:
        await asyncio.sleep(3)  # connected: the hub keeps up live
        await proxy.cut()
        cut_at, cut_bytes = await last_seq(pc, jetstream.STREAM)
        await asyncio.sleep(cut_s)
        back_at, back_bytes = await last_seq(pc, jetstream.STREAM)
        print(f"uplink cut {cut_s:.0f} s at {rate:.0f} parts/s: the plant's stream took "
              f"{back_at - cut_at} messages ({(back_bytes - cut_bytes) / 1e6:.1f} MB) "
              f"meanwhile; photos {'copied' if with_photos else 'kept at the plant'}")  # fmt: skip
        central_before, _ = await last_seq(hc, uplink.CENTRAL_STREAM)
        print(f"central stream during the cut: {central_before} messages; lag as the hub "
              f"sees it: {lag_line((await uplink.plant_lags(hc))[0])}")  # fmt: skip
        reopened_bytes = proxy.up_bytes
        await proxy.open()
        target = log.travelling(back_at, with_photos)
        await catch_up(hc, target, target - central_before)
        moved = proxy.up_bytes - reopened_bytes
        parts = (back_at - cut_at) / 3
        print(f"catch-up moved {moved / 1e6:.1f} MB up the link, about "
              f"{moved / parts / 1e3:.2f} KB per part buffered ({parts:.0f} parts; "
              f"live parts meanwhile included)")  # fmt: skip
        stop.set()
        await asyncio.gather(producer, watcher)
        total, _ = await last_seq(pc, jetstream.STREAM)
        await catch_up(hc, log.travelling(total, with_photos), 0, quiet=True)
        sizes = ", ".join(f"{kind} {size / 1e3:.2f} KB" for kind, size in log.sizes.items())
        print(f"whole run: {log.parts} parts ({sizes} a message), {proxy.up_bytes / 1e6:.1f} MB "
              f"up the link: {proxy.up_bytes / log.parts / 1e3:.2f} KB per part "
              f"{'with' if with_photos else 'without'} photos")  # fmt: skip
    finally:
        stop.set()
        await asyncio.gather(producer, watcher)
        await pc.close()
        await hc.close()
        await proxy.cut()
        plant.stop()
        hub.stop()
        shutil.rmtree(folder)  # the buffered messages: hundreds of MB after a long cut


async def catch_up(
    hc: NATS, target: int, missing: int, timeout: float = 600.0, quiet: bool = False
) -> None:
    """Time until the central stream holds `target` messages of the plant."""
    start = time.monotonic()
    first = None
    js = hc.jetstream()
    base = (await js.stream_info(uplink.CENTRAL_STREAM)).state.messages
    while time.monotonic() - start < timeout:
        count = (await js.stream_info(uplink.CENTRAL_STREAM)).state.messages
        if first is None and count > base:
            first = time.monotonic() - start
        if count >= target and quiet:
            return
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
    parser.add_argument("--with-photos", action="store_true", help="the hub copies photos too")
    parser.add_argument("--photo-px", type=int, default=128, help="photo width and height")
    args = parser.parse_args()
    asyncio.run(main(args.cut, args.rate, not args.no_resume, args.with_photos, args.photo_px))
