"""The robot-cell OPC UA handshake: an asyncua client plays the cell PLC, against a real NATS.

The line is played by what the line does (journal first, then publish the verdict), so
each test checks what the server makes of the journal and the subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from asyncua import Client, Node, ua
from nats.aio.client import Client as NATS

from castline.domain.shot import PartKey
from castline.domain.verdict import PartVerdict, Verdict
from castline.line.output import verdict_message
from castline.messaging import opcua_cell_model as m
from castline.messaging import topics
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.journal import VerdictJournal
from castline.messaging.opcua_cell import JOURNAL_TIMEOUT_S, CellServer

PLANT, MACHINE = "p1", "m1"
DEADLINE_S = 1.0


@dataclass(frozen=True)
class Shared:
    broker: EmbeddedNats
    cells: Running


@dataclass(frozen=True)
class Result:
    shot: int
    verdict: str
    code: int
    reason: str


class Plc:
    """A cell PLC: asks for a part's verdict, waits for ResultReady, acknowledges."""

    def __init__(self, endpoint: str, machine: str = MACHINE) -> None:
        self.client = Client(endpoint, timeout=4)
        self.machine = machine
        self.idx = 0

    async def connect(self) -> None:
        await self.client.connect()
        self.idx = await self.client.get_namespace_index(m.NAMESPACE)

    async def disconnect(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.disconnect()

    def node(self, name: str) -> Node:
        return self.client.get_node(
            ua.NodeId(ua.String(m.node_id(self.machine, name)), ua.Int16(self.idx))
        )

    async def read(self, name: str) -> Any:
        return await self.node(name).read_value()

    async def write(self, name: str, value: Any, kind: ua.VariantType) -> None:
        await self.node(name).write_value(ua.DataValue(ua.Variant(value, kind)))

    async def ask(self, shot: int) -> None:
        await self.write(m.SHOT_NUMBER, shot, ua.VariantType.UInt64)
        await self.write(m.PART_PRESENT, True, ua.VariantType.Boolean)

    async def result(self, timeout: float = 5.0) -> Result:
        await self.until(m.RESULT_READY, True, timeout)
        return Result(
            shot=await self.read(m.RESULT_SHOT_NUMBER),
            verdict=await self.read(m.VERDICT),
            code=await self.read(m.VERDICT_CODE),
            reason=await self.read(m.REASON),
        )

    async def acknowledge(self) -> None:
        """Acknowledge, see ResultReady fall, then take the part out (back to idle)."""
        await self.write(m.RESULT_ACKNOWLEDGED, True, ua.VariantType.Boolean)
        await self.until(m.RESULT_READY, False, 2.0)
        await self.write(m.PART_PRESENT, False, ua.VariantType.Boolean)
        await self.write(m.RESULT_ACKNOWLEDGED, False, ua.VariantType.Boolean)

    async def idle(self) -> None:
        """No part, nothing acknowledged: where each test begins."""
        await self.write(m.PART_PRESENT, False, ua.VariantType.Boolean)
        await self.write(m.RESULT_ACKNOWLEDGED, False, ua.VariantType.Boolean)

    async def until(self, name: str, value: Any, timeout: float) -> None:
        for _ in range(int(timeout / 0.02)):
            if await self.read(name) == value:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{name} did not become {value!r} within {timeout} s")


class Line:
    """Does what the line's output does with a decided verdict: journal, then publish."""

    def __init__(self, nc: NATS, journal: VerdictJournal) -> None:
        self.nc = nc
        self.journal = journal

    async def decides(self, shot: int, verdict: Verdict, reason: str = "") -> PartVerdict:
        key = PartKey(PLANT, MACHINE, shot)
        told, _ = await self.journal.first(key, PartVerdict(verdict, datetime.now(UTC), reason))
        await self.publish(shot, told)
        return told

    async def publish(self, shot: int, told: PartVerdict) -> None:
        """Publish only (what a forged or stray verdict message is)."""
        key = PartKey(PLANT, MACHINE, shot)
        subject = topics.to_subject(topics.output_topic(PLANT, MACHINE))
        await self.nc.publish(subject, verdict_message(key, told).to_json())
        await self.nc.flush()


class Running:
    """A cell server running in the test's loop, stoppable and restartable on its port."""

    def __init__(self, broker: EmbeddedNats, port: int, **options: Any) -> None:
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/castline/cells/"
        self.server = CellServer(
            broker.url, PLANT, [MACHINE, "m2"], self.endpoint, deadline_s=DEADLINE_S, **options
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.stop = asyncio.Event()
        ready = asyncio.Event()
        self.task = asyncio.create_task(self.server.run(self.stop, ready))
        waiting = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiting, self.task}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()  # raises what stopped it
        assert ready.is_set(), "the cell server did not come up"

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 15)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One broker and cell server for the handshake tests: asyncua takes seconds of CPU to
    start a server, so they share one (each on its own shot numbers)."""
    broker = EmbeddedNats(tmp_path_factory.mktemp("nats"), port=free_port(), mqtt_port=free_port())
    broker.start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    running = Running(broker, free_port())
    try:
        asyncio.run_coroutine_threadsafe(running.start(), loop).result(60)
        yield Shared(broker, running)
        asyncio.run_coroutine_threadsafe(running.halt(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        broker.stop()


@pytest.fixture
async def line(shared: Shared) -> AsyncIterator[Line]:
    async with _line(shared.broker) as it:
        yield it


@contextlib.asynccontextmanager
async def _line(broker: EmbeddedNats) -> AsyncIterator[Line]:
    nc = await nats.connect(broker.url)
    try:
        yield Line(nc, await VerdictJournal.open(nc.jetstream()))
    finally:
        await nc.close()


@pytest.fixture
def cells(shared: Shared) -> Running:
    return shared.cells


@pytest.fixture
async def plc(cells: Running) -> AsyncIterator[Plc]:
    client = Plc(cells.endpoint)
    await client.connect()
    await client.idle()
    yield client
    await client.idle()
    await client.disconnect()


async def test_verdict_published_before_the_part_is_present(
    cells: Running, plc: Plc, line: Line
) -> None:
    before = replace(cells.server.stats)
    await line.decides(7, Verdict.NG, "porosity")
    await plc.ask(7)
    assert await plc.result() == Result(7, "NG", 2, "porosity")
    assert await plc.read(m.ERROR) is False
    assert cells.server.stats.deadline_quarantines == before.deadline_quarantines


async def test_verdict_that_comes_while_the_part_waits(
    cells: Running, plc: Plc, line: Line
) -> None:
    await plc.ask(8)
    await plc.until(m.BUSY, True, 1.0)
    assert await plc.read(m.RESULT_READY) is False
    await asyncio.sleep(0.2)
    await line.decides(8, Verdict.OK)
    started = asyncio.get_running_loop().time()
    assert await plc.result() == Result(8, "OK", 1, "")
    assert asyncio.get_running_loop().time() - started < DEADLINE_S / 2  # woken, not polled
    assert await plc.read(m.BUSY) is False


async def test_no_verdict_is_quarantine_at_the_deadline_and_stays(
    cells: Running, plc: Plc, line: Line
) -> None:
    before = replace(cells.server.stats)
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await plc.ask(9)
    result = await plc.result(timeout=DEADLINE_S + 2)
    waited = loop.time() - asked
    assert result.verdict == "QUARANTINE" and result.code == 4 and result.shot == 9
    assert result.reason.startswith(f"no verdict within {DEADLINE_S:g} s")
    assert DEADLINE_S - 0.05 <= waited <= DEADLINE_S + 0.9  # never early; late only by load
    # The line decides late: the journal keeps the cell's QUARANTINE as the part's verdict.
    late = await line.decides(9, Verdict.OK)
    assert late.verdict is Verdict.QUARANTINE
    # A stray OK on the subject changes nothing either, now or when the cell asks again.
    await line.publish(9, PartVerdict(Verdict.OK, datetime.now(UTC), "late"))
    await asyncio.sleep(0.2)
    assert (await plc.read(m.VERDICT), await plc.read(m.RESULT_SHOT_NUMBER)) == ("QUARANTINE", 9)
    await plc.acknowledge()
    await plc.ask(9)
    assert (await plc.result()).verdict == "QUARANTINE"
    assert cells.server.stats.deadline_quarantines == before.deadline_quarantines + 1


async def test_a_verdict_message_that_is_not_journaled_is_never_told(
    cells: Running, plc: Plc, line: Line
) -> None:
    await plc.ask(10)
    await plc.until(m.BUSY, True, 1.0)
    await line.publish(10, PartVerdict(Verdict.OK, datetime.now(UTC), "forged"))
    result = await plc.result(timeout=DEADLINE_S + 2)
    assert result.verdict == "QUARANTINE"


async def test_acknowledge_clears_the_result_and_the_next_part_works(
    cells: Running, plc: Plc, line: Line
) -> None:
    before = replace(cells.server.stats)
    await line.decides(11, Verdict.REVIEW, "uncertain")
    await line.decides(12, Verdict.OK)
    await plc.ask(11)
    assert (await plc.result()).verdict == "REVIEW"
    await plc.write(m.RESULT_ACKNOWLEDGED, True, ua.VariantType.Boolean)
    await plc.until(m.RESULT_READY, False, 1.0)
    assert await plc.read(m.VERDICT) == "REVIEW"  # kept to look at; ResultReady says it is old
    # PartPresent still high: no new request until it falls and rises again.
    await plc.write(m.SHOT_NUMBER, 12, ua.VariantType.UInt64)
    await plc.write(m.PART_PRESENT, True, ua.VariantType.Boolean)
    await asyncio.sleep(0.2)
    assert await plc.read(m.RESULT_READY) is False
    await plc.write(m.PART_PRESENT, False, ua.VariantType.Boolean)
    await plc.write(m.RESULT_ACKNOWLEDGED, False, ua.VariantType.Boolean)
    await plc.ask(12)
    assert await plc.result() == Result(12, "OK", 1, "")
    assert cells.server.stats.requests == before.requests + 2


async def test_plc_cannot_write_castline_nodes_nor_wrong_types(
    cells: Running, plc: Plc, line: Line
) -> None:
    shown = [await plc.read(name) for name in (m.VERDICT, m.RESULT_READY, m.RESULT_SHOT_NUMBER)]
    for name, value, kind in [
        (m.VERDICT, "NO-SUCH", ua.VariantType.String),
        (m.RESULT_READY, True, ua.VariantType.Boolean),
        (m.VERDICT_CODE, 1, ua.VariantType.Int16),
        (m.RESULT_SHOT_NUMBER, 5, ua.VariantType.UInt64),
    ]:
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await plc.write(name, value, kind)
    assert [await plc.read(n) for n in (m.VERDICT, m.RESULT_READY, m.RESULT_SHOT_NUMBER)] == shown
    with pytest.raises(ua.uaerrors.BadTypeMismatch):
        await plc.write(m.SHOT_NUMBER, -5, ua.VariantType.Int64)  # negative: not a UInt64
    with pytest.raises(ua.uaerrors.BadTypeMismatch):
        await plc.write(m.PART_PRESENT, "yes", ua.VariantType.String)
    with pytest.raises(ua.uaerrors.BadTypeMismatch):
        await plc.write(m.PART_PRESENT, 1, ua.VariantType.Int32)
    assert await plc.read(m.BUSY) is False  # nothing was asked
    # asyncua makes a client named "admin" an admin, above access levels: not here.
    admin = Plc(cells.endpoint)
    admin.client.set_user("admin")
    admin.client.set_password("admin")
    with pytest.raises(ua.UaError):
        await admin.connect()
    await admin.disconnect()


async def test_a_shot_number_out_of_range_is_an_error_not_a_request(
    cells: Running, plc: Plc, line: Line
) -> None:
    await plc.ask(2**64 - 1)
    await plc.until(m.ERROR, True, 1.0)
    assert "ShotNumber" in await plc.read(m.ERROR_TEXT)
    assert await plc.read(m.BUSY) is False
    await asyncio.sleep(DEADLINE_S + 0.3)
    assert await plc.read(m.RESULT_READY) is False  # no request, so no deadline either
    # A bad-status write empties the node: refused as an error, the server carries on.
    await plc.node(m.SHOT_NUMBER).write_attribute(
        ua.AttributeIds.Value, ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.Bad)))
    )
    assert "without a value" in await plc.read(m.ERROR_TEXT)
    # The next valid request clears the error.
    await line.decides(13, Verdict.OK)
    await plc.write(m.PART_PRESENT, False, ua.VariantType.Boolean)
    await plc.ask(13)
    assert (await plc.result()).verdict == "OK"
    assert await plc.read(m.ERROR) is False


async def test_the_part_leaving_cancels_its_request(cells: Running, plc: Plc, line: Line) -> None:
    await plc.ask(14)
    await plc.until(m.BUSY, True, 1.0)
    await plc.write(m.PART_PRESENT, False, ua.VariantType.Boolean)
    assert await plc.read(m.BUSY) is False
    await asyncio.sleep(DEADLINE_S + 0.3)
    assert await plc.read(m.RESULT_READY) is False
    assert await line.journal.get(PartKey(PLANT, MACHINE, 14)) is None


async def test_cells_of_two_machines_are_apart(cells: Running, plc: Plc, line: Line) -> None:
    other = Plc(cells.endpoint, "m2")
    await other.connect()
    try:
        await line.decides(15, Verdict.NG)  # m1's shot 15
        await other.ask(15)
        await plc.ask(15)
        assert (await plc.result()).verdict == "NG"
        assert (await other.result(timeout=DEADLINE_S + 2)).verdict == "QUARANTINE"
    finally:
        await other.disconnect()


async def test_server_restart_the_plc_asks_again_and_gets_the_journaled_verdict(
    broker: EmbeddedNats,
) -> None:
    running = Running(broker, free_port())
    await running.start()
    plc = Plc(running.endpoint)
    await plc.connect()
    try:
        await plc.ask(20)
        await plc.until(m.BUSY, True, 1.0)
        await running.halt()  # the server goes down with the request open
        await plc.disconnect()
        async with _line(broker) as line:  # decided and published while nobody listened
            await line.decides(20, Verdict.NG, "cold shut")
        await running.start()
        plc = Plc(running.endpoint)
        await plc.connect()
        assert await plc.read(m.RESULT_READY) is False
        await plc.ask(20)
        assert await plc.result() == Result(20, "NG", 2, "cold shut")
        assert running.server.stats.deadline_quarantines == 0
    finally:
        await plc.disconnect()
        await running.halt()


async def test_broker_down_is_quarantine_at_the_deadline_and_stays(broker: EmbeddedNats) -> None:
    running = Running(broker, free_port())
    await running.start()
    plc = Plc(running.endpoint)
    await plc.connect()
    try:
        broker.stop()  # no journal, no verdicts: the cell is still answered, fail safe
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await plc.ask(30)
        result = await plc.result(timeout=DEADLINE_S + JOURNAL_TIMEOUT_S + 3)
        assert loop.time() - asked <= DEADLINE_S + JOURNAL_TIMEOUT_S + 0.5
        assert result.verdict == "QUARANTINE"
        assert "journal unreachable" in result.reason
        broker.start()
        async with _line(broker) as line:  # the journal never heard of the part
            assert (await line.decides(30, Verdict.OK)).verdict is Verdict.OK
        await plc.acknowledge()
        await plc.ask(30)
        assert (await plc.result()).verdict == "QUARANTINE"  # told once, told the same
    finally:
        await plc.disconnect()
        await running.halt()


async def test_logins_refuse_anonymous_and_wrong_passwords(broker: EmbeddedNats) -> None:
    running = Running(broker, free_port(), logins={"cell1": "s3cret-password"})
    await running.start()
    try:
        for user, password in [(None, None), ("cell1", "wrong"), ("admin", "admin")]:
            plc = Plc(running.endpoint)
            if user is not None:
                plc.client.set_user(user)
                plc.client.set_password(password or "")
            with pytest.raises(ua.UaError):
                await plc.connect()
            await plc.disconnect()
        plc = Plc(running.endpoint)
        plc.client.set_user("cell1")
        plc.client.set_password("s3cret-password")
        await plc.connect()
        with pytest.raises(ua.uaerrors.BadUserAccessDenied):
            await plc.write(m.VERDICT, "OK", ua.VariantType.String)
        await plc.disconnect()
    finally:
        await running.halt()


async def test_a_taken_port_fails_run(broker: EmbeddedNats) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            await Running(broker, taken.getsockname()[1]).start()
