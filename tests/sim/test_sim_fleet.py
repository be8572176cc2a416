"""The fleet model: deterministic under a seed, states and warm-up, causal defect rules."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice

import numpy as np

from castline.domain.states import MachineState
from castline.sim.calibration import PROFILES
from castline.sim.fleet import FleetConfig, Hall, ShotEvent, StateEvent
from castline.sim.process import ProcessModel
from castline.sim.rules import DieCondition, judge

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def shots_until(config: FleetConfig, hours: float) -> list[ShotEvent]:
    end = START + timedelta(hours=hours)
    out = []
    for event in Hall(config, START).events():
        if event.at > end:
            break
        if isinstance(event, ShotEvent):
            out.append(event)
    return out


def test_same_seed_same_hall_other_seed_other_hall() -> None:
    a = list(islice(Hall(FleetConfig(machines=4, seed=5), START).events(), 400))
    b = list(islice(Hall(FleetConfig(machines=4, seed=5), START).events(), 400))
    c = list(islice(Hall(FleetConfig(machines=4, seed=6), START).events(), 400))
    assert a == b
    assert a != c


def test_events_are_in_time_order_and_shot_numbers_count_up_per_machine() -> None:
    events = list(islice(Hall(FleetConfig(machines=5, first_shot=100), START).events(), 2000))
    times = [e.at for e in events]
    assert times == sorted(times)
    by_machine: dict[str, list[int]] = {}
    for e in events:
        if isinstance(e, ShotEvent):
            by_machine.setdefault(e.machine, []).append(e.shot_number)
    assert len(by_machine) == 5
    for numbers in by_machine.values():
        assert numbers == list(range(100, 100 + len(numbers)))


def test_cycle_times_follow_each_machines_nominal_time() -> None:
    shots = shots_until(FleetConfig(machines=3, cycle_time_s=(40.0, 40.0)), 6)
    gaps = []
    last: dict[str, ShotEvent] = {}
    for s in shots:
        if s.machine in last:
            gaps.append((s.at - last[s.machine].at).total_seconds())
        last[s.machine] = s
    median = float(np.median(gaps))
    assert 36 < median < 44  # the KAMP spread, scaled to 40 s
    reported = [s.params["cycle_time_s"] for s in shots if s.params["cycle_time_s"]]
    assert 36 < float(np.median(reported)) < 44


def test_a_machine_starts_cold_with_trial_shots_in_setup_then_runs() -> None:
    events = list(islice(Hall(FleetConfig(machines=1), START).events(), 30))
    assert isinstance(events[0], StateEvent) and events[0].state is MachineState.SETUP
    shots = [e for e in events if isinstance(e, ShotEvent)]
    trials = [s.trial for s in shots]
    first_good = trials.index(False)
    assert first_good >= 2 and not any(trials[first_good:])
    running = next(
        e for e in events if isinstance(e, StateEvent) and e.state is MachineState.RUNNING
    )
    assert running.at == shots[first_good - 1].at  # warm-up ends with the last try shot


def test_stops_of_every_kind_happen_and_are_followed_by_a_restart() -> None:
    config = FleetConfig(machines=3, mtbf_h=2, idle_every_h=2, planned_stop_every_h=3)
    states = Counter()
    end = START + timedelta(hours=24)
    for event in Hall(config, START).events():
        if event.at > end:
            break
        if isinstance(event, StateEvent):
            states[event.state] += 1
    for state in (MachineState.BREAKDOWN, MachineState.IDLE, MachineState.PLANNED_STOP):
        assert states[state] >= 3
    assert states[MachineState.RUNNING] >= states[MachineState.BREAKDOWN]


def test_defect_rate_is_in_the_range_of_the_real_line() -> None:
    shots = shots_until(FleetConfig(machines=9), 24)
    rate = sum(s.truth.defective for s in shots) / len(shots)
    assert 0.01 < rate < 0.12


def _rates(offsets: dict[str, float], die: DieCondition, n: int = 3000) -> Counter[str]:
    rng = np.random.default_rng(0)
    process = ProcessModel(PROFILES[0], rng, cycle_time_s=60)
    found: Counter[str] = Counter()
    for _ in range(n):
        truth = judge(process, process.next_shot(offsets), die, 0.01, rng)
        found[truth.defect_type or "good"] += 1
    return found


def test_cold_die_raises_cold_shut_and_misrun() -> None:
    healthy = DieCondition(0.3, False)
    normal = _rates({}, healthy)
    cold = _rates({"die_temp_fixed_c": -150.0, "die_temp_moving_c": -150.0}, healthy)
    cold_defects = cold["cold_shut"] + cold["misrun"]
    assert cold_defects > 10 * max(1, normal["cold_shut"] + normal["misrun"])
    assert cold_defects > 0.1 * 3000


def test_cold_melt_raises_cold_shut_and_misrun() -> None:
    healthy = DieCondition(0.3, False)
    cold = _rates({"melt_temp_c": -45.0}, healthy)
    assert cold["cold_shut"] + cold["misrun"] > 0.1 * 3000


def test_lost_vacuum_raises_gas_porosity() -> None:
    healthy = DieCondition(0.3, False)
    assert (
        _rates({"vacuum_mbar": 500.0}, healthy)["gas_porosity"]
        > 5 * _rates({}, healthy)["gas_porosity"]
    )


def test_weak_intensification_raises_shrinkage() -> None:
    healthy = DieCondition(0.3, False)
    weak = _rates({"intensification_pressure_bar": -80.0}, healthy)
    assert weak["shrinkage_porosity"] > 0.2 * 3000


def test_worn_die_makes_flash_and_damaged_die_makes_marks_and_cracks() -> None:
    assert _rates({}, DieCondition(1.3, False))["flash"] > 0.05 * 3000
    assert _rates({}, DieCondition(0.3, False))["flash"] == 0
    damaged = _rates({}, DieCondition(0.3, True))
    assert damaged["die_mark"] > 0.08 * 3000
    assert damaged["crack"] > 0.02 * 3000


def test_a_healthy_process_defects_only_at_about_the_base_rate() -> None:
    found = _rates({}, DieCondition(0.3, False), n=5000)
    assert (5000 - found["good"]) / 5000 < 0.03


def test_die_damage_lasts_until_repair() -> None:
    config = FleetConfig(machines=1, die_damage_every_h=3, maintenance_after_h=1)
    events = []
    end = START + timedelta(hours=24)
    for event in Hall(config, START).events():
        if event.at > end:
            break
        events.append(event)
    repairs = [e for e in events if isinstance(e, StateEvent) and e.reason == "die repair"]
    assert repairs
    marks = [e for e in events if isinstance(e, ShotEvent) and e.truth.cause == "damaged die"]
    assert marks
    # No damage-caused defect right after a repair, before the next damage can start.
    assert all(not (r.at <= m.at < r.at + timedelta(minutes=30)) for r in repairs for m in marks)


def test_sensor_dropouts_happen_at_the_calibrated_rate() -> None:
    profile = PROFILES[0]
    rng = np.random.default_rng(1)
    process = ProcessModel(profile, rng, cycle_time_s=60)
    name = max(profile.params, key=lambda n: profile.params[n].dropout)
    rate = profile.params[name].dropout
    n = 20000
    lost = sum(process.readings(process.next_shot({}))[name] in (None, 0.0) for _ in range(n))
    assert abs(lost / n - rate) < 4 * np.sqrt(rate * (1 - rate) / n) + 1e-3
