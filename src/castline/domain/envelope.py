"""The golden envelope of a die: the band its good shots' curves stay in, pure.

Curves are aligned on their switch-over (so a slower slow phase does not smear the fast
shot); per sample and trace (position, velocity, pressure) the band is the good shots'
median plus or minus k robust standard deviations (1.4826 MAD) and a floor (sensor
noise), widened by the lowest and highest band within a time tolerance either side (a
steep pressure rise a millisecond early is not a fault). A shot breaches when one
trace stays outside for a run of samples (`MIN_RUN_S`), so one noisy sample never
raises an alarm.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from castline.domain.curve import ShotCurve
from castline.domain.curve_features import phases, velocity_mps

TRACES = ("position_mm", "velocity_mps", "pressure_bar", "squeeze_mm")
FLOOR = {"position_mm": 0.5, "velocity_mps": 0.15, "pressure_bar": 15.0, "squeeze_mm": 0.5}
BEFORE_S = 0.1  # of slow phase before switch-over
K = 6.0
TOLERANCE_S = 0.002
MIN_RUN_S = 0.003  # 2 ms let 1.3 % of good shots breach in bench_curves; 3 ms 0.3 %
MIN_SHOTS = 20
SETTLE_S = 0.005  # after the impact, where the squeeze trace counts from

Band = NDArray[np.float64]


class EnvelopeError(ValueError):
    """Too few or unusable shots to learn an envelope from."""


@dataclass(frozen=True, slots=True, eq=False)
class Envelope:
    """Per trace, the lower and upper band of `len` samples from `before` samples ahead
    of switch-over, at `rate_hz`; learnt from `shots` good curves."""

    rate_hz: int
    before: int
    low: dict[str, Band]
    high: dict[str, Band]
    shots: int

    def __len__(self) -> int:
        return len(self.low[TRACES[0]])


@dataclass(frozen=True, slots=True)
class Breach:
    """Where a curve left its envelope first: the trace, the time from switch-over, the
    value there and the band it left, and how long it stayed out."""

    trace: str
    at_ms: float
    value: float
    low: float
    high: float
    duration_ms: float


UNITS = {"position_mm": "mm", "velocity_mps": "m/s", "pressure_bar": "bar", "squeeze_mm": "mm"}


def describe(breach: Breach) -> str:
    """The breach in one line for people and the record (at most 200 characters)."""
    if breach.trace == "rate_hz":
        return f"sampled at {breach.value:.0f} Hz, the envelope at {breach.low:.0f} Hz"
    if breach.duration_ms == 0 and np.isnan(breach.value):
        return "no fast shot in the curve"
    unit = UNITS.get(breach.trace, "")
    return (
        f"{breach.trace} outside the envelope {breach.at_ms:+.1f} ms from switch-over for "
        f"{breach.duration_ms:.1f} ms: {breach.value:.4g} {unit}, band "
        f"{breach.low:.4g} to {breach.high:.4g} {unit}"
    )[:200]


@dataclass(frozen=True, slots=True)
class EnvelopeCheck:
    """A shot's curve against its die's envelope: the envelope version and, if the curve
    left it, where (`describe`d)."""

    version: int
    breach: str | None = None


def pack(envelope: Envelope) -> bytes:
    """The stored form: numpy's compressed archive of the bands, no pickles."""
    arrays: dict[str, NDArray[Any]] = {
        "meta": np.array([envelope.rate_hz, envelope.before, envelope.shots], dtype=np.int64)
    }
    arrays |= {f"low_{k}": v.astype(np.float32) for k, v in envelope.low.items()}
    arrays |= {f"high_{k}": v.astype(np.float32) for k, v in envelope.high.items()}
    out = io.BytesIO()
    np.savez_compressed(out, allow_pickle=False, **arrays)
    return out.getvalue()


def unpack(data: bytes) -> Envelope:
    """The envelope from its stored form; EnvelopeError if it is not one."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            rate, before, shots = (int(x) for x in z["meta"])
            low = {k: z[f"low_{k}"].astype(np.float64) for k in TRACES}
            high = {k: z[f"high_{k}"].astype(np.float64) for k in TRACES}
    except (OSError, ValueError, KeyError) as exc:
        raise EnvelopeError(f"stored envelope unreadable: {exc}") from None
    if len({len(b) for b in (*low.values(), *high.values())}) != 1:
        raise EnvelopeError("stored envelope's bands differ in length")
    return Envelope(rate, before, low, high, shots)


def aligned(curve: ShotCurve) -> tuple[int, dict[str, NDArray[np.float64]]] | None:
    """The curve's switch-over index and its traces, or None without a fast shot."""
    v = velocity_mps(curve)
    ph = phases(curve, v)
    if ph is None:
        return None
    position = curve.position_mm.astype(np.float64)
    traces = {
        "position_mm": position,
        "velocity_mps": v,
        "pressure_bar": curve.pressure_bar.astype(np.float64),
        # Travel from just after the impact, free of the biscuit's spread: a plunger
        # that creeps on under pressure leaks metal past its tip.
        "squeeze_mm": position
        - position[min(ph.full + round(SETTLE_S * curve.rate_hz), len(position) - 1)],
    }
    return ph.switchover, traces


