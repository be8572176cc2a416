"""The OPC UA reader against a real asyncua machine server: restarts and cut connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import nats
import pytest

from castline.messaging import jetstream
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.opcua_client import OpcUaReader
from castline.sim.fleet import ShotEvent
from castline.sim.opcua import MachineServer
from castline.sim.rules import Truth
from tests.line.conftest import until


class CuttableLink:
    """A TCP proxy between client and machine: a real network cable that tests can pull."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def plug(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def pull(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


def cycle(n: int) -> ShotEvent:
    return ShotEvent(
        machine="m1",
        at=datetime.now(UTC),
        shot_number=n,
        die="D1",
        die_counter=1000 + n,
        params={"melt_temp_c": 680.0 + n, "vacuum_mbar": None},
        trial=False,
        truth=Truth(False),
    )


@pytest.fixture
async def machine() -> AsyncIterator[MachineServer]:
    server = MachineServer("p1", "m1", free_port())
    await server.start()
    await server.cycle(cycle(100))
    yield server
    await server.stop()


async def shots_in_stream(url: str) -> list[dict[str, object]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe("castline.v1.p1.m1.shot", durable=None, stream=jetstream.STREAM)
    out: list[dict[str, object]] = []
    # nats-py raises its own timeout, or asyncio's when a fetch is cut short under load
    with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
        while batch := await sub.fetch(100, timeout=1):
            out += [json.loads(m.data) for m in batch]
    await nc.close()
    return out


async def start(reader: OpcUaReader) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(reader.run(stop))
    await asyncio.wait_for(reader.connected.wait(), 15)
    return stop, task


async def test_cycles_become_shot_records(broker: EmbeddedNats, machine: MachineServer) -> None:
    reader = OpcUaReader(machine.endpoint, broker.url)
    stop, task = await start(reader)
    for n in (101, 102, 103):
        await machine.cycle(cycle(n))
    await until(lambda: reader.stats.shots == 3, 15)
    stop.set()
    await task
    shots = await shots_in_stream(broker.url)
    assert [s["shot_number"] for s in shots] == [101, 102, 103]
    first = shots[0]
    assert first["die"] == "D1" and first["die_counter"] == 1101
    assert first["params"] == {
        **{k: None for k in first["params"]},  # type: ignore[dict-item]
        "melt_temp_c": 781.0,
    }


async def test_reader_survives_a_server_restart(
    broker: EmbeddedNats, machine: MachineServer
) -> None:
    reader = OpcUaReader(machine.endpoint, broker.url, heartbeat_s=0.3)
    stop, task = await start(reader)
    await machine.cycle(cycle(101))
    await until(lambda: reader.stats.shots == 1, 15)
    await machine.stop()
    await machine.cycle(cycle(102))  # made while the server is down: lost on that side too
    await asyncio.sleep(1.0)
    await machine.start()
    await until(lambda: reader.stats.connects >= 2, 30)  # reconnected and resubscribed
    await machine.cycle(cycle(103))
    await until(lambda: reader.stats.shots == 2, 15)
    stop.set()
    await task
    assert reader.stats.missed == 1  # shot 102: counted and logged, never silently skipped
    assert [s["shot_number"] for s in await shots_in_stream(broker.url)] == [101, 103]


async def test_cycles_missed_on_a_cut_connection_are_backfilled(
    broker: EmbeddedNats, machine: MachineServer
) -> None:
    link = CuttableLink(machine.port)
    await link.plug()
    endpoint = f"opc.tcp://127.0.0.1:{link.port}/castline/"
    reader = OpcUaReader(endpoint, broker.url, heartbeat_s=0.3)
    stop, task = await start(reader)
    await machine.cycle(cycle(101))
    await until(lambda: reader.stats.shots == 1, 15)
    await link.pull()
    for n in range(102, 107):  # the machine goes on casting while the cable is out
        await machine.cycle(cycle(n))
    await asyncio.sleep(1.5)
    await link.plug()
    try:
        await until(lambda: reader.stats.shots == 6, 30)
    except AssertionError:
        raise AssertionError(f"{reader.stats}, machine port {machine.port}") from None
    await machine.cycle(cycle(107))
    await until(lambda: reader.stats.shots == 7, 15)
    stop.set()
    await task
    await link.pull()
    assert reader.stats.backfilled == 5 and reader.stats.missed == 0
    assert [s["shot_number"] for s in await shots_in_stream(broker.url)] == list(range(101, 108))
