"""ISO 22400-2 KPIs against cases computed by hand."""

from __future__ import annotations

import pytest

from castline.domain import kpi


def shift() -> kpi.Elements:
    # One 8 h shift: 6 h producing, 30 min set-up, 2 breakdowns of 30 min in total.
    return kpi.Elements(
        pbt_s=8 * 3600,
        apt_s=6 * 3600,
        setup_s=1800,
        pq=400,
        gq=380,
        sq=20,
        gpq=370,
        planned_run_s=400 * 45,  # PRI 45 s per casting
        failures=2,
        repair_s=1800,
    )


def test_each_kpi_matches_the_hand_computed_value() -> None:
    got = kpi.kpis(shift())
    assert got["availability"] == pytest.approx(0.75)  # 6 h / 8 h
    assert got["effectiveness"] == pytest.approx(18000 / 21600)  # 400 x 45 s / 6 h
    assert got["quality_ratio"] == pytest.approx(0.95)  # 380 / 400
    assert got["oee"] == pytest.approx(0.75 * (18000 / 21600) * 0.95)  # 0.59375
    assert got["oee"] == pytest.approx(0.59375)
    assert got["nee"] == pytest.approx(21600 / 27000 * (18000 / 21600) * 0.95)  # set-up no loss
    assert got["scrap_ratio"] == pytest.approx(0.05)
    assert got["first_pass_yield"] == pytest.approx(0.925)
    assert got["mtbf_s"] == pytest.approx(10800)  # 6 h / 2 failures
    assert got["mttr_s"] == pytest.approx(900)  # 30 min / 2 failures


def test_single_formulas_follow_the_standard() -> None:
    assert kpi.availability(3600, 7200) == 0.5
    assert kpi.effectiveness(pq=100, pri_s=30, apt_s=3600) == pytest.approx(3000 / 3600)
    assert kpi.quality_ratio(90, 100) == 0.9
    assert kpi.first_pass_yield(85, 100) == 0.85
    assert kpi.mtbf(36000, 4) == 9000
    assert kpi.mttr(1200, 4) == 300


def test_undefined_kpis_are_none_not_zero() -> None:
    idle = kpi.kpis(kpi.Elements(pbt_s=3600))
    assert idle["availability"] == 0.0
    assert idle["quality_ratio"] is None
    assert idle["oee"] is None
    assert idle["mtbf_s"] is None


def test_elements_add_up_across_machines() -> None:
    line = shift() + shift()
    assert line.pq == 800 and line.failures == 4
    # adding two identical units leaves every ratio unchanged
    assert kpi.kpis(line) == pytest.approx(kpi.kpis(shift()))
