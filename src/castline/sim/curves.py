"""Shot curves of the simulated hall: plunger position and metal pressure per shot.

A cold-chamber shot in four phases (docs/simulator.md, "Shot curves"):

1. slow phase: the plunger accelerates to 0.2-0.5 m/s and pushes the metal up the sleeve
   until the switch-over position (a machine setting);
2. fast shot: the valve opens, the plunger reaches 2-6 m/s within about 10 ms and fills
   the die; the metal pressure rises with the flow resistance;
3. intensification: the die is full, the plunger stops, the metal pressure climbs to
   600-1,000 bar within 20-50 ms while the plunger squeezes a few mm further;
4. hold: the pressure is held while the casting solidifies; the plunger rests on the
   biscuit, whose thickness is what is left of the stroke.

The curve follows the shot's true process parameters: velocities scale with the die's
calibrated ones, the metal pressure is the hydraulic (KAMP) cast pressure times the
machine's intensifier ratio, the biscuit is the shot's biscuit thickness. Process faults
(`CurveFault`) come as episodes of their own random stream, so a hall without them makes
exactly the shots it made before curves existed; each shows in the curve and raises a
defect the rules know. Pure numpy, seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np

from castline.domain.curve import DEFAULT_RATE_HZ, ShotCurve
from castline.sim.process import ProcessModel
from castline.sim.rules import LOST_VACUUM_MBAR, Truth


class CurveFault(StrEnum):
    """Process faults that show in the shot curve."""

    LATE_SWITCHOVER = "late_switchover"  # switch-over 15-30 mm late: metal cools at the gate
    VELOCITY_DIP = "velocity_dip"  # fast shot sags 30-50 % for 5-10 ms: air is trapped
    WEAK_INTENSIFICATION = "weak_intensification"  # pressure 3-4.5 sd low: shrinkage
    SLOW_INTENSIFICATION = "slow_intensification"  # rise takes 3-5 times as long
    WORN_TIP = "worn_tip"  # metal blows by the plunger tip: it creeps, pressure sags
    VACUUM_LOSS = "vacuum_loss"  # no vacuum: trapped air pushes back at the end of fill


# Chance that a fault's shot is defective, for faults no parameter rule sees; weak
# intensification and vacuum loss act through the parameters and `rules.py`.
FAULT_DEFECTS: dict[CurveFault, tuple[str, float, str]] = {
    CurveFault.LATE_SWITCHOVER: ("cold_shut", 0.35, "late switch-over"),
    CurveFault.VELOCITY_DIP: ("gas_porosity", 0.3, "fast-shot velocity dip"),
    CurveFault.SLOW_INTENSIFICATION: ("shrinkage_porosity", 0.3, "slow intensification"),
    CurveFault.WORN_TIP: ("shrinkage_porosity", 0.25, "worn plunger tip: pressure not held"),
}
EPISODE_FAULTS = tuple(f for f in CurveFault if f is not CurveFault.VACUUM_LOSS)


# A closed-loop shot end repeats velocities and pressure within a few percent; the
# curve moves by this fraction per calibrated standard deviation of the parameter, so a
# shot the rules call off (|z| > 2.5) is visibly off, and a fault more so.
SPREAD = {
    "slow_shot_velocity_mps": 0.03,
    "fast_shot_velocity_mps": 0.03,
    "intensification_pressure_bar": 0.02,
}


@dataclass(frozen=True, slots=True)
class CurveProfile:
    """A die on a machine: its settings and geometry, drawn once."""

    switchover_mm: float  # slow -> fast at this plunger position
    fill_mm: float  # plunger travel that fills runners and cavity
    squeeze_mm: float  # further travel under intensification
    stroke_mm: float  # plunger position at the die face (no biscuit)
    slow_mps: float  # nominal slow-phase velocity
    fast_mps: float  # nominal fast-shot velocity
    intensification_bar: float  # nominal metal pressure
    rise_ms: float  # pressure rise time, fill end -> 90 %
    hold_s: float  # recorded after the rise

    @classmethod
    def draw(cls, rng: np.random.Generator, process: ProcessModel) -> CurveProfile:
        """The die's settings on this machine; the metal pressure is the die's mean
        hydraulic (KAMP cast) pressure times the machine's intensifier ratio 2.2-2.8."""
        switchover = float(rng.uniform(130, 190))
        fill = float(rng.uniform(90, 150))
        squeeze = float(rng.uniform(2.0, 4.0))
        biscuit = process.fits["biscuit_thickness_mm"].mean
        hydraulic = process.fits["intensification_pressure_bar"].mean
        return cls(
            switchover_mm=switchover,
            fill_mm=fill,
            squeeze_mm=squeeze,
            stroke_mm=round(switchover + fill + squeeze + biscuit, 1),
            slow_mps=float(rng.uniform(0.25, 0.45)),
            fast_mps=float(rng.uniform(3.0, 5.0)),
            intensification_bar=hydraulic * float(rng.uniform(2.2, 2.8)),
            rise_ms=float(rng.uniform(20, 40)),
            hold_s=0.12,
        )


