"""Shot curves of the simulated hall: plausible phases per die and machine, seeded, and
process faults that show in the curve and make the defects the rules know."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from castline.domain.curve import decode, encode
from castline.domain.curve_features import features
from castline.domain.envelope import learn, outside
from castline.sim.calibration import PROFILES
from castline.sim.curves import CurveFault, CurveProfile, conditions, shot_curve
from castline.sim.fleet import FleetConfig, Hall, MachineModel, ShotEvent
from castline.sim.process import ProcessModel

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def shots(config: FleetConfig, n: int) -> list[ShotEvent]:
    out = []
    for event in Hall(config, START).events():
        if isinstance(event, ShotEvent):
            out.append(event)
            if len(out) == n:
                return out
    return out


def test_every_simulated_shot_has_a_plausible_curve_at_2_khz() -> None:
    events = shots(FleetConfig(machines=5, seed=2, process_fault_every_h=0), 300)
    for event in events:
        curve = event.curve
        assert curve is not None and curve.rate_hz == 2000
        f = features(curve)
        assert f is not None and f.pressure_rise_ms is not None and f.biscuit_mm is not None
        assert 0.2 <= curve.duration_s <= 1.2
        assert 2.0 <= f.fast_velocity_mean_mps <= 6.0
        assert 20.0 <= f.fill_time_ms <= 80.0
        assert 600.0 <= f.intensification_bar <= 1000.0
        assert 15.0 <= f.pressure_rise_ms <= 55.0
        true_biscuit = event.params["biscuit_thickness_mm"]
        if true_biscuit:  # reported (not a drop-out): the curve agrees with it
            assert f.biscuit_mm == pytest.approx(true_biscuit, abs=1.0)
        assert len(encode(curve)) < 8 * len(curve) * 0.6  # compresses: a few KB


def test_curves_differ_by_machine_and_repeat_by_seed() -> None:
    a = shots(FleetConfig(machines=2, seed=4), 10)
    b = shots(FleetConfig(machines=2, seed=4), 10)
    assert all(x.curve == y.curve for x, y in zip(a, b, strict=True))
    switch = {e.machine: features(e.curve).switchover_mm for e in a if e.curve}  # type: ignore[union-attr]
    assert abs(switch["dcm-01"] - switch["dcm-02"]) > 1.0


def test_curves_leave_the_rest_of_the_hall_as_it_was() -> None:
    plain = FleetConfig(machines=3, seed=5, curve_rate_hz=0)
    curved = replace(plain, curve_rate_hz=1000, process_fault_every_h=0)
    for x, y in zip(shots(plain, 200), shots(curved, 200), strict=True):
        assert (x.at, x.params, x.truth) == (y.at, y.params, y.truth)
        assert x.curve is None and y.curve is not None and y.curve.rate_hz == 1000


def faulty(fault: CurveFault | None, n: int, seed: int = 0) -> tuple[list, ProcessModel]:
    """n shots of one die with the fault, through the fleet's own fault path."""
    machine = MachineModel(0, FleetConfig(seed=seed), START)
    assert machine.curves is not None
    out = []
    for _ in range(n):
        faults = frozenset({fault}) if fault else frozenset()
        offsets = machine.curves.offsets(faults, machine.process)
        if fault is CurveFault.VACUUM_LOSS:
            offsets["vacuum_mbar"] = 550.0
        true = machine.process.next_shot(offsets)
        out.append(machine.curves.curve(machine.process, true, faults))
    return out, machine.process


@pytest.mark.parametrize(
    ("fault", "feature", "direction"),
    [
        (CurveFault.LATE_SWITCHOVER, "switchover_mm", +1),
        (CurveFault.VELOCITY_DIP, "fast_velocity_min_mps", -1),
        (CurveFault.WEAK_INTENSIFICATION, "intensification_bar", -1),
        (CurveFault.SLOW_INTENSIFICATION, "pressure_rise_ms", +1),
        (CurveFault.WORN_TIP, "biscuit_mm", -1),
        (CurveFault.VACUUM_LOSS, "fill_time_ms", +1),
    ],
)
def test_each_process_fault_shows_in_its_feature_and_breaches_the_envelope(
    fault: CurveFault, feature: str, direction: int
) -> None:
    good, _ = faulty(None, 150)
    envelope = learn(good[:100])
    bad, _ = faulty(fault, 40, seed=0)
    good_values = [getattr(features(c), feature) for c in good]
    bad_values = [getattr(features(c), feature) for c in bad]
    assert direction * (np.median(bad_values) - np.median(good_values)) > 0
    detected = sum(outside(c, envelope) is not None for c in bad) / len(bad)
    assert detected >= (0.3 if fault is CurveFault.VACUUM_LOSS else 0.6)
    assert sum(outside(c, envelope) is not None for c in good[100:]) <= 1


def test_process_fault_episodes_happen_and_make_their_defects() -> None:
    config = FleetConfig(machines=6, seed=3, process_fault_every_h=2.0)
    events = shots(config, 6000)
    with_fault = [e for e in events if e.process_faults - {CurveFault.VACUUM_LOSS}]
    kinds = Counter(f for e in with_fault for f in e.process_faults)
    assert len(kinds) >= 4  # the episodes draw every kind
    causes = Counter(e.truth.cause for e in with_fault if e.truth.defective)
    assert causes["late switch-over"] and causes["slow intensification"]
    rate_fault = sum(e.truth.defective for e in with_fault) / len(with_fault)
    clean = [e for e in events if not e.process_faults]
    rate_clean = sum(e.truth.defective for e in clean) / len(clean)
    assert rate_fault > 3 * rate_clean


def test_a_curve_at_another_rate_spans_the_same_time() -> None:
    rng = np.random.default_rng(1)
    process = ProcessModel(PROFILES[1], rng, 60.0)
    profile = CurveProfile.draw(rng, process)
    shot = conditions(profile, process, process.next_shot({}))
    slow = shot_curve(profile, shot, np.random.default_rng(2), 1000)
    fast = shot_curve(profile, shot, np.random.default_rng(2), 5000)
    assert fast.rate_hz == 5000 and abs(fast.duration_s - slow.duration_s) < 0.005
    assert decode(encode(fast), 5000, fast.stroke_mm) == fast
