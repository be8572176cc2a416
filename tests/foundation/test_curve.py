"""The shot curve's binary form, its features and the golden envelope, on synthetic
curves whose values are known."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from castline.domain.curve import (
    MAX_SAMPLES,
    CurveError,
    ShotCurve,
    decode,
    encode,
    from_lists,
    pack,
    unpack,
)
from castline.domain.curve_features import features
from castline.domain.envelope import EnvelopeError, learn, outside

RATE = 2000


def synthetic(
    switch_mm: float = 150.0,
    slow: float = 0.3,
    fast: float = 4.0,
    fill_mm: float = 80.0,
    pressure: float = 800.0,
    rise_ms: float = 30.0,
    stroke: float | None = 300.0,
    squeeze_mm: float = 3.0,
    dip: float = 0.0,
) -> ShotCurve:
    """Piecewise-constant velocities (known features): slow to switch-over, fast for
    fill_mm, then a first-order pressure rise reaching 90 % after rise_ms."""
    dt = 1 / RATE
    t_switch = switch_mm / (slow * 1000)
    fill_s = fill_mm / (fast * 1000)
    t_full = t_switch + fill_s * (1 + 0.2 * dip)  # a dip over a fifth of the fill
    t = np.arange(round((t_full + 0.2) * RATE)) * dt
    v = np.where(t < t_switch, slow, np.where(t < t_full, fast, 0.0)) * 1000
    if dip:
        middle = (t > t_switch + 0.4 * (t_full - t_switch)) & (
            t < t_switch + 0.6 * (t_full - t_switch)
        )
        v[middle] *= 1 - dip
    position = np.concatenate([[0.0], np.cumsum(v[:-1] * dt)])
    after = t >= t_full
    build = np.where(after, 1 - np.exp(-(t - t_full) / (rise_ms / 1000 / math.log(10))), 0.0)
    position = np.where(after, switch_mm + fill_mm + squeeze_mm * build, position)
    p = np.where(t < t_switch, 10.0, np.where(after, 150 + (pressure - 150) * build, 150.0))
    return ShotCurve.of(RATE, position, p, stroke)


# --- the binary form ----------------------------------------------------------------


def test_the_binary_form_round_trips_exactly_and_is_compact() -> None:
    curve = synthetic()
    data = encode(curve)
    assert decode(data, RATE, 300.0) == curve
    assert len(data) < 8 * len(curve) / 2  # smooth curves pack to under half
    assert unpack(pack(curve)) == curve
    assert unpack(pack(ShotCurve.of(RATE, [1, 2], [3, 4]))).stroke_mm is None


def wire(values: list[float]) -> bytes:
    """What docs/protocol.md tells a machine builder, written out by hand."""
    bits = np.array(values, dtype="<f4").view("<u4").astype(np.int64)
    deltas = np.diff(bits, prepend=0) % 2**32
    return zlib.compress(deltas.astype("<u4").tobytes())


def test_the_wire_form_is_float32_le_bit_differences_in_zlib() -> None:
    position, pressure = [0.0, 0.5, 1.25], [10.0, 10.5, 700.0]
    data = wire(position + pressure)
    assert zlib.decompress(encode(ShotCurve.of(1000, position, pressure))) == zlib.decompress(data)
    curve = decode(data, 1000)
    assert curve.position_mm.tolist() == position and curve.pressure_bar.tolist() == pressure


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not zlib", "zlib"),
        (zlib.compress(b"\x00" * 12), "pairs"),
        (zlib.compress(b""), "pairs"),
        (zlib.compress(b"\x00" * 16)[:-3], "truncated"),
        (zlib.compress(b"\x00" * 16) + b"x", "followed"),
        (zlib.compress(b"\x00" * (8 * MAX_SAMPLES + 8)), "more than"),
        (wire([1.0, 2.0, 3.0, np.nan]), "finite"),
        (wire([1.0, np.inf, 3.0, 4.0]), "finite"),
    ],
)
def test_bad_binary_curves_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(CurveError, match=why):
        decode(data, RATE)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: ShotCurve.of(RATE, [1.0, 2.0], [1.0]), "positions but"),
        (lambda: ShotCurve.of(RATE, [1.0], [1.0]), "samples"),
        (lambda: ShotCurve.of(50, [1.0, 2.0], [1.0, 2.0]), "rate"),
        (lambda: ShotCurve.of(2000.0, [1.0, 2.0], [1.0, 2.0]), "rate"),  # type: ignore[arg-type]
        (lambda: ShotCurve.of(RATE, [1.0, 1e39], [1.0, 2.0]), "finite"),
        (lambda: ShotCurve.of(RATE, [1.0, 2.0], [1.0, 2.0], -1.0), "stroke"),
        (lambda: ShotCurve.of(RATE, ["a", "b"], [1.0, 2.0]), "numbers"),
        (lambda: ShotCurve(RATE, np.zeros(2), np.zeros(2, np.float32)), "float32"),
        (lambda: unpack(b"XXXX" + pack(synthetic())[4:]), "starts with"),
        (lambda: unpack(pack(synthetic())[:10]), "header"),
    ],
)
def test_curves_are_validated_strictly(make: object, why: str) -> None:
    with pytest.raises(CurveError, match=why):
        make()  # type: ignore[operator]


def test_json_lists_map_only_when_complete_and_evenly_sampled() -> None:
    t = [i / 1000 for i in range(5)]
    curve = from_lists(t, [0, 1, 2, 3, 4], [5, 5, 5, 9, 9])
    assert curve is not None and curve.rate_hz == 1000 and curve.pressure_bar[-1] == 9
    assert from_lists(t, [0, 1, 2, 3, 4], None) is None  # a pressure trace is missing
    assert from_lists([0, 0.001, 0.0025, 0.003, 0.004], [0] * 5, [0] * 5) is None  # uneven
    assert from_lists(t, [0, 1, 2], [0, 1, 2]) is None  # sizes differ


# --- features -----------------------------------------------------------------------


def test_features_of_a_curve_with_known_values() -> None:
    f = features(synthetic())
    assert f is not None
    assert f.switchover_mm == pytest.approx(150.0, abs=1.5)
    assert f.fast_velocity_mean_mps == pytest.approx(4.0, rel=0.03)
    assert f.fast_velocity_min_mps == pytest.approx(4.0, rel=0.12)
    assert f.fill_time_ms == pytest.approx(20.0, abs=2.0)
    assert f.pressure_rise_ms == pytest.approx(30.0, abs=2.0)
    assert f.intensification_bar == pytest.approx(800.0, rel=0.01)
    # 300 stroke - (150 + 80 + 3): biscuit 67 mm
    assert f.biscuit_mm == pytest.approx(67.0, abs=0.5)


def test_faults_move_their_feature_the_right_way() -> None:
    good = features(synthetic())
    late = features(synthetic(switch_mm=175.0))
    dip = features(synthetic(dip=0.4))
    weak = features(synthetic(pressure=600.0))
    slow = features(synthetic(rise_ms=120.0))
    thick = features(synthetic(fill_mm=70.0))
    assert good and late and dip and weak and slow and thick
    assert late.switchover_mm > good.switchover_mm + 20
    assert dip.fast_velocity_min_mps < 0.7 * good.fast_velocity_min_mps
    assert dip.fast_velocity_mean_mps < good.fast_velocity_mean_mps
    assert dip.fill_time_ms > good.fill_time_ms
    assert weak.intensification_bar < good.intensification_bar - 150
    assert slow.pressure_rise_ms and good.pressure_rise_ms
    assert slow.pressure_rise_ms > 3 * good.pressure_rise_ms
    assert thick.biscuit_mm and good.biscuit_mm and thick.biscuit_mm > good.biscuit_mm + 9


def test_a_curve_without_a_fast_shot_has_no_features_and_no_stroke_no_biscuit() -> None:
    assert features(ShotCurve.of(RATE, np.linspace(0, 50, 400), np.full(400, 10.0))) is None
    f = features(synthetic(stroke=None))
    assert f is not None and f.biscuit_mm is None


# --- the golden envelope --------------------------------------------------------------


def good_shots(n: int, rng: np.random.Generator) -> list[ShotCurve]:
    out = []
    for _ in range(n):
        curve = synthetic(
            fast=4.0 * (1 + 0.03 * rng.normal()),
            pressure=800 * (1 + 0.02 * rng.normal()),
            fill_mm=80 + rng.normal(0, 1.5),
        )
        noisy = curve.position_mm + rng.normal(0, 0.03, len(curve))
        out.append(ShotCurve.of(RATE, noisy, curve.pressure_bar + rng.normal(0, 2, len(curve))))
    return out


def test_envelope_keeps_good_shots_in_and_breaches_on_faults() -> None:
    rng = np.random.default_rng(3)
    envelope = learn(good_shots(100, rng))
    held_out = good_shots(200, rng)
    false_alarms = sum(outside(c, envelope) is not None for c in held_out)
    assert false_alarms <= 2  # at most 1 %
    for fault in (
        synthetic(switch_mm=175.0),
        synthetic(dip=0.4),
        synthetic(pressure=620.0),
        synthetic(rise_ms=120.0),
    ):
        breach = outside(fault, envelope)
        assert breach is not None and breach.duration_ms >= 2.0
        assert not breach.low <= breach.value <= breach.high


def test_the_breach_says_where_and_which_trace() -> None:
    envelope = learn(good_shots(60, np.random.default_rng(4)))
    breach = outside(synthetic(pressure=600.0), envelope)
    assert breach is not None and breach.trace == "pressure_bar" and breach.at_ms > 20
    other_rate = ShotCurve.of(1000, synthetic().position_mm[::2], synthetic().pressure_bar[::2])
    assert outside(other_rate, envelope) is not None


def test_an_envelope_needs_enough_good_shots_at_one_rate() -> None:
    with pytest.raises(EnvelopeError, match="need"):
        learn(good_shots(5, np.random.default_rng(5)))
    mixed = good_shots(30, np.random.default_rng(6))
    mixed.append(ShotCurve.of(1000, [0.0, 1.0], [0.0, 1.0]))
    with pytest.raises(EnvelopeError, match="rates"):
        learn(mixed)