@dataclass(frozen=True, slots=True)
class Conditions:
    """What one shot does, from its true parameters and the faults acting on it."""

    slow_mps: float
    fast_mps: float
    intensification_bar: float  # metal pressure
    biscuit_mm: float
    vacuum_mbar: float
    faults: frozenset[CurveFault] = frozenset()


def acting(faults: frozenset[CurveFault], true: dict[str, float]) -> frozenset[CurveFault]:
    """The faults acting on a shot: the episode's, and a lost vacuum if there is one."""
    if true["vacuum_mbar"] > LOST_VACUUM_MBAR:
        return faults | {CurveFault.VACUUM_LOSS}
    return faults


def conditions(
    profile: CurveProfile,
    process: ProcessModel,
    true: dict[str, float],
    faults: frozenset[CurveFault] = frozenset(),
    weak: float = 0.0,
) -> Conditions:
    """The shot's curve conditions from its true parameters (through their z, see
    SPREAD) and faults; `weak` is the share of pressure a weak intensification loses
    beyond its parameter offset."""

    def scale(name: str) -> float:
        z = min(max(process.z(name, true[name]), -5.0), 5.0)
        return 1 + SPREAD[name] * z

    faults = acting(faults, true)
    pressure = profile.intensification_bar * scale("intensification_pressure_bar")
    return Conditions(
        slow_mps=profile.slow_mps * scale("slow_shot_velocity_mps"),
        fast_mps=profile.fast_mps * scale("fast_shot_velocity_mps"),
        intensification_bar=pressure * (1 - weak),
        biscuit_mm=true["biscuit_thickness_mm"],
        vacuum_mbar=true["vacuum_mbar"],
        faults=faults,
    )


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True, slots=True)
class _Shape:
    """The shot's kinematics in seconds and mm, faults applied."""

    switchover_mm: float
    fill_end_mm: float
    rise_s: float
    dip: tuple[float, float, float] | None  # (where in the fast phase 0-1, depth, width s)


def _shape(profile: CurveProfile, c: Conditions, rng: np.random.Generator) -> _Shape:
    switchover = profile.switchover_mm + float(rng.normal(0, 0.3))
    if CurveFault.LATE_SWITCHOVER in c.faults:
        switchover += float(rng.uniform(15, 30))
    fill_end = profile.stroke_mm - c.biscuit_mm - profile.squeeze_mm
    switchover = min(switchover, fill_end - 10.0)  # the die is not full before switch-over
    rise = profile.rise_ms * float(rng.uniform(0.9, 1.1)) / 1000
    if CurveFault.SLOW_INTENSIFICATION in c.faults:
        rise *= float(rng.uniform(3, 5))
    dip = None
    if CurveFault.VELOCITY_DIP in c.faults:
        dip = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.5)), 0.0075)
    return _Shape(switchover, fill_end, rise, dip)


def shot_curve(
    profile: CurveProfile,
    c: Conditions,
    rng: np.random.Generator,
    rate_hz: int = DEFAULT_RATE_HZ,
) -> ShotCurve:
    """One shot's curve at `rate_hz`, from plunger start to the end of the hold."""
    shape = _shape(profile, c, rng)
    dt = 1.0 / rate_hz
    accel_slow, accel_fast = 0.06, 0.010
    slow_mmps, fast_mmps = c.slow_mps * 1000, c.fast_mps * 1000
    t_switch = accel_slow + (shape.switchover_mm - slow_mmps * accel_slow / 2) / slow_mmps
    fill_s = (shape.fill_end_mm - shape.switchover_mm) / fast_mmps
    horizon = t_switch + 3 * fill_s + accel_fast + shape.rise_s * 1.5 + profile.hold_s
    t = np.arange(math.ceil(horizon * rate_hz)) * dt

    # Velocity until the die is full; integrated to positions (trapezoid rule).
    velocity = slow_mmps * _smoothstep(t / accel_slow)
    fast = t >= t_switch
    velocity[fast] = slow_mmps + (fast_mmps - slow_mmps) * _smoothstep(
        (t[fast] - t_switch) / accel_fast
    )
    if shape.dip is not None:
        where, depth, width = shape.dip
        centre = t_switch + accel_fast + where * fill_s
        velocity *= 1 - depth * np.exp(-(((t - centre) / (width / 2)) ** 2))
    if CurveFault.VACUUM_LOSS in c.faults:  # air ahead of the metal brakes the plunger
        late = np.clip((t - t_switch) / fill_s, 0, 1) ** 3
        velocity *= 1 - 0.3 * min(c.vacuum_mbar / 700, 1.0) * late
    position = np.concatenate([[0.0], np.cumsum((velocity[1:] + velocity[:-1]) / 2 * dt)])
    full = int(np.searchsorted(position, shape.fill_end_mm))
    full = min(full, len(t) - 1)
    t_full = t[full]

    after = t > t_full
    since = t[after] - t_full
    # The die is full: the plunger stops and squeezes on as the pressure rises.
    tau = shape.rise_s / math.log(10)  # 90 % of the rise after rise_s
    build = np.zeros_like(t)
    build[after] = 1 - np.exp(-since / tau)
    position[after] = shape.fill_end_mm + profile.squeeze_mm * build[after]
    pressure = _pressure(profile, c, shape, t, t_switch, t_full, position, build, after)
    if CurveFault.WORN_TIP in c.faults:
        leak = np.clip(since - shape.rise_s, 0, None) / profile.hold_s
        position[after] += float(rng.uniform(1.5, 4.0)) * leak
        pressure[after] *= 1 - float(rng.uniform(0.08, 0.15)) * leak

    end = min(len(t), int((t_full + shape.rise_s + profile.hold_s) * rate_hz))
    noise_pos = rng.normal(0, 0.03, end)
    noise_pre = rng.normal(0, 1.0, end) + pressure[:end] * rng.normal(0, 0.004, end)
    return ShotCurve.of(
        rate_hz,
        np.round(position[:end] + noise_pos, 2),
        np.round(np.maximum(pressure[:end] + noise_pre, 0.0), 1),
        profile.stroke_mm,
    )


