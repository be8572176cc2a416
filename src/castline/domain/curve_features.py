"""Phases and features of a shot curve, pure.

The phases are found from the plunger velocity (the position's slope, smoothed over
about 2.5 ms): the fast shot is where the velocity stands far above the slow phase's;
switch-over is where it starts rising towards it; the die is full where it falls back.
Every feature is in the unit its name says; a feature the curve cannot give (no fast
shot, no stroke for the biscuit) is None rather than a guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from castline.domain.curve import ShotCurve
from castline.domain.units import BY_NAME

PARAMETER_OF = {  # feature -> its shot parameter
    "switchover_mm": "curve_switchover_mm",
    "fast_velocity_mean_mps": "curve_fast_velocity_mean_mps",
    "fast_velocity_min_mps": "curve_fast_velocity_min_mps",
    "fill_time_ms": "curve_fill_time_ms",
    "pressure_rise_ms": "curve_pressure_rise_ms",
    "intensification_bar": "curve_intensification_bar",
    "biscuit_mm": "curve_biscuit_mm",
}

SMOOTH_S = 0.0025  # velocity smoothing window
HOLD_S = 0.02  # the last 20 ms give the resting position (biscuit)


@dataclass(frozen=True, slots=True)
class Phases:
    """Sample indices: switch-over, fast shot at full speed (start, end), die full."""

    switchover: int
    fast_start: int
    fast_end: int
    full: int


@dataclass(frozen=True, slots=True)
class CurveFeatures:
    switchover_mm: float
    fast_velocity_mean_mps: float
    fast_velocity_min_mps: float
    fill_time_ms: float
    pressure_rise_ms: float | None  # fill end -> 90 % of intensification pressure
    intensification_bar: float
    biscuit_mm: float | None  # stroke minus resting position; None without stroke

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)

    def as_parameters(self) -> dict[str, float | None]:
        """The features as shot parameters (`units.CURVE_PARAMETERS`); a value outside a
        parameter's plausible range is None, like any implausible reading."""
        out: dict[str, float | None] = {}
        for field, value in self.as_dict().items():
            name = PARAMETER_OF[field]
            p = BY_NAME[name]
            out[name] = value if value is not None and p.low <= value <= p.high else None
        return out


def velocity_mps(curve: ShotCurve) -> NDArray[np.float64]:
    """Plunger velocity in m/s, central differences over a moving average."""
    width = max(1, round(SMOOTH_S * curve.rate_hz))
    position = curve.position_mm.astype(np.float64)
    if width > 1 and len(position) > width:
        kernel = np.ones(width) / width
        padded = np.pad(position, (width // 2, width - 1 - width // 2), mode="edge")
        position = np.convolve(padded, kernel, mode="valid")
    return np.gradient(position) * curve.rate_hz / 1000.0


def phases(curve: ShotCurve, v: NDArray[np.float64] | None = None) -> Phases | None:
    """The shot's phases, or None if the curve has no fast shot (a fast phase at
    least three times the slow phase's velocity)."""
    v = velocity_mps(curve) if v is None else v
    peak = int(np.argmax(v))
    top = float(v[peak])
    moving = v[:peak][v[:peak] > 0.05 * top]
    if top <= 0 or len(moving) == 0:
        return None
    slow = float(np.median(moving))
    if top < 3 * slow:
        return None
    rising = np.nonzero(v[:peak] < slow + 0.5 * (top - slow))[0]
    if len(rising) == 0:
        return None
    cross = int(rising[-1])
    below = np.nonzero(v[: cross + 1] < slow + 0.1 * (top - slow))[0]
    switchover = int(below[-1]) if len(below) else cross
    fast = np.nonzero(v[switchover:] >= 0.9 * top)[0] + switchover
    stopped = np.nonzero(v[fast[0] :] < 0.5 * top)[0]  # mid-deceleration: the impact
    full = int(stopped[0]) + int(fast[0]) if len(stopped) else len(v) - 1
    at_speed = fast[fast < full]
    return Phases(switchover, int(at_speed[0]), int(at_speed[-1]), full)


def features(curve: ShotCurve) -> CurveFeatures | None:
    """The shot's features, or None if the curve has no fast shot."""
    v = velocity_mps(curve)
    ph = phases(curve, v)
    if ph is None:
        return None
    rate = curve.rate_hz
    pressure = curve.pressure_bar.astype(np.float64)
    plateau = v[ph.fast_start : ph.fast_end + 1]
    after = pressure[ph.full :]
    intensification = float(np.median(after[len(after) // 2 :]))
    base = float(pressure[ph.full])
    reached = np.nonzero(after >= base + 0.9 * (intensification - base))[0]
    rise = float(reached[0]) / rate * 1000 if len(reached) and intensification > base else None
    resting = float(np.median(curve.position_mm[-max(1, round(HOLD_S * rate)) :]))
    return CurveFeatures(
        switchover_mm=float(curve.position_mm[ph.switchover]),
        fast_velocity_mean_mps=float(plateau.mean()),
        fast_velocity_min_mps=float(plateau.min()),
        fill_time_ms=(ph.full - ph.switchover) / rate * 1000,
        pressure_rise_ms=rise,
        intensification_bar=intensification,
        biscuit_mm=None if curve.stroke_mm is None else curve.stroke_mm - resting,
    )
