"""SPC that does not cry wolf: sigma floor, set-point regimes, Cpk only where it holds,
one alarm per chart and rule, and "the baseline does not fit" instead of a flood."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from castline.analytics import alarms, spc
from castline.domain import spc as rules
from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.store import database
from castline.store.repository import Store

from .plant import DAY


def times(n: int) -> pd.DatetimeIndex:
    return pd.date_range(DAY, periods=n, freq="min")


def test_resolution_is_the_smallest_step_between_readings() -> None:
    assert rules.resolution(np.array([700.0, 702.0, 701.0, 701.0, np.nan])) == 1.0
    assert rules.resolution(np.array([109.0, 110.0]) * 0.001) == pytest.approx(0.001)
    assert rules.resolution(np.full(5, 3.0)) == 0.0


def test_a_constant_baseline_does_not_make_every_step_an_alarm() -> None:
    # KAMP slow shot: 0.109 for the whole baseline, then the reading moves one step.
    x = np.full(1000, 0.109)
    x[600::2] = 0.110
    chart = spc.build_chart("slow_shot_velocity_mps", times(1000), x, baseline_shots=500)
    assert chart.sigma_floor == pytest.approx(0.001)
    assert chart.limits.sigma == pytest.approx(0.001)  # was 1e-12: limits 0.109..0.109
    assert not chart.fired["nelson1"].any()


def test_limits_follow_a_set_point_change() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate((rng.normal(207, 2, 300), rng.normal(120, 2, 1700))).round()
    chart = spc.build_chart("die_temp_moving_c", times(2000), x, baseline_shots=500)
    assert [(r.start, r.stop) for r in chart.regimes] == [(0, 300), (300, 2000)]
    assert chart.limits.center == pytest.approx(120, abs=1)  # where it runs, not 207
    assert chart.regimes[0].baseline == 300 and chart.regimes[1].baseline == 500
    summary = chart.summary()
    assert summary["rules"]["level_shift"]["first_at"] == times(2000)[300].isoformat()
    assert summary["misfit"] is None
    assert chart.hits("nelson1").size < 20  # noise only, not 1,700 points off centre


def test_a_wandering_process_or_a_small_shift_stays_one_regime() -> None:
    rng = np.random.default_rng(8)
    wander = np.zeros(3000)
    noise = rng.normal(0, 1, 3000)
    for i in range(1, 3000):
        wander[i] = 0.9 * wander[i - 1] + noise[i]
    assert rules.regimes(wander) == [(0, 3000)]
    small = rng.normal(0, 1, 1000)
    small[500:] += 1.5  # a drift for CUSUM to catch, not a new set-point
    assert rules.regimes(small) == [(0, 1000)]


def test_single_shots_report_ppk_and_rational_subgroups_cpk() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(700, 5, 2000)
    single = spc.build_chart("melt_temp_c", times(2000), x, baseline_shots=500, lsl=650, usl=750)
    s = single.summary()
    assert s["cpk"] is None and s["capability_index"] == "Ppk"
    assert s["ppk"] == pytest.approx(50 / 15, rel=0.1)
    grouped = spc.build_chart(
        "melt_temp_c", times(2000), x, baseline_shots=500, subgroup=5, lsl=650, usl=750
    ).summary()
    assert grouped["capability_index"] == "Cpk"
    assert grouped["cpk"] == pytest.approx(grouped["ppk"], rel=0.15)


def test_cpk_is_withheld_when_subgroups_miss_the_variation() -> None:
    # Temperature that wanders slowly: five shots in a row barely differ, so Cpk from the
    # within-subgroup sigma would be many times Ppk (the issue saw 85 against 1.09).
    rng = np.random.default_rng(2)
    slow = np.repeat(rng.normal(200, 10, 400), 5) + rng.normal(0, 0.3, 2000).round(1)
    chart = spc.build_chart(
        "die_temp_fixed_c", times(2000), slow, baseline_shots=500, subgroup=5, lsl=100, usl=320
    )
    s = chart.summary()
    assert s["cpk"] is None and s["capability_index"] == "Ppk"
    assert "within-subgroup sigma" in s["capability_note"]
    assert 2 < s["ppk"] < 5


def record(engine: Engine, values: np.ndarray) -> None:
    database.upgrade(engine)
    store = Store(engine)
    store.ensure_machine("p1", Machine("m7"))
    store.record_shots(
        [
            Shot(PartKey("p1", "m7", i), "8412", DAY + timedelta(minutes=i), {"melt_temp_c": v})
            for i, v in enumerate(values.tolist())
        ]
    )


def test_a_baseline_that_does_not_fit_is_one_finding_not_a_flood(engine: Engine) -> None:
    # A baseline far quieter than the process (taken while it idled): rule 1 fires on
    # most later points. The report says the baseline does not fit, and raises no rule
    # alarm; asked for, it is one "baseline_misfit" alarm.
    rng = np.random.default_rng(3)
    x = np.concatenate((rng.normal(700, 0.2, 500), rng.normal(700, 5, 1000))).round(2)
    record(engine, x)
    (chart,) = spc.monitor(engine, "p1", parameters=("melt_temp_c",), baseline_shots=500)
    assert chart["misfit"] is not None and "do not describe this process" in chart["misfit"]
    assert chart["rules"]["nelson1"]["count"] > 800 and chart["alarms"] == []
    rules = (*spc.DEFAULT_RULES, "baseline_misfit")
    (chart,) = spc.monitor(engine, "p1", parameters=("melt_temp_c",), rules=rules)
    assert [a["rule"] for a in chart["alarms"]] == ["baseline_misfit"]
    (alarm,) = alarms.listing(engine, "p1")
    assert "baseline does not fit" in alarm["message"]


def test_alarms_are_ranked_worst_first(sqlite_engine: Engine) -> None:
    # A set-point change (warning: inside the spec) and, after it, readings beyond
    # 3 sigma that leave the spec (critical): the critical one comes first.
    rng = np.random.default_rng(4)
    x = rng.normal(700, 1.5, 1500)
    x[700:] += 30
    x[1300:1340] = 760  # above the default melt spec of 750
    record(sqlite_engine, x.round(1))
    (chart,) = spc.monitor(sqlite_engine, "p1", parameters=("melt_temp_c",), baseline_shots=500)
    assert [(a["rule"], a["severity"]) for a in chart["alarms"]] == [
        ("nelson1", "critical"),
        ("level_shift", "warning"),
    ]
    (changes,) = [a for a in alarms.listing(sqlite_engine, "p1") if a["rule"] == "level_shift"]
    assert changes["subject"] == "set_points" and "700 -> 7" in changes["message"]
