"""The shot curve: plunger position and metal pressure at a fixed sample rate, and its
compact binary form (docs/protocol.md, "The shot curve").

Binary form of the samples (`encode`/`decode`): n position values (mm) then n pressure
values (bar), each a float32; each float's 32 bits, read as an unsigned integer, are
replaced by their difference to the previous one (modulo 2^32; the first against 0),
written little-endian, and the 8n bytes compressed with zlib (RFC 1950). Consecutive
samples of a smooth curve share sign, exponent and high mantissa bits, so the
differences are small numbers zlib packs well, and the round trip is exact. The stored
form (`pack`/`unpack`) puts a 20-byte header before it: magic `CLC1`, the sample rate
(uint32, Hz), the stroke (float64, mm; NaN = unknown) and the number of samples
(uint32), all little-endian.

Everything is checked strictly: finite values, matching sizes, bounded sample counts
(a decompression bomb stops at the bound), a rate within range.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MAX_SAMPLES = 20_000  # 10 s at 2 kHz: a whole shot with room to spare
MIN_RATE_HZ = 100
MAX_RATE_HZ = 100_000
DEFAULT_RATE_HZ = 2000
MAX_STROKE_MM = 5000.0
_MAGIC = b"CLC1"
_HEADER = struct.Struct("<4sIdI")
_F32 = np.dtype("<f4")
_U32 = np.dtype("<u4")

Samples = NDArray[np.float32]


class CurveError(ValueError):
    """A curve that castline cannot accept, with the reason in words."""


@dataclass(frozen=True, slots=True, eq=False)
class ShotCurve:
    """One shot's curve: samples i at time i / rate_hz seconds from the start of the
    plunger's travel. `stroke_mm` is the position at which the plunger would touch the
    die face (no biscuit); None where the machine does not say."""

    rate_hz: int
    position_mm: Samples
    pressure_bar: Samples
    stroke_mm: float | None = None

    def __post_init__(self) -> None:
        if type(self.rate_hz) is not int or not MIN_RATE_HZ <= self.rate_hz <= MAX_RATE_HZ:
            raise CurveError(f"sample rate must be an integer {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz")
        for name in ("position_mm", "pressure_bar"):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.dtype != np.float32 or value.ndim != 1:
                raise CurveError(f"{name} must be a one-dimensional float32 array")
            value.setflags(write=False)  # frozen means frozen
        n = len(self.position_mm)
        if n != len(self.pressure_bar):
            raise CurveError(f"{n} positions but {len(self.pressure_bar)} pressures")
        if not 2 <= n <= MAX_SAMPLES:
            raise CurveError(f"{n} samples; a curve has 2 to {MAX_SAMPLES}")
        if not (np.isfinite(self.position_mm).all() and np.isfinite(self.pressure_bar).all()):
            raise CurveError("curve samples must be finite numbers")
        stroke = self.stroke_mm
        if stroke is not None and not (math.isfinite(stroke) and 0 < stroke <= MAX_STROKE_MM):
            raise CurveError(f"stroke must be a finite length of 0 to {MAX_STROKE_MM:.0f} mm")

    @classmethod
    def of(
        cls,
        rate_hz: int,
        position_mm: object,
        pressure_bar: object,
        stroke_mm: float | None = None,
    ) -> ShotCurve:
        """A curve from any numeric sequences (converted to float32, then checked)."""
        try:
            pos = np.asarray(position_mm, dtype=np.float64)
            pre = np.asarray(pressure_bar, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CurveError(f"curve samples must be numbers: {exc}") from None
        with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf: refused
            return cls(rate_hz, pos.astype(np.float32), pre.astype(np.float32), stroke_mm)

    def __len__(self) -> int:
        return len(self.position_mm)

    @property
    def duration_s(self) -> float:
        return len(self) / self.rate_hz

    def times_s(self) -> NDArray[np.float64]:
        return np.arange(len(self), dtype=np.float64) / self.rate_hz

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShotCurve):
            return NotImplemented
        return (
            self.rate_hz == other.rate_hz
            and self.stroke_mm == other.stroke_mm
            and np.array_equal(self.position_mm, other.position_mm)
            and np.array_equal(self.pressure_bar, other.pressure_bar)
        )

    __hash__ = None  # type: ignore[assignment]  # arrays inside: not hashable


def encode(curve: ShotCurve) -> bytes:
    """The samples in the binary form of the wire (no header: rate and stroke travel
    beside them as message fields)."""
    bits = np.concatenate([curve.position_mm, curve.pressure_bar]).astype(_F32).view(_U32)
    # Level 1: within 5 % of the best size at a third of the time (any level decodes).
    return zlib.compress(np.diff(bits, prepend=_U32.type(0)).astype(_U32).tobytes(), 1)


def decode(data: bytes, rate_hz: int, stroke_mm: float | None = None) -> ShotCurve:
    """The curve from its binary form; CurveError if it is not exactly one valid curve."""
    limit = 8 * MAX_SAMPLES
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise CurveError(f"curve is not a zlib stream: {exc}") from None
    if len(raw) > limit:
        raise CurveError(f"curve holds more than {MAX_SAMPLES} samples")
    if not inflater.eof or inflater.unused_data:
        raise CurveError("curve's zlib stream is truncated or followed by other bytes")
    if len(raw) % 8 or not raw:
        raise CurveError(f"curve of {len(raw)} bytes is not pairs of float32 samples")
    values = np.cumsum(np.frombuffer(raw, _U32), dtype=_U32).view(_F32)
    n = len(values) // 2
    return ShotCurve(
        rate_hz, values[:n].astype(np.float32), values[n:].astype(np.float32), stroke_mm
    )


def from_lists(
    t_s: Sequence[float] | None,
    position_mm: Sequence[float] | None,
    pressure_bar: Sequence[float] | None,
    stroke_mm: float | None = None,
) -> ShotCurve | None:
    """The curve of protocol v1's JSON lists (`curve`) when they map exactly: all three
    traces, one length, evenly sampled (each step within 1 % of 1 / rate) at a rate in
    range. None otherwise: such lists are kept as sent, not resampled."""
    if t_s is None or position_mm is None or pressure_bar is None:
        return None
    if not len(t_s) == len(position_mm) == len(pressure_bar) or len(t_s) < 2:
        return None
    steps = np.diff(np.asarray(t_s, dtype=np.float64))
    step = float(np.median(steps))
    if not step > 0 or not MIN_RATE_HZ <= round(1 / step) <= MAX_RATE_HZ:
        return None
    rate = round(1 / step)
    if np.abs(steps - 1 / rate).max() > 0.01 / rate:
        return None
    try:
        return ShotCurve.of(rate, position_mm, pressure_bar, stroke_mm)
    except CurveError:  # e.g. a value beyond float32
        return None


def pack(curve: ShotCurve) -> bytes:
    """The stored form: header and samples, one value for one column."""
    stroke = math.nan if curve.stroke_mm is None else curve.stroke_mm
    return _HEADER.pack(_MAGIC, curve.rate_hz, stroke, len(curve)) + encode(curve)


def unpack(data: bytes) -> ShotCurve:
    """The curve from its stored form; CurveError if it is not one."""
    if len(data) < _HEADER.size:
        raise CurveError("stored curve is shorter than its header")
    magic, rate, stroke, n = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise CurveError(f"stored curve starts with {magic!r}, not {_MAGIC!r}")
    curve = decode(data[_HEADER.size :], rate, None if math.isnan(stroke) else float(stroke))
    if len(curve) != n:
        raise CurveError(f"stored curve says {n} samples but holds {len(curve)}")
    return curve