def _pressure(
    profile: CurveProfile,
    c: Conditions,
    shape: _Shape,
    t: np.ndarray,
    t_switch: float,
    t_full: float,
    position: np.ndarray,
    build: np.ndarray,
    after: np.ndarray,
) -> np.ndarray:
    """Metal pressure: sleeve friction and head in the slow phase, flow resistance
    growing with the filled fraction in the fast shot, then intensification."""
    pressure = 5.0 + 10.0 * np.clip(position / shape.switchover_mm, 0, 1)
    filling = (t >= t_switch) & ~after
    fraction = np.clip(
        (position - shape.switchover_mm) / (shape.fill_end_mm - shape.switchover_mm), 0, 1
    )
    velocity_mps = np.gradient(position, t) / 1000
    flow = 30 + 6.0 * velocity_mps**2 * (0.5 + fraction)
    if CurveFault.VACUUM_LOSS in c.faults:
        flow += (0.04 * c.vacuum_mbar) * fraction**3  # air compressed ahead of the metal
    pressure[filling] = 15.0 + flow[filling]
    start = float(pressure[filling][-1]) if filling.any() else 20.0
    target = c.intensification_bar
    overshoot = 0.05 * target * np.exp(-(((t[after] - t_full - shape.rise_s) / 0.008) ** 2))
    pressure[after] = start + (target - start) * build[after] + overshoot
    return pressure


@dataclass(slots=True)
class _FaultEpisode:
    fault: CurveFault
    start: datetime
    end: datetime


@dataclass(slots=True)
class CurveModel:
    """One machine's curves and its process-fault episodes, on a random stream of their
    own (so the hall's other events do not depend on whether curves are drawn)."""

    profile: CurveProfile
    rng: np.random.Generator
    rate_hz: int = DEFAULT_RATE_HZ
    fault_every_h: float = 12.0  # mean gap between process-fault episodes; 0: none
    fault_min: tuple[float, float] = (10.0, 40.0)
    episode: _FaultEpisode | None = None
    next_fault: datetime | None = None
    _weak: float = 0.0

    def faults(self, at: datetime) -> frozenset[CurveFault]:
        """The process faults acting on a shot at `at` (starting episodes as they fall due)."""
        if self.fault_every_h <= 0:
            return frozenset()
        if self.next_fault is None:
            self.next_fault = at + self._gap()
        if self.episode is None and at >= self.next_fault:
            fault = EPISODE_FAULTS[int(self.rng.integers(len(EPISODE_FAULTS)))]
            minutes = float(self.rng.uniform(*self.fault_min))
            self.episode = _FaultEpisode(fault, at, at + timedelta(minutes=minutes))
        if self.episode is not None and at >= self.episode.end:
            self.next_fault = self.episode.end + self._gap()
            self.episode = None
        return frozenset({self.episode.fault}) if self.episode else frozenset()

    def _gap(self) -> timedelta:
        return timedelta(hours=float(self.rng.exponential(self.fault_every_h)))

    def offsets(self, faults: frozenset[CurveFault], process: ProcessModel) -> dict[str, float]:
        """Parameter offsets of the faults that act through the parameters (drawn now,
        with the share of pressure the curve loses beyond them)."""
        self._weak = 0.0
        if CurveFault.WEAK_INTENSIFICATION not in faults:
            return {}
        self._weak = float(self.rng.uniform(0.1, 0.2))
        sd = process.fits["intensification_pressure_bar"].std
        return {"intensification_pressure_bar": -float(self.rng.uniform(3.0, 4.5)) * sd}

    def curve(
        self, process: ProcessModel, true: dict[str, float], faults: frozenset[CurveFault]
    ) -> ShotCurve:
        shot = conditions(self.profile, process, true, faults, self._weak)
        return shot_curve(self.profile, shot, self.rng, self.rate_hz)

    def truth(self, truth: Truth, faults: frozenset[CurveFault]) -> Truth:
        """The casting's truth with the faults' own defects (one draw per fault, always)."""
        for fault in sorted(faults):
            if fault not in FAULT_DEFECTS:
                continue
            code, chance, cause = FAULT_DEFECTS[fault]
            if self.rng.random() < chance and not truth.defective:
                truth = Truth(True, code, cause)
        return truth
