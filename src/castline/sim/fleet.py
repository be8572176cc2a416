"""The die-casting hall: machines with dies, states, episodes and shots, in simulated time.

Pure and deterministic: a seed and a start time give the same events every time, however
the caller steps through them. Each machine is a generator of events in its own time;
the hall merges them in time order. Nothing here sleeps, publishes or reads a file.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from castline.domain.curve import DEFAULT_RATE_HZ, ShotCurve
from castline.domain.plant import Die, MaintenanceRecord
from castline.domain.states import MachineState
from castline.sim.calibration import PROFILES
from castline.sim.curves import CurveFault, CurveModel, CurveProfile, acting
from castline.sim.process import ProcessModel
from castline.sim.rules import DieCondition, Truth, judge


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """The hall's behaviour. Times are simulated; rates are means of exponential gaps."""

    machines: int = 9
    seed: int = 1
    first_shot: int = 1  # shot number of each machine's first shot
    cycle_time_s: tuple[float, float] = (30.0, 90.0)  # nominal cycle, drawn per machine
    die_life_shots: int = 100_000
    mtbf_h: float = 8.0  # breakdowns
    mttr_min: float = 20.0
    idle_every_h: float = 4.0  # no metal, no operator
    idle_min: tuple[float, float] = (3.0, 15.0)
    planned_stop_every_h: float = 8.0  # breaks, planned maintenance
    planned_stop_min: tuple[float, float] = (20.0, 40.0)
    die_change_every_h: float = 16.0  # setup: die change; 0: none
    die_change_min: tuple[float, float] = (30.0, 60.0)
    no_order_every_h: float = 24.0  # idle with "no order" said by the MES; 0: none
    no_order_min: tuple[float, float] = (20.0, 60.0)
    cold_after_min: float = 10.0  # a longer stop cools the die: warm-up shots follow
    warmup_shots: tuple[int, int] = (2, 6)  # try shots after a cold start
    die_cooling_c: float = 130.0  # how far a die cools in a long stop
    melt_drift_every_h: float = 6.0
    melt_drift_min: tuple[float, float] = (20.0, 60.0)
    vacuum_loss_every_h: float = 10.0
    vacuum_loss_min: tuple[float, float] = (10.0, 30.0)
    die_damage_every_h: float = 24.0
    maintenance_after_h: float = 2.0  # from die damage until the die is repaired
    maintenance_min: tuple[float, float] = (30.0, 60.0)
    base_defect_rate: float = 0.01
    curve_rate_hz: int = DEFAULT_RATE_HZ  # shot curves sampled at this rate; 0: none
    process_fault_every_h: float = 12.0  # curve faults (sim/curves.py); 0: none
    process_fault_min: tuple[float, float] = (10.0, 40.0)

    def machine_ids(self) -> list[str]:
        return [machine_id(i) for i in range(self.machines)]


def machine_id(index: int) -> str:
    return f"dcm-{index + 1:02d}"


@dataclass(frozen=True, slots=True)
class ShotEvent:
    machine: str
    at: datetime
    shot_number: int
    die: str
    die_counter: int
    params: dict[str, float | None]  # as reported, drop-outs included
    trial: bool
    truth: Truth
    recorded_at: datetime | None = None  # replay: when the real shot happened
    curve: ShotCurve | None = None
    process_faults: frozenset[CurveFault] = frozenset()  # acting on this shot (evaluation)


@dataclass(frozen=True, slots=True)
class StateEvent:
    machine: str
    at: datetime
    state: MachineState
    die: str
    reason: str = ""


Event = ShotEvent | StateEvent


@dataclass(slots=True)
class _Episode:
    """A temporary disturbance: the offset it adds follows a half sine over its span."""

    start: datetime
    end: datetime
    amplitude: float

    def offset(self, at: datetime) -> float:
        if not self.start <= at < self.end:
            return 0.0
        phase = (at - self.start) / (self.end - self.start)
        return self.amplitude * math.sin(math.pi * phase)


@dataclass(slots=True)
class _Schedule:
    """When each kind of event is next due for one machine."""

    breakdown: datetime
    idle: datetime
    planned_stop: datetime
    melt_drift: datetime
    vacuum_loss: datetime
    die_damage: datetime
    maintenance: datetime | None = None
    die_change: datetime | None = None  # None: this kind of stop is off
    no_order: datetime | None = None
    episodes: dict[str, _Episode] = field(default_factory=dict)


