"""Nelson and Western Electric rules on crafted series, EWMA and CUSUM on a small shift."""

from __future__ import annotations

import numpy as np
import pytest

from castline.domain import spc

# In control: no run, no trend, no alternation longer than a few points, inside 2 sigma.
BASE = np.tile([0.3, -0.4, 1.3, 0.6, -1.2, -0.2, 0.9, -0.7, -1.1, 0.4, 1.6, -0.5], 4).astype(float)

CRAFTED = {
    "nelson1": (20, [3.5]),
    "nelson2": (10, [0.5] * 9),
    "nelson3": (10, [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]),
    "nelson4": (10, [0.5, -0.5] * 7),
    "nelson5": (10, [2.5, 0.0, 2.5]),
    "nelson6": (10, [1.5, 1.5, 0.2, 1.5, 1.5]),
    "nelson7": (10, [0.2, -0.3, 0.1, 0.4, 0.0, -0.2, 0.3, 0.3, -0.1, 0.2, -0.4, 0.1, 0.5, 0.2, 0]),
    "nelson8": (10, [1.5, -1.5, 1.6, 1.7, -1.5, -1.8, 1.5, -1.5]),
    "we1": (20, [-3.2]),
    "we2": (10, [-2.5, -2.2]),
    "we3": (10, [-1.5, -1.5, -1.5, 0.2, -1.5]),
    "we4": (10, [-0.5] * 8),
}


def crafted(rule: str) -> tuple[np.ndarray, int]:
    start, pattern = CRAFTED[rule]
    z = BASE.copy()
    z[start : start + len(pattern)] = pattern
    return z, start + len(pattern) - 1


def all_rules(z: np.ndarray) -> dict[str, np.ndarray]:
    return spc.nelson(z) | spc.western_electric(z)


def test_in_control_series_fires_no_rule() -> None:
    fired = {name: int(flags.sum()) for name, flags in all_rules(BASE).items() if flags.any()}
    assert fired == {}


@pytest.mark.parametrize("rule", sorted(CRAFTED))
def test_rule_fires_where_its_pattern_completes(rule: str) -> None:
    z, end = crafted(rule)
    flags = all_rules(z)[rule]
    assert flags[end], f"{rule} did not fire at {end}"
    assert not flags[: end - len(CRAFTED[rule][1]) + 1].any()  # not before the pattern


def test_individuals_limits_use_the_moving_range() -> None:
    x = np.array([10.0, 12.0, 11.0, 13.0, 12.0])
    limits = spc.individuals_limits(x)
    mr_bar = (2 + 1 + 2 + 1) / 4
    assert limits.center == pytest.approx(11.6)
    assert limits.sigma == pytest.approx(mr_bar / 1.128)
    assert limits.dispersion_ucl == pytest.approx(3.267 * mr_bar, rel=1e-3)


def test_subgroup_limits_agree_with_known_constants() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(50, 2, 5000)
    r = spc.xbar_r_limits(x, 5)
    s = spc.xbar_s_limits(x, 5)
    assert r.sigma * np.sqrt(5) == pytest.approx(2, rel=0.05)
    assert s.sigma * np.sqrt(5) == pytest.approx(2, rel=0.05)
    assert spc.c4(5) == pytest.approx(0.9400, abs=1e-4)
    assert s.dispersion_ucl / s.dispersion_center == pytest.approx(2.089, abs=1e-3)  # B4


@pytest.mark.parametrize("detector", ["ewma", "cusum"])
def test_slow_drift_of_one_sigma_is_caught(detector: str) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, 300)
    x[100:] += 1.0  # a one-sigma shift: too small for the 3-sigma rule
    if detector == "ewma":
        alarm = spc.ewma(x, 0.0, 1.0)[3]
    else:
        _, _, up, down = spc.cusum(x, 0.0, 1.0)
        alarm = up | down
    first = int(np.argmax(alarm))
    assert alarm.any() and 100 <= first < 160
    assert not alarm[:100].any()  # no false alarm while in control


def test_capability_against_spec_limits() -> None:
    x = np.full(10, 700.0)
    cap = spc.capability(x, sigma=5.0, lsl=670.0, usl=740.0)
    assert cap.cp == pytest.approx(70 / 30)
    assert cap.cpk == pytest.approx(30 / 15)  # nearer limit: 670 is 30 away
    one_sided = spc.capability(x, sigma=5.0, lsl=None, usl=715.0)
    assert one_sided.cp is None and one_sided.cpk == pytest.approx(1.0)


def test_onset_of_a_drift_is_the_cusum_change_point() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, 300)
    x[100:] += 1.0
    c_up, c_down, up, _ = spc.cusum(x, 0.0, 1.0)
    first = int(np.argmax(up))
    began = spc.onset("cusum_up", first, c_up, c_down, x)
    assert 90 <= began <= 110 < first  # found near shot 100, before the alarm
    assert spc.onset("ewma", first, c_up, c_down, x) == began  # same change point, upward


def test_onset_of_a_pattern_rule_is_where_the_pattern_starts() -> None:
    z, end = crafted("nelson2")
    zeros = np.zeros_like(z)
    assert spc.onset("nelson2", end, zeros, zeros, z) == CRAFTED["nelson2"][0]
