"""The live alarm engine, pure: charts fed in batches, the gate, the share of held parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from castline.domain.alarm_engine import AlarmEngine
from castline.domain.alarms import (
    DRIFT,
    LEVEL_SHIFT,
    QUARANTINE_RATE,
    RULE1,
    Alarm,
    AlarmGate,
    backlog_alarm,
)
from castline.domain.live_spc import ChartRules, _ewma_spread
from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import PartVerdict, Verdict

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NAMES = ("melt_temp_c", "vacuum_mbar", "die_temp_fixed_c")


def shots(n: int, start: int = 0, melt=lambda i: 0.0, seed: int = 1, die: str = "D1") -> list[Shot]:
    rng = np.random.default_rng(seed + start)
    out = []
    for i in range(start, start + n):
        params = {
            "melt_temp_c": 680 + rng.normal(0, 2) + melt(i),
            "vacuum_mbar": 60 + rng.normal(0, 4),
            "die_temp_fixed_c": 200 + rng.normal(0, 3),
        }
        out.append(Shot(PartKey("p", "m1", i), die, T0 + timedelta(seconds=60 * i), params))
    return out


def feed(engine: AlarmEngine, all_shots: list[Shot], batch: int = 16) -> list[Alarm]:
    reports: list[Alarm] = []
    for i in range(0, len(all_shots), batch):
        engine.shots(all_shots[i : i + batch])
        reports += engine.gate._waiting.values()
        engine.gate._waiting.clear()
    return reports


def test_an_in_control_process_stays_quiet() -> None:
    """Eight machines' worth of 3,000 in-control shots: a false alarm now and then (a
    baseline of 100 shots misplaces the centre a little), not one every few shots."""
    reports: list[Alarm] = []
    for seed in range(8):
        engine = AlarmEngine(names=NAMES)
        reports += feed(engine, shots(3000, seed=1000 * seed))
        assert engine.charts[("p", "m1", "D1")].baseline is not None
    assert len(reports) <= 8


def test_a_melt_drift_raises_drift_then_rule1_on_melt_only() -> None:
    engine = AlarmEngine(names=NAMES)
    drift = shots(1200, melt=lambda i: -min(40.0, max(0, i - 600) * 0.25), seed=3000)
    reports = feed(engine, drift)
    assert reports, "a 40 degree fall of the melt went unseen"
    assert {a.chart for a in reports if a.kind != LEVEL_SHIFT} == {"melt_temp_c"}
    first = min(reports, key=lambda a: a.at)
    assert first.kind == DRIFT and "drifting down" in first.message
    assert first.at < T0 + timedelta(seconds=60 * 640)  # within 40 shots of the start
    assert any(a.kind == RULE1 for a in reports)


def test_a_set_point_change_is_one_level_shift_and_a_new_regime() -> None:
    engine = AlarmEngine(names=NAMES)
    reports = feed(engine, shots(1500, melt=lambda i: -40.0 if i >= 500 else 0.0))
    shifts = [a for a in reports if a.kind == LEVEL_SHIFT]
    assert len(shifts) == 1 and "melt_temp_c 68" in shifts[0].message
    chart = engine.charts[("p", "m1", "D1")]
    assert chart.regime == 1 and chart.baseline is not None
    assert abs(chart.baseline.center[0] - 640) < 2  # learnt at the new set point
    later = [a for a in reports if a.at > shifts[0].at + timedelta(seconds=60 * 150)]
    assert later == []  # the new regime is quiet


def test_trial_and_warm_up_shots_are_not_charted() -> None:
    engine = AlarmEngine(names=NAMES, rules=ChartRules(baseline_shots=50))
    base = shots(200)
    cold = [
        Shot(
            s.key, s.die, s.at + timedelta(hours=2), {**s.params, "melt_temp_c": 600.0}, trial=i < 3
        )
        for i, s in enumerate(shots(10, start=200))
    ]
    assert feed(engine, base + cold) == []  # 3 trial shots, then 10 warm-up shots after a pause


def test_dies_have_charts_of_their_own() -> None:
    engine = AlarmEngine(names=NAMES)
    feed(engine, shots(150) + shots(150, start=150, die="D2", melt=lambda i: 30.0))
    assert set(engine.charts) == {("p", "m1", "D1"), ("p", "m1", "D2")}


def test_gate_merges_repeats_and_limits_new_alarms() -> None:
    gate = AlarmGate(every_s=30, new_per_minute=2)
    a = Alarm("p", "m1", "D1", "melt_temp_c", DRIFT, "x", T0)
    gate.offer(a)
    gate.offer(Alarm("p", "m1", "D1", "melt_temp_c", DRIFT, "y", T0 + timedelta(minutes=1)))
    (out,) = gate.due(0.0)
    assert out.count == 2 and out.message == "y" and out.seen_until == T0 + timedelta(minutes=1)
    gate.offer(a)
    assert gate.due(10.0) == []  # written 10 s ago: waits
    assert [x.count for x in gate.due(31.0)] == [1]
    for chart in ("a", "b", "c"):
        gate.offer(Alarm("p", "m1", "D1", chart, RULE1, "z", T0))
    assert len(gate.due(32.0)) == 1  # two new keys a minute: one of them used already
    assert gate.waiting == 2
    assert len(gate.due(61.0)) == 1 and len(gate.due(93.0)) == 1


def test_quarantine_share_raises_only_when_held_parts_pile_up() -> None:
    engine = AlarmEngine(names=NAMES)
    ok = PartVerdict(Verdict.OK, T0, "")
    held = PartVerdict(Verdict.QUARANTINE, T0, "deadline passed")
    for i in range(100):
        engine.verdict("p", "m1", held if i % 10 == 0 else ok)
    assert engine.gate.waiting == 0  # 10 % held: normal
    for _ in range(15):
        engine.verdict("p", "m1", held)
    (alarm,) = engine.gate._waiting.values()
    assert alarm.kind == QUARANTINE_RATE and alarm.count >= 5 and alarm.machine == "m1"


def test_backlog_alarm_only_past_the_deadline() -> None:
    assert backlog_alarm("p", 1.0, 10, 2.0, T0) is None
    alarm = backlog_alarm("p", 9.0, 500, 2.0, T0)
    assert alarm is not None and alarm.severity == "critical" and alarm.machine is None


def test_alarm_refuses_what_the_record_cannot_keep() -> None:
    with pytest.raises(ValueError):
        Alarm("p", "m1", None, "x", RULE1, "m", T0, severity="loud")
    with pytest.raises(ValueError):
        Alarm("p", "m1", None, "x", RULE1, "m", datetime(2026, 1, 1))


def test_a_stored_baseline_checks_from_the_first_shot() -> None:
    first = AlarmEngine(names=NAMES)
    feed(first, shots(150))
    ((key, regime, learnt),) = first.learnt
    assert key == ("p", "m1", "D1") and regime == 0
    resumed = AlarmEngine(names=NAMES)
    resumed.use_baseline(key, learnt, regime)
    reports = feed(resumed, shots(20, start=150, melt=lambda i: -40.0))
    assert any(a.kind == RULE1 and a.chart == "melt_temp_c" for a in reports)
    assert resumed.learnt == []  # nothing new was learnt


def test_keys_of_ids_at_their_bound_fit_the_record() -> None:
    long = "m" * 64
    a = Alarm("p" * 64, long, "d" * 64, "melt_temp_c", DRIFT, "x", T0)
    b = Alarm("p" * 64, long, "d" * 63 + "e", "melt_temp_c", DRIFT, "x", T0)
    assert len(a.key) <= 200 and len(b.key) <= 200 and a.key != b.key
    assert Alarm("p", "m1", None, "quarantine", QUARANTINE_RATE, "x", T0).key == (
        "p/m1/-/quarantine/quarantine_rate"
    )


def test_the_ewma_spread_turns_into_its_steady_value_exactly() -> None:
    """Past the first shots the spread is one number: the same, bit for bit, as the
    formula gives at every later shot."""
    for lam in (0.05, 0.2, 0.5):
        for checked in range(0, 400, 7):
            t = checked + np.arange(1, 6)[:, None]
            formula = np.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * t)))
            assert np.array_equal(np.broadcast_to(_ewma_spread(lam, checked, 5), (5, 1)), formula)