class MachineModel:
    """One die-casting machine with its die, as a stream of events."""

    def __init__(self, index: int, config: FleetConfig, start: datetime) -> None:
        self.id = machine_id(index)
        self.config = config
        self.start = start
        self.rng = np.random.default_rng([config.seed, index])
        self.profile = PROFILES[index % len(PROFILES)]
        self.cycle_time_s = float(self.rng.uniform(*config.cycle_time_s))
        life = config.die_life_shots
        self.die = Die(
            code=f"{self.profile.die}-{index // len(PROFILES) + 1}",
            part_name="impeller",
            rated_life_shots=life,
            shot_counter=int(self.rng.uniform(0, 1.0) * life),
        )
        self.process = ProcessModel(self.profile, self.rng, self.cycle_time_s)
        self.damaged = False
        self.curves = self._curves(index) if config.curve_rate_hz else None
        # Die changes and order gaps draw from a stream of their own, so the hall's
        # other draws stay those of a hall without them.
        self.planning = np.random.default_rng([config.seed, index, 2])

    def _curves(self, index: int) -> CurveModel:
        # A stream of its own: the hall's other events are the same with or without curves.
        rng = np.random.default_rng([self.config.seed, index, 1])
        return CurveModel(
            CurveProfile.draw(rng, self.process),
            rng,
            self.config.curve_rate_hz,
            self.config.process_fault_every_h,
            self.config.process_fault_min,
        )

    def _after(self, at: datetime, mean_h: float) -> datetime:
        return at + timedelta(hours=float(self.rng.exponential(mean_h)))

    def _planned_after(self, at: datetime, mean_h: float) -> datetime | None:
        if mean_h <= 0:
            return None
        return at + timedelta(hours=float(self.planning.exponential(mean_h)))

    def _planned_minutes(self, span: tuple[float, float]) -> timedelta:
        return timedelta(minutes=float(self.planning.uniform(*span)))

    def _minutes(self, span: tuple[float, float]) -> timedelta:
        return timedelta(minutes=float(self.rng.uniform(*span)))

    def events(self) -> Iterator[Event]:
        c = self.config
        t = self.start
        plan = _Schedule(
            breakdown=self._after(t, c.mtbf_h),
            idle=self._after(t, c.idle_every_h),
            planned_stop=self._after(t, c.planned_stop_every_h),
            melt_drift=self._after(t, c.melt_drift_every_h),
            vacuum_loss=self._after(t, c.vacuum_loss_every_h),
            die_damage=self._after(t, c.die_damage_every_h),
            die_change=self._planned_after(t, c.die_change_every_h),
            no_order=self._planned_after(t, c.no_order_every_h),
        )
        shot_number = c.first_shot
        state = MachineState.SETUP
        yield StateEvent(self.id, t, state, self.die.code, "start: cold die, warm-up shots")
        # Machines of a hall do not all cast their first shot in the same second.
        t += timedelta(seconds=float(self.rng.uniform(0, self.cycle_time_s)))
        cooling = c.die_cooling_c  # the die starts cold
        warmup = int(self.rng.integers(c.warmup_shots[0], c.warmup_shots[1] + 1))
        since_cold = 0
        while True:
            stop = self._due_stop(t, plan)
            if stop is not None:
                stop_state, length, reason = stop
                yield StateEvent(self.id, t, stop_state, self.die.code, reason)
                t += length
                if length >= timedelta(minutes=c.cold_after_min):
                    ratio = 1 - math.exp(-(length / timedelta(minutes=30)))
                    cooling = max(cooling * math.exp(-since_cold / 4), c.die_cooling_c * ratio)
                    since_cold = 0
                    warmup = int(self.rng.integers(c.warmup_shots[0], c.warmup_shots[1] + 1))
                state = MachineState.SETUP if warmup else MachineState.RUNNING
                why = "warm-up shots" if warmup else "back to production"
                yield StateEvent(self.id, t, state, self.die.code, why)
                continue
            self._start_episodes(t, plan)
            die_offset = -cooling * math.exp(-since_cold / 4)
            shot, cycle_s = self._cast(t, plan, die_offset, shot_number, trial=warmup > 0)
            yield shot
            shot_number += 1
            since_cold += 1
            if warmup:
                warmup -= 1
                if not warmup:
                    state = MachineState.RUNNING
                    yield StateEvent(self.id, t, state, self.die.code, "warm-up done")
            t += timedelta(seconds=cycle_s)

    def _cast(
        self, t: datetime, plan: _Schedule, die_offset: float, shot_number: int, trial: bool
    ) -> tuple[ShotEvent, float]:
        """One shot at `t` under the episodes and die temperature of the moment, and its
        true cycle time (when the next shot can follow)."""
        offsets = {
            "melt_temp_c": self._episode(plan, "melt", t),
            "vacuum_mbar": self._episode(plan, "vacuum", t),
            "die_temp_fixed_c": die_offset,
            "die_temp_moving_c": die_offset,
            "die_temp_fixed_2_c": die_offset,
            "die_temp_moving_2_c": die_offset,
        }
        faults = self.curves.faults(t) if self.curves else frozenset()
        if self.curves is not None:
            for name, offset in self.curves.offsets(faults, self.process).items():
                offsets[name] = offsets.get(name, 0.0) + offset
        true = self.process.next_shot(offsets)
        condition = DieCondition(self.die.life_used(), self.damaged)
        truth = judge(self.process, true, condition, self.config.base_defect_rate, self.rng)
        curve = None
        if self.curves is not None:
            faults = acting(faults, true)
            truth = self.curves.truth(truth, faults)
            curve = self.curves.curve(self.process, true, faults)
        self.die.shot_counter += 1
        shot = ShotEvent(
            machine=self.id,
            at=t,
            shot_number=shot_number,
            die=self.die.code,
            die_counter=self.die.shot_counter,
            params=self.process.readings(true),
            trial=trial,
            truth=truth,
            curve=curve,
            process_faults=faults,
        )
        return shot, true["cycle_time_s"]

    def _due_stop(self, t: datetime, plan: _Schedule) -> tuple[MachineState, timedelta, str] | None:
        """The stop that is due now, if any, and when the next of its kind will be."""
        c = self.config
        if plan.maintenance is not None and t >= plan.maintenance:
            plan.maintenance = None
            self.damaged = False
            self.die.maintenance.append(MaintenanceRecord(t, self.die.shot_counter, "repair"))
            return MachineState.SETUP, self._minutes(c.maintenance_min), "die repair"
        if t >= plan.breakdown:
            length = timedelta(minutes=float(self.rng.exponential(c.mttr_min)))
            plan.breakdown = self._after(t + length, c.mtbf_h)
            return MachineState.BREAKDOWN, length, "breakdown"
        if t >= plan.planned_stop:
            length = self._minutes(c.planned_stop_min)
            plan.planned_stop = self._after(t + length, c.planned_stop_every_h)
            return MachineState.PLANNED_STOP, length, "planned stop"
        if plan.die_change is not None and t >= plan.die_change:
            length = self._planned_minutes(c.die_change_min)
            plan.die_change = self._planned_after(t + length, c.die_change_every_h)
            return MachineState.SETUP, length, "die change"
        if plan.no_order is not None and t >= plan.no_order:
            length = self._planned_minutes(c.no_order_min)
            plan.no_order = self._planned_after(t + length, c.no_order_every_h)
            return MachineState.IDLE, length, "no order"
        if t >= plan.idle:
            length = self._minutes(c.idle_min)
            plan.idle = self._after(t + length, c.idle_every_h)
            return MachineState.IDLE, length, "waiting for metal"
        return None

    def _start_episodes(self, t: datetime, plan: _Schedule) -> None:
        c = self.config
        if t >= plan.melt_drift:
            # Mostly a cooling furnace (cold melt), sometimes overheating.
            amplitude = -self.rng.uniform(30, 50) if self.rng.random() < 0.7 else 30.0
            end = t + self._minutes(c.melt_drift_min)
            plan.episodes["melt"] = _Episode(t, end, float(amplitude))
            plan.melt_drift = self._after(end, c.melt_drift_every_h)
        if t >= plan.vacuum_loss:
            end = t + self._minutes(c.vacuum_loss_min)
            plan.episodes["vacuum"] = _Episode(t, end, float(self.rng.uniform(400, 700)))
            plan.vacuum_loss = self._after(end, c.vacuum_loss_every_h)
        if t >= plan.die_damage and not self.damaged:
            self.damaged = True
            plan.maintenance = self._after(t, c.maintenance_after_h)
            plan.die_damage = self._after(plan.maintenance, c.die_damage_every_h)

    @staticmethod
    def _episode(plan: _Schedule, kind: str, t: datetime) -> float:
        episode = plan.episodes.get(kind)
        return episode.offset(t) if episode else 0.0


class Hall:
    """All machines of the hall, their events merged in time order."""

    def __init__(self, config: FleetConfig, start: datetime) -> None:
        self.config = config
        self.machines = [MachineModel(i, config, start) for i in range(config.machines)]

    def events(self) -> Iterator[Event]:
        streams = [m.events() for m in self.machines]
        heap: list[tuple[datetime, int, int, Event]] = []
        seq = 0
        for index, stream in enumerate(streams):
            first = next(stream)
            heap.append((first.at, index, seq, first))
            seq += 1
        heapq.heapify(heap)
        while heap:
            _, index, _, event = heapq.heappop(heap)
            yield event
            following = next(streams[index])
            heapq.heappush(heap, (following.at, index, seq, following))
            seq += 1