def learn(curves: Sequence[ShotCurve], k: float = K, tolerance_s: float = TOLERANCE_S) -> Envelope:
    """The envelope of good shots' curves (all at one sample rate)."""
    rates = {c.rate_hz for c in curves}
    if len(rates) != 1:
        raise EnvelopeError(f"curves at {len(rates)} different sample rates; need one")
    rate = rates.pop()
    found = [a for a in map(aligned, curves) if a is not None]
    if len(found) < MIN_SHOTS:
        raise EnvelopeError(f"{len(found)} curves with a fast shot; need {MIN_SHOTS}")
    before = round(BEFORE_S * rate)
    after = min(len(tr["position_mm"]) - s for s, tr in found)
    spread = round(tolerance_s * rate)
    low, high = {}, {}
    for name in TRACES:
        stack = np.stack([_window(tr[name], s, before, after) for s, tr in found])
        median = np.nanmedian(stack, axis=0)
        mad = np.nanmedian(np.abs(stack - median), axis=0) * 1.4826
        width = k * mad + FLOOR[name]
        low[name] = _widen(median - width, spread, np.nanmin)
        high[name] = _widen(median + width, spread, np.nanmax)
    return Envelope(rate, before, low, high, len(found))


def _window(trace: NDArray[np.float64], switch: int, before: int, after: int) -> Band:
    """`before` samples ahead of switch-over (NaN where the curve starts later) and
    `after` from it."""
    out = np.full(before + after, np.nan)
    index = np.arange(switch - before, switch + after)
    inside = (index >= 0) & (index < len(trace))
    out[inside] = trace[index[inside]]
    return out


def _widen(band: Band, spread: int, reduce: Callable[..., Any]) -> Band:
    """Each sample's band is the extreme of the band within `spread` samples."""
    if spread <= 0:
        return band
    padded = np.pad(band, spread, mode="edge")
    return np.asarray(reduce(sliding_window_view(padded, 2 * spread + 1), axis=1))


def outside(curve: ShotCurve, envelope: Envelope, min_run_s: float = MIN_RUN_S) -> Breach | None:
    """The first breach of the envelope, or None if the curve stays inside. A curve with
    no fast shot, or at another rate, breaches at once: it is no shot of this die."""
    if curve.rate_hz != envelope.rate_hz:
        return Breach("rate_hz", 0.0, float(curve.rate_hz), envelope.rate_hz, envelope.rate_hz, 0.0)
    found = aligned(curve)
    if found is None:
        return Breach("velocity_mps", 0.0, float("nan"), 0.0, 0.0, 0.0)
    switch, traces = found
    run = max(1, round(min_run_s * envelope.rate_hz))
    first: Breach | None = None
    for name in TRACES:
        window = _window(traces[name], switch, envelope.before, len(envelope) - envelope.before)
        low, high = envelope.low[name], envelope.high[name]
        out = (window < low) | (window > high)  # NaN (curve shorter) compares False
        where = _first_run(out, run)
        if where is None:
            continue
        at_ms = (where - envelope.before) / envelope.rate_hz * 1000
        if first is None or at_ms < first.at_ms:
            length = _run_length(out, where)
            first = Breach(
                name,
                at_ms,
                float(window[where]),
                float(low[where]),
                float(high[where]),
                length / envelope.rate_hz * 1000,
            )
    return first


def _first_run(out: NDArray[np.bool_], run: int) -> int | None:
    """The first index that starts `run` consecutive True values."""
    if len(out) < run:
        return None
    counts = np.convolve(out.astype(np.int32), np.ones(run, dtype=np.int32), mode="valid")
    hits = np.nonzero(counts == run)[0]
    return int(hits[0]) if len(hits) else None


def _run_length(out: NDArray[np.bool_], start: int) -> int:
    ends = np.nonzero(~out[start:])[0]
    return int(ends[0]) if len(ends) else len(out) - start
