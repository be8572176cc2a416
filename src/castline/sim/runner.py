"""Run the simulated hall against an MQTT broker, in real time or accelerated.

`run_hall` is the Python API (`castline up` calls it in-process; `castline sim` is its
command line). The simulated clock starts at `start` (now by default) and runs `speed`
times faster than the wall clock; message timestamps are simulated times. The camera
delay and the verdict deadline are wall-clock seconds, as the line runtime sees them.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import numpy as np

from castline.messaging.schema import (
    CellMessage,
    ImageMessage,
    InvalidMessage,
    ShotMessage,
    StateMessage,
    TruthMessage,
    VerdictMessage,
    decode,
)
from castline.messaging.topics import Kind, output_topic, topic
from castline.sim.camera import Camera
from castline.sim.cell import Action, CellCounters, RobotCell
from castline.sim.downstream import DownstreamConfig, Station, Test
from castline.sim.faults import Fault, malformed, strike
from castline.sim.fleet import Event, FleetConfig, Hall, ShotEvent, StateEvent
from castline.sim.link import MachineLink, MqttAccess

# Each machine is one paho client whose socket the run's asyncio loop drives (sim/link.py):
# no select() and no thread per machine. Three file descriptors each (its socket and paho's
# wake-up pair): the process's limit is raised to fit.
MAX_MACHINES = 2000
FDS_PER_MACHINE = 3

# Shot numbers of a fresh run start from the wall clock (10 per second since 2026), so a
# restarted simulator does not reuse the part keys of an earlier run at up to 10 shots
# per second and machine.
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def fresh_first_shot(now: datetime) -> int:
    return max(1, int((now - _EPOCH).total_seconds() * 10))


@dataclass(frozen=True, slots=True)
class HallConfig:
    plant: str = "plant1"
    fleet: FleetConfig = field(default_factory=FleetConfig)
    speed: float = 60.0  # simulated seconds per wall-clock second
    duration_s: float | None = None  # wall-clock seconds to run; None: until stopped
    start: datetime | None = None  # simulated clock at the start; None: now
    first_shot: int | None = None  # None: from the wall clock (`fresh_first_shot`)
    camera_delay_s: float = 0.3  # wall clock, shot record -> photograph
    verdict_deadline_s: float = 2.0  # wall clock, photograph -> verdict
    view: str = "front"
    data: Path | None = None  # real data folder; None or absent: synthetic photographs
    replay: bool = False  # stream the real KAMP shots instead of simulating
    opcua_port: int | None = None  # first OPC UA port (one server per machine); None: off
    faults: tuple[Fault, ...] = ()
    fault_rate: float = 0.05
    truth_log: Path | None = None  # JSON lines of every part's ground truth
    image_size: int = 256
    # Castings cool in a rack of this many places between the machine and the camera, which
    # takes them out in random order and reads each one's data-matrix code (no shot
    # number); 0: none. Shots carry a code whenever this is on (or `mark_parts`). The rack
    # delays each photo by about this many cycles: keep it within the line's join window.
    cooling_rack: int = 0
    mark_parts: bool = False
    # Views each die's parts are photographed from (the line's `views_per_part` must say
    # the same); a die not named here: `view` alone.
    views_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Cavities of each die (one casting per cavity and shot, each photographed and decided
    # on its own); a die not named here: one.
    cavities_of: dict[str, int] = field(default_factory=dict)
    # An X-ray station that tests some castings sent on, a simulated hour later (off: 0).
    downstream: DownstreamConfig = field(default_factory=DownstreamConfig)

    def views(self, die: str) -> tuple[str, ...]:
        return self.views_of.get(die, (self.view,))

    def cavities(self, die: str) -> int:
        return self.cavities_of.get(die, 1)

    @property
    def marked(self) -> bool:
        return self.mark_parts or self.cooling_rack > 0


VIEW_NAMES = ("front", "side", "top", "back")


def views_of(views_per_part: dict[str, int], first: str = "front") -> dict[str, tuple[str, ...]]:
    """The views the simulated cameras take of each die's parts, from the line's setting
    `views_per_part` (die -> number of views): `first`, then side, top, back, view5..."""
    names = (first, *(n for n in VIEW_NAMES if n != first))
    return {
        die: tuple(names[i] if i < len(names) else f"view{i + 1}" for i in range(count))
        for die, count in views_per_part.items()
        if count > 1
    }


def data_matrix(machine: str, shot_number: int, cavity: int = 1) -> str:
    """The code the simulated machine marks a casting with (cavity 1's names the shot)."""
    code = f"{machine}-{shot_number:012d}"
    return code if cavity == 1 else f"{code}-{cavity}"


@dataclass(slots=True)
class CellReport:
    """What the robot cells did, and how well the simulator kept its schedule."""

    cells: dict[str, CellCounters]
    shots: int = 0
    images: int = 0
    defective: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    invalid_verdicts: int = 0
    waiting: int = 0  # parts still waiting for their verdict when the run ended
    lag_p50_s: float = 0.0  # shot published after its scheduled time
    lag_p99_s: float = 0.0
    lag_max_s: float = 0.0
    simulated_s: float = 0.0
    downstream: int = 0  # results the downstream station posted
    downstream_ng: int = 0

    @property
    def total(self) -> CellCounters:
        total = CellCounters()
        for counters in self.cells.values():
            total.add(counters)
        return total

    def lines(self) -> list[str]:
        t = self.total
        lines = [
            f"shots {self.shots}, images {self.images}, defective {self.defective}, "
            f"simulated {self.simulated_s / 3600:.2f} h",
            f"robot cells: {t.parts} parts: next station {t.next_station}, reject chute "
            f"{t.reject_chute}, quarantine rack {t.quarantined} ({self.waiting} still waiting)",
            f"escapes {t.escapes}, false rejects {t.false_rejects}, missing verdicts "
            f"{t.missing_verdicts}, late verdicts {t.late_verdicts}, unknown verdicts "
            f"{t.unknown_verdicts}, invalid verdicts {self.invalid_verdicts}",
            f"schedule lag p50 {self.lag_p50_s * 1000:.0f} ms, p99 {self.lag_p99_s * 1000:.0f} ms,"
            f" max {self.lag_max_s * 1000:.0f} ms",
        ]
        if self.downstream:
            lines.append(f"downstream results {self.downstream}, NG {self.downstream_ng}")
        if self.faults:
            lines.append(
                "faults injected: " + ", ".join(f"{k} {v}" for k, v in self.faults.items())
            )
        return lines


Step = Callable[[], None]  # one scheduled publication
_Casting = tuple[ShotEvent, int, bytes, int]  # shot, cavity, photo, copies sent
_Prepared = tuple[datetime, Iterator[Event], list[str], Camera]  # start, events, machines


class _Run:
    """One run of the hall: the schedule of publications and the robot cells."""

    def __init__(
        self,
        config: HallConfig,
        broker_url: str,
        progress: Callable[[], None] | None,
        hall: _Prepared,
        access: MqttAccess | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.plant = config.plant
        self.loop = asyncio.get_running_loop()
        self.start, self.events, self.machines, self.camera = hall
        self.rng = np.random.default_rng([config.fleet.seed, 10_000])
        self.cells = {m: RobotCell(m) for m in self.machines}
        self.links = {
            m: MachineLink(broker_url, self.plant, m, self._verdict_callback(m), access)
            for m in self.machines
        }
        self.report = CellReport(cells={m: c.counters for m, c in self.cells.items()})
        self.station = None
        if config.downstream.on:  # a station logs in and posts like any device
            self.station = Station(config.downstream, self.plant, config.fleet.seed)
            name = config.downstream.station
            self.links[name] = MachineLink(broker_url, self.plant, name, lambda _: None, access)
        self.publish = _Publications(config, self.start, self.links, self.rng, self.report)
        self.camera_stopped: Counter[str] = Counter()  # shots left without photographs
        self.servers = None
        if config.opcua_port is not None:
            from castline.sim.opcua import MachineServers

            self.servers = MachineServers(self.plant, self.machines, config.opcua_port)
        self._heap: list[tuple[float, int, Step]] = []
        self.racks: dict[str, list[_Casting]] = {m: [] for m in self.machines}
        self._seq = 0
        self._lags: list[float] = []
        self.wall0 = 0.0
        self._closing = False

    # --- scheduling -------------------------------------------------------------------
    def due(self, at: datetime) -> float:
        return self.wall0 + (at - self.start).total_seconds() / self.config.speed

    def sim_now(self) -> datetime:
        return self.start + timedelta(seconds=(self.loop.time() - self.wall0) * self.config.speed)

    def later(self, when: float, action: Step) -> None:
        heapq.heappush(self._heap, (when, self._seq, action))
        self._seq += 1

    async def run(self, stop: asyncio.Event) -> CellReport:
        try:
            for link in self.links.values():
                link.start()
                await asyncio.sleep(0.01)  # a large hall connects in a row, not in one storm
            if self.servers is not None:
                await self.servers.start()
            if self.config.truth_log is not None:
                self.publish.truth_log = self.config.truth_log.open("a", encoding="utf-8")
            await self._loop(stop)
        finally:
            await self._close()
        return self._finish()

    async def _loop(self, stop: asyncio.Event) -> None:
        upcoming: Event | None = next(self.events, None)
        await self._wait_connected(stop)
        self.wall0 = self.loop.time()
        end = None if self.config.duration_s is None else self.wall0 + self.config.duration_s
        while not stop.is_set():
            now = self.loop.time()
            if end is not None and now >= end:
                return
            while upcoming is not None and self.due(upcoming.at) <= now + 0.02:
                self._plan(upcoming)
                upcoming = next(self.events, None)
            while self._heap and self._heap[0][0] <= now:
                _, _, action = heapq.heappop(self._heap)
                action()
            for machine, cell in self.cells.items():
                for done in cell.expire(self.loop.time()):
                    self._publish_action(machine, done)
            if upcoming is None and not self._heap and not any(self._waiting()):
                return  # a replay has streamed every row
            wake = min(
                [now + 0.05]
                + ([self._heap[0][0]] if self._heap else [])
                + ([self.due(upcoming.at)] if upcoming is not None else [])
            )
            await asyncio.sleep(max(0.0, wake - self.loop.time()))

    async def _wait_connected(self, stop: asyncio.Event) -> None:
        """Wait for every machine's connection (a large hall takes a while to connect)."""
        limit = 10.0 + 0.1 * len(self.links)
        deadline = self.loop.time() + limit
        while not stop.is_set():
            connected = sum(link.connected.is_set() for link in self.links.values())
            if connected == len(self.links):
                return
            if self.loop.time() > deadline:
                host = next(iter(self.links.values()))
                refused = {link.refused for link in self.links.values() if link.refused}
                raise ConnectionError(
                    f"{connected} of {len(self.links)} machines connected to the MQTT broker "
                    f"at {host.host}:{host.port} within {limit:.0f} s"
                    + (
                        f": refused ({', '.join(sorted(refused))}); check their logins"
                        if refused
                        else ": start a broker (e.g. mosquitto) or pass --broker mqtt://HOST:PORT"
                    )
                )
            await asyncio.sleep(0.05)

    def _waiting(self) -> Iterator[bool]:
        return (cell.waiting() > 0 for cell in self.cells.values())

    # --- what each event publishes ------------------------------------------------------
    def _plan(self, event: Event) -> None:
        when = self.due(event.at)
        if isinstance(event, StateEvent):
            self.later(when, lambda: self._publish_state(event))
            return
        hit = strike(self.config.faults, self.config.fault_rate, self.rng)
        photo_at = when + self.config.camera_delay_s
        deadline = photo_at + self.config.verdict_deadline_s
        if Fault.LATE in hit:
            photo_at = deadline + 1.0
        if Fault.CAMERA_STOP in hit:
            self.camera_stopped[event.machine] += int(self.rng.integers(3, 10))
        copies = 2 if Fault.DUPLICATE in hit else 1
        shot_at = photo_at + 0.05 if Fault.OUT_OF_ORDER in hit else when

        # The cell expects the part from now on, even if its shot record comes late (after
        # a cooling rack: from when it leaves the rack).
        cavities = self.config.cavities(event.die)
        # A warm-up (trial) casting is scrap by rule: the chute is right for it.
        scrap = event.truth.defective or event.trial
        if not self.config.cooling_rack:
            for cavity in range(1, cavities + 1):
                cell = self.cells[event.machine]
                cell.expect(event.shot_number, scrap, deadline, cavity)

        def publish_shot() -> None:  # its faults count from here: a run may end before
            self._lags.append(self.loop.time() - shot_at)
            self.report.faults.update(f.value for f in hit)
            self.publish.shot(event, Fault.MALFORMED in hit, copies)
            if self.progress is not None:
                self.progress()
            if Fault.DISCONNECT in hit:
                self.links[event.machine].drop()
            if self.servers is not None:
                self.servers.cycle(event)
                if Fault.OPCUA_RESTART in hit:
                    self.servers.restart(event.machine)

        self.later(shot_at, publish_shot)
        if self.camera_stopped[event.machine] > 0:
            self.camera_stopped[event.machine] -= 1
        else:
            photos = [self.camera.photo(event.truth, self.rng) for _ in range(cavities)]
            castings = [(event, c, photo, copies) for c, photo in enumerate(photos, 1)]
            self.later(photo_at, lambda: self._photograph(castings))

    def _photograph(self, castings: list[_Casting]) -> None:
        """A shot's castings (one per cavity) reach the camera, or its cooling rack first:
        once the rack is full, a casting taken at random leaves it and is photographed
        (found by its code)."""
        for casting in castings:
            if not self.config.cooling_rack:
                self.publish.photo(casting, self.sim_now())
                continue
            rack = self.racks[casting[0].machine]
            rack.append(casting)
            if len(rack) <= self.config.cooling_rack:
                continue
            leaving = rack.pop(int(self.rng.integers(len(rack))))
            part, cavity = leaving[0], leaving[1]
            deadline = self.loop.time() + self.config.verdict_deadline_s
            cell = self.cells[part.machine]
            cell.expect(part.shot_number, part.truth.defective or part.trial, deadline, cavity)
            self.publish.photo(leaving, self.sim_now(), by_code=True)

    def _publish_state(self, event: StateEvent) -> None:
        self.publish.state(event)
        if self.servers is not None:
            self.servers.state(event.machine, event.state, event.die)

    # --- the robot cells ------------------------------------------------------------
    def _verdict_callback(self, machine: str) -> Callable[[bytes], None]:
        def hand_over(payload: bytes) -> None:
            self.loop.call_soon_threadsafe(self._on_verdict, machine, payload)

        return hand_over

    def _on_verdict(self, machine: str, payload: bytes) -> None:
        if self._closing:
            return  # the cells have stopped: what they would do now could not be published
        try:
            _, message = decode(output_topic(self.plant, machine), payload)
        except InvalidMessage:
            self.report.invalid_verdicts += 1  # an unreadable verdict is no verdict
            return
        assert isinstance(message, VerdictMessage)
        done = self.cells[machine].on_verdict(message.shot_number, message.verdict, message.cavity)
        if done is not None:
            self._publish_action(machine, done)

    def _publish_action(self, machine: str, done: Action) -> None:
        now = self.sim_now()
        self.publish.action(machine, done, now)
        if self.station is not None:
            marked = self.config.marked
            code = data_matrix(machine, done.shot_number, done.cavity) if marked else None
            if (test := self.station.test(machine, done, now, code)) is not None:
                self.later(self.due(test.at), lambda: self.publish.downstream(test))

    # --- the end --------------------------------------------------------------------
    async def _close(self) -> None:
        self._closing = True
        if self.servers is not None:
            await self.servers.stop()
        await asyncio.gather(*(asyncio.to_thread(link.close) for link in self.links.values()))
        if self.publish.truth_log is not None:
            self.publish.truth_log.close()

    def _finish(self) -> CellReport:
        self.report.waiting = sum(cell.waiting() for cell in self.cells.values())
        if self._lags:
            lags = np.array(self._lags)
            self.report.lag_p50_s = float(np.percentile(lags, 50))
            self.report.lag_p99_s = float(np.percentile(lags, 99))
            self.report.lag_max_s = float(lags.max())
        return self.report


class _Publications:
    """What the simulated machines publish: each message built from its event and sent
    on that machine's link; kept apart from the schedule that decides when."""

    def __init__(
        self,
        config: HallConfig,
        start: datetime,
        links: dict[str, MachineLink],
        rng: np.random.Generator,
        report: CellReport,
    ) -> None:
        self.plant = config.plant
        self.config = config
        self.start = start
        self.links = links
        self.rng = rng  # the run's own: faults and photographs draw from it in order
        self.report = report
        self.truth_log: IO[str] | None = None

    def state(self, event: StateEvent) -> None:
        message = StateMessage(
            plant=self.plant,
            machine=event.machine,
            state=event.state,
            ts=event.at,
            die=event.die,
            reason=event.reason,
        )
        self.send(event.machine, Kind.STATE, message.to_json(), retain=True)

    def shot(self, event: ShotEvent, broken: bool, copies: int) -> None:
        fields: dict[str, object] = {
            "plant": self.plant,
            "machine": event.machine,
            "shot_number": event.shot_number,
            "die": event.die,
            "ts": event.at,
            "params": event.params,
            "trial": event.trial,
        }
        cavities = self.config.cavities(event.die)
        if cavities > 1:
            fields["cavities"] = cavities
        if self.config.marked:
            codes = [
                data_matrix(event.machine, event.shot_number, c) for c in range(1, cavities + 1)
            ]
            fields["data_matrix"] = codes[0]
            if cavities > 1:
                fields["data_matrices"] = codes
        if event.recorded_at is not None:
            fields["recorded_at"] = event.recorded_at  # an extra field: receivers keep it
        if event.curve is not None:
            fields |= ShotMessage.curve_fields(event.curve)
        message = ShotMessage.model_validate(fields)
        payload = message.to_json()
        if broken:
            payload = malformed(payload, self.rng)
        for _ in range(copies):
            self.send(event.machine, Kind.SHOT, payload)
        for cavity in range(1, cavities + 1):  # the shot's process made every casting
            truth = TruthMessage(
                plant=self.plant,
                machine=event.machine,
                shot_number=event.shot_number,
                cavity=cavity,
                defective=event.truth.defective,
                defect_type=event.truth.defect_type,
                cause=event.truth.cause,
            ).to_json()
            self.send(event.machine, Kind.TRUTH, truth)
            if self.truth_log is not None:
                self.truth_log.write(truth.decode() + "\n")
        self.report.shots += 1
        self.report.defective += event.truth.defective
        self.report.simulated_s = (event.at - self.start).total_seconds()

    def photo(self, casting: _Casting, ts: datetime, by_code: bool = False) -> None:
        """The casting's photo from each view of its die; `by_code`: the camera names the
        part only by the code it read (a cooling rack reordered the castings)."""
        event, cavity, photo, copies = casting
        marked = self.config.marked
        code = data_matrix(event.machine, event.shot_number, cavity) if marked else None
        shot_number = None if by_code else event.shot_number
        for view in self.config.views(event.die):
            message = ImageMessage.of(
                self.plant, event.machine, shot_number, view, ts, photo, cavity=cavity,
                data_matrix=code,
            )  # fmt: skip
            for _ in range(copies):
                self.send(event.machine, Kind.IMAGE, message.to_json(), view=view)
        self.report.images += 1

    def send(
        self,
        machine: str,
        kind: Kind,
        payload: bytes,
        retain: bool = False,
        view: str | None = None,
    ) -> None:
        self.links[machine].publish(topic(self.plant, machine, kind, view), payload, retain)

    def downstream(self, test: Test) -> None:
        self.send(self.config.downstream.station, Kind.DOWNSTREAM, test.payload)
        self.report.downstream += 1
        self.report.downstream_ng += test.ng

    def action(self, machine: str, done: Action, ts: datetime) -> None:
        message = CellMessage(
            plant=self.plant,
            machine=machine,
            shot_number=done.shot_number,
            cavity=done.cavity,
            action=done.action,  # type: ignore[arg-type]
            verdict=done.verdict,
            ts=ts,
        )
        self.send(machine, Kind.CELL, message.to_json())


def _prepare(config: HallConfig) -> _Prepared:
    """The event source and the camera; reading the data folder takes a second or two."""
    start = config.start or datetime.now(UTC).replace(microsecond=0)
    first = config.first_shot
    if first is None:
        first = fresh_first_shot(datetime.now(UTC))
    if config.replay:
        from castline.sim.replay import Replay

        replay = Replay.from_data(config.data, start, first)
        events, machines = replay.events(), replay.machines
    else:
        fleet = replace(config.fleet, first_shot=first)
        events, machines = Hall(fleet, start).events(), fleet.machine_ids()
    if len(machines) > MAX_MACHINES:
        raise ValueError(
            f"one simulator process runs at most {MAX_MACHINES} machines (one MQTT "
            "connection each); run several, each with its own --plant"
        )
    _room_for(len(machines))
    return start, events, machines, Camera(config.data, config.image_size)


def _room_for(machines: int) -> None:
    """Raise the open-files limit to what the machines' connections need, if it is lower
    (up to the hard limit; a hall that still does not fit is refused by the OS at connect)."""
    import resource

    need = machines * FDS_PER_MACHINE + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        top = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


async def run_hall(
    config: HallConfig,
    broker_url: str,
    stop: asyncio.Event,
    progress: Callable[[], None] | None = None,
    access: MqttAccess | None = None,
) -> CellReport:
    """Simulate (or replay) the hall until `stop` is set or the duration has passed;
    `access` says how each machine logs in (none: anonymous, or the URL's user)."""
    hall = await asyncio.to_thread(_prepare, config)  # keeps the caller's loop responsive
    return await _Run(config, broker_url, progress, hall, access).run(stop)
