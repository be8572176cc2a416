"""castline's OPC UA server for robot-cell PLCs: a part's verdict by handshake.

Many cell PLCs speak only OPC UA. This server offers one object per machine's robot cell
(node names in `opcua_cell_model`, the handshake in docs/protocol.md, "Robot cells over OPC
UA"): the PLC writes the shot number and raises PartPresent, castline answers with the
verdict and ResultReady, the PLC acknowledges.

Where the verdict comes from: the verdict journal (`journal.py`) is the truth, so a part is
told the verdict it keeps everywhere, and a cell that asks late, or again after a restart of
this server, gets it. The line's verdict messages on NATS only wake a waiting request, which
then reads the journal: a verdict message that is not journaled is never told.

Fail safe: without a verdict within the deadline from PartPresent, the server journals
QUARANTINE as the part's verdict itself (first verdict wins, as for the line) and tells it;
the line's later verdict then finds the part decided. If the journal cannot be reached the
cell is still told QUARANTINE.

asyncua builds its address space in seconds of CPU, so the server runs in a thread with its
own event loop and NATS connection, and never holds up the line's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import nats
from asyncua import Node, Server, ua
from asyncua.common.callback import CallbackService, CallbackType, ServerItemCallback
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.errors import BucketNotFoundError

from castline.domain.shot import PartKey
from castline.domain.verdict import PartVerdict, Verdict
from castline.messaging import opcua_cell_model as m
from castline.messaging import schema, topics
from castline.messaging.journal import BUCKET, VerdictJournal
from castline.messaging.limits import MAX_INT, clean_text
from castline.messaging.topics import Kind

log = logging.getLogger(__name__)
logging.getLogger("asyncua").setLevel(logging.WARNING)

JOURNAL_TIMEOUT_S = 1.0  # one journal call; past it the journal counts as unreachable
UNJOURNALED_KEPT = 10_000  # parts told QUARANTINE while the journal was away, remembered
_STRING, _BOOL = ua.VariantType.String, ua.VariantType.Boolean
_UINT64, _INT16, _DOUBLE = ua.VariantType.UInt64, ua.VariantType.Int16, ua.VariantType.Double


@dataclass
class CellStats:
    requests: int = 0  # accepted PartPresent edges
    told: int = 0  # results shown (ResultReady raised)
    from_journal: int = 0  # ... of which the journal had when asked or woken
    deadline_quarantines: int = 0  # ... of which QUARANTINE at the deadline, told by us
    journal_failures: int = 0  # journal calls that failed or timed out
    refused: int = 0  # PLC writes answered with Error
    unreadable_verdicts: int = 0  # messages on the verdict subject that did not decode


@dataclass
class _Cell:
    """One robot cell's handshake: its nodes and what the PLC last wrote."""

    machine: str
    nodes: dict[str, Node]
    part_present: bool = False
    shot: int | None = None  # the valid ShotNumber last written
    request: asyncio.Task[None] | None = None
    result_ready: bool = False
    waiting: dict[int, asyncio.Event] = field(default_factory=dict)


class _PlcUsers(UserManager):
    """Clients are never admins (so access levels hold); with `logins`, only those users."""

    def __init__(self, logins: Mapping[str, str] | None) -> None:
        self.logins = dict(logins) if logins is not None else None

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if self.logins is None:
            return User(role=UserRole.User) if username is None else None
        expected = self.logins.get(username or "")
        if expected is None or password is None:
            return None
        given = password.encode() if isinstance(password, str) else bytes(password)
        if not hmac.compare_digest(given, expected.encode()):
            return None
        return User(role=UserRole.User, name=username)


class CellServer:
    """The OPC UA verdict server of a plant's robot cells; `run` until `stop` is set."""

    def __init__(
        self,
        nats_url: str,
        plant: str,
        machines: list[str],
        endpoint: str,
        connect_options: dict[str, Any] | None = None,
        *,
        deadline_s: float = 2.0,
        logins: Mapping[str, str] | None = None,
    ) -> None:
        if not machines:
            raise ValueError("a cell server needs at least one machine")
        if not 0 < deadline_s <= 60:
            raise ValueError(f"deadline {deadline_s} s must be over 0 and at most 60")
        self.nats_url = nats_url
        self.plant = topics.check_id(plant, "plant")
        self.machines = [topics.check_id(machine, "machine") for machine in machines]
        self.endpoint = endpoint
        self.connect_options = connect_options or {}  # credentials, TLS
        self.deadline_s = deadline_s
        self.logins = logins
        self.stats = CellStats()
        self._handshakes = _Handshakes(self.plant, deadline_s, self.stats)

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Serve in a thread of its own until `stop`; `ready` is set once PLCs can ask.
        A failure to start (port taken, NATS unreachable) is raised here."""
        caller = asyncio.get_running_loop()
        started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = Future()
        done: Future[None] = Future()

        def on_ready() -> None:
            if ready is not None:
                caller.call_soon_threadsafe(ready.set)

        def main() -> None:
            try:
                asyncio.run(self._main(started, on_ready))
                done.set_result(None)
            except BaseException as exc:  # handed to the caller's loop
                done.set_exception(exc)

        threading.Thread(target=main, name=f"castline-opcua-cells {self.endpoint}").start()
        finished: asyncio.Future[Any] = asyncio.wrap_future(done)
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({finished, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # stopped, failed or cancelled: the thread ends too
            stopped.cancel()
            started.add_done_callback(_stop_inner)
        await finished

    async def _main(
        self, started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]], on_ready: Any
    ) -> None:
        stop = asyncio.Event()
        started.set_result((asyncio.get_running_loop(), stop))
        nc = await nats.connect(
            servers=[self.nats_url],
            name=f"castline-opcua-cells {self.plant}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            **self.connect_options,
        )
        server: Server | None = None
        try:
            self._handshakes.journal = await _journal(nc)
            prefix = topics.to_subject(topics.OUTPUT_PREFIX)
            subject = f"{prefix}.{self.plant}.*.{Kind.VERDICT.value}"
            await nc.subscribe(subject, cb=self._handshakes.on_verdict)
            server = await self._start_server()
            log.info("OPC UA robot cells of %s at %s", self.plant, self.endpoint)
            on_ready()
            await stop.wait()
        finally:
            self._handshakes.cancel()
            if server is not None:
                await server.stop()
            await nc.close()

    # --- the address space --------------------------------------------------------------

    async def _start_server(self) -> Server:
        server = Server(user_manager=_PlcUsers(self.logins))
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"castline robot-cell verdicts {self.plant}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.allow_remote_admin(False)
        if self.logins is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        idx = await server.register_namespace(m.NAMESPACE)
        folder = await server.nodes.objects.add_folder(
            ua.NodeId(ua.String(m.FOLDER), ua.Int16(idx)), ua.QualifiedName(m.FOLDER, idx)
        )
        for machine in self.machines:
            cell = await _add_cell(folder, idx, machine, self.plant, self.deadline_s)
            self._handshakes.add(cell)
        server.subscribe_server_callback(CallbackType.PostWrite, self._handshakes.on_write)
        await server.start()
        return server


async def _add_cell(folder: Node, idx: int, machine: str, plant: str, deadline_s: float) -> _Cell:
    """One robot cell's object and its nodes; only the PLC's own nodes are writable."""

    def nid(name: str) -> ua.NodeId:
        return ua.NodeId(ua.String(m.node_id(machine, name)), ua.Int16(idx))

    obj = await folder.add_object(
        ua.NodeId(ua.String(f"{m.FOLDER}.{machine}"), ua.Int16(idx)),
        ua.QualifiedName(machine, idx),
    )
    initial: list[tuple[str, Any, ua.VariantType]] = [
        (m.MACHINE_ID, machine, _STRING),
        (m.PLANT, plant, _STRING),
        (m.DEADLINE_S, deadline_s, _DOUBLE),
        (m.PART_PRESENT, False, _BOOL),
        (m.SHOT_NUMBER, 0, _UINT64),
        (m.RESULT_ACKNOWLEDGED, False, _BOOL),
        (m.BUSY, False, _BOOL),
        (m.RESULT_READY, False, _BOOL),
        (m.RESULT_SHOT_NUMBER, 0, _UINT64),
        (m.VERDICT, "", _STRING),
        (m.VERDICT_CODE, 0, _INT16),
        (m.REASON, "", _STRING),
        (m.ERROR, False, _BOOL),
        (m.ERROR_TEXT, "", _STRING),
    ]
    cell = _Cell(machine, {})
    for name, value, kind in initial:
        node = await obj.add_variable(nid(name), ua.QualifiedName(name, idx), value, kind)
        if name in m.PLC_WRITES:
            await node.set_writable(True)  # every other node stays read-only for clients
        cell.nodes[name] = node
    return cell


class _Handshakes:
    """The robot cells' handshakes: what each PLC writes, and the verdict each part is
    told. Kept apart from the server's lifecycle: this is the part the protocol defines."""

    def __init__(self, plant: str, deadline_s: float, stats: CellStats) -> None:
        self.plant = plant
        self.deadline_s = deadline_s
        self.stats = stats
        self.cells: dict[str, _Cell] = {}
        self.by_node: dict[ua.NodeId, tuple[_Cell, str]] = {}
        self.journal: VerdictJournal | None = None
        # Fail-safe verdicts the journal did not take (it was away): a part asking again
        # hears the same, not the line's later verdict.
        self._unjournaled: OrderedDict[PartKey, PartVerdict] = OrderedDict()

    def add(self, cell: _Cell) -> None:
        """Answer this cell's PLC from now on."""
        self.cells[cell.machine] = cell
        for name in m.PLC_WRITES:
            self.by_node[cell.nodes[name].nodeid] = (cell, name)

    def cancel(self) -> None:
        """The server stops: no request outlives it."""
        for cell in self.cells.values():
            if cell.request is not None:
                cell.request.cancel()

    # --- what the PLC writes --------------------------------------------------------------

    async def on_write(self, event: ServerItemCallback, _service: CallbackService) -> None:
        """Applied before the PLC's write is answered, so Busy or Error already say what
        became of it when the PLC reads them."""
        if not event.is_external:
            return  # our own writes
        written: list[tuple[_Cell, str, Any]] = []
        for item, status in zip(
            event.request_params.NodesToWrite, event.response_params, strict=False
        ):
            target = self.by_node.get(item.NodeId)
            if target is None or not status.is_good() or item.AttributeId != ua.AttributeIds.Value:
                continue
            variant = item.Value.Value
            written.append((*target, None if variant is None else variant.Value))
        written.sort(key=lambda w: m.PLC_WRITES.index(w[1]))  # shot number before the edge
        for cell, name, value in written:
            try:
                await self._apply(cell, name, value)
            except Exception:  # a PLC's write must never stop the server
                log.exception("OPC UA cell %s: handling a write of %s failed", cell.machine, name)

    async def _apply(self, cell: _Cell, name: str, value: Any) -> None:
        if value is None:  # a write with a bad status empties the node
            await self._refuse(cell, f"{name} was written without a value")
        elif name == m.SHOT_NUMBER:
            cell.shot = int(value) if 0 <= int(value) <= MAX_INT else None
            if cell.shot is None:
                await self._refuse(cell, f"ShotNumber {value} is over {MAX_INT}")
        elif name == m.RESULT_ACKNOWLEDGED:
            if value and cell.result_ready:
                cell.result_ready = False
                await self._write(cell, m.RESULT_READY, False, _BOOL)
        elif value:
            if not cell.part_present:  # the rising edge asks; True again changes nothing
                cell.part_present = True
                await self._ask(cell)
        else:
            cell.part_present = False
            if cell.request is not None and not cell.request.done():
                cell.request.cancel()  # the part left before its verdict came
                cell.request = None
                await self._write(cell, m.BUSY, False, _BOOL)

    async def _ask(self, cell: _Cell) -> None:
        """PartPresent rose: drop what the cell still shows, then find the part's verdict."""
        if cell.request is not None:
            cell.request.cancel()
        cell.result_ready = False
        await self._write(cell, m.RESULT_READY, False, _BOOL)
        await self._write(cell, m.BUSY, False, _BOOL)
        if cell.shot is None:
            await self._refuse(cell, "PartPresent without a valid ShotNumber")
            return
        await self._write(cell, m.ERROR, False, _BOOL)
        await self._write(cell, m.ERROR_TEXT, "", _STRING)
        await self._write(cell, m.BUSY, True, _BOOL)
        self.stats.requests += 1
        cell.request = asyncio.create_task(self._answer(cell, cell.shot))

    async def _refuse(self, cell: _Cell, why: str) -> None:
        self.stats.refused += 1
        log.warning("OPC UA cell %s/%s: %s", self.plant, cell.machine, why)
        await self._write(cell, m.ERROR_TEXT, clean_text(why), _STRING)
        await self._write(cell, m.ERROR, True, _BOOL)

    # --- finding the verdict --------------------------------------------------------------

    async def _answer(self, cell: _Cell, shot: int) -> None:
        wake = cell.waiting.setdefault(shot, asyncio.Event())  # before the journal is read
        try:
            told = await self._verdict(PartKey(self.plant, cell.machine, shot), wake, cell)
        finally:
            if cell.waiting.get(shot) is wake:
                del cell.waiting[shot]
        # A cancel can be lost when it meets a finished wait (Python 3.11's wait_for): a
        # request the part has left, or a newer one replaced, shows nothing.
        if cell.request is asyncio.current_task():
            await self._show(cell, shot, told)

    async def _verdict(self, key: PartKey, wake: asyncio.Event, cell: _Cell) -> PartVerdict:
        """The part's journaled verdict, waiting for it until the deadline; then QUARANTINE."""
        if key in self._unjournaled:
            return self._unjournaled[key]
        loop = asyncio.get_running_loop()
        end = loop.time() + self.deadline_s
        while True:
            told = await self._journaled(key, min(JOURNAL_TIMEOUT_S, end - loop.time()))
            if told is not None:
                self.stats.from_journal += 1
                return told
            left = end - loop.time()
            if cell.request is not asyncio.current_task():  # the part left (a lost cancel)
                raise asyncio.CancelledError
            if left <= 0:
                return await self._quarantine(key)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), left)
            wake.clear()

    async def _journaled(self, key: PartKey, timeout: float) -> PartVerdict | None:
        if self.journal is None or timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(self.journal.get(key), timeout)
        except (TimeoutError, NatsError, ValueError, KeyError) as exc:
            self.stats.journal_failures += 1
            log.warning("verdict journal not read for %s: %r", key, exc)
            return None

    async def _quarantine(self, key: PartKey) -> PartVerdict:
        """The fail-safe verdict, journaled as the part's unless the line's came first."""
        reason = f"no verdict within {self.deadline_s:g} s at the robot cell"
        verdict = PartVerdict(Verdict.QUARANTINE, datetime.now(UTC), reason)
        try:
            assert self.journal is not None
            told, ours = await asyncio.wait_for(self.journal.first(key, verdict), JOURNAL_TIMEOUT_S)
        except (AssertionError, TimeoutError, NatsError) as exc:
            self.stats.journal_failures += 1
            log.error("verdict journal unreachable at the deadline of %s (%r)", key, exc)
            told = replace(verdict, reason=f"{reason} (verdict journal unreachable)")
            ours = True
            self._unjournaled[key] = told  # what this part was told, should it ask again
            if len(self._unjournaled) > UNJOURNALED_KEPT:
                self._unjournaled.popitem(last=False)
        if ours:
            self.stats.deadline_quarantines += 1
        return told

    async def on_verdict(self, msg: Msg) -> None:
        """The line published a verdict: wake the request waiting for that part, if any."""
        try:
            route, message = schema.decode(msg.subject, msg.data)
        except schema.InvalidMessage:
            self.stats.unreadable_verdicts += 1
            return
        if route.kind is not Kind.VERDICT or not isinstance(message, schema.VerdictMessage):
            return
        cell = self.cells.get(route.machine)
        wake = cell.waiting.get(message.shot_number) if cell else None
        if wake is not None:
            wake.set()

    # --- what castline writes --------------------------------------------------------------

    async def _show(self, cell: _Cell, shot: int, told: PartVerdict) -> None:
        """The result nodes first, ResultReady last: a PLC that sees it reads a whole result."""
        await self._write(cell, m.RESULT_SHOT_NUMBER, shot, _UINT64)
        await self._write(cell, m.VERDICT, told.verdict.value, _STRING)
        await self._write(cell, m.VERDICT_CODE, m.VERDICT_CODES[told.verdict], _INT16)
        await self._write(cell, m.REASON, clean_text(told.reason), _STRING)
        await self._write(cell, m.BUSY, False, _BOOL)
        cell.result_ready = True
        await self._write(cell, m.RESULT_READY, True, _BOOL)
        self.stats.told += 1

    @staticmethod
    async def _write(cell: _Cell, name: str, value: Any, kind: ua.VariantType) -> None:
        await cell.nodes[name].write_value(ua.Variant(value, kind))


def _stop_inner(started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
    loop, stop = started.result()
    with contextlib.suppress(RuntimeError):  # its loop has ended already
        loop.call_soon_threadsafe(stop.set)


async def _journal(nc: NATS) -> VerdictJournal:
    """The line's verdict journal; created as the line creates it if this server is first."""
    js = nc.jetstream()
    try:
        return VerdictJournal(await js.key_value(BUCKET))
    except BucketNotFoundError:
        return await VerdictJournal.open(js)
