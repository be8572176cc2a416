"""The benefit report through the real database: periods, intervals, verdicts, mix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from castline.analytics import benefit
from castline.analytics.benefit_plan import BenefitPlan, PlanError
from castline.analytics.config import AnalyticsConfig

from .history import START, Regime, record

BASE_DAYS = COMP_DAYS = 10
GO_LIVE = START + timedelta(days=BASE_DAYS)


def plan(**kw: object) -> BenefitPlan:
    given: dict[str, object] = {
        "baseline_since": START,
        "baseline_until": GO_LIVE,
        "since": GO_LIVE,
        "until": GO_LIVE + timedelta(days=COMP_DAYS),
        "resamples": 500,
    }
    return BenefitPlan(**(given | kw))  # type: ignore[arg-type]


def rows(result: dict[str, object]) -> dict[str, dict[str, object]]:
    return {r["metric"]: r for r in result["rows"]}  # type: ignore[attr-defined,index]


def test_verdict_needs_the_whole_interval() -> None:
    assert benefit.verdict(-80, -55, -50) == "met"
    assert benefit.verdict(-80, -40, -50) == "inconclusive"
    assert benefit.verdict(-30, -10, -50) == "not met"
    assert benefit.verdict(6, 9, 5) == "met" and benefit.verdict(4, 9, 5) == "inconclusive"
    assert benefit.verdict(None, None, 5) == "no data"
    # a change seen, but too few events to resample an interval: not proven either way
    assert benefit.verdict(None, None, 20, observed=15.7) == "inconclusive"


def test_report_measures_both_periods_with_intervals(engine: Engine) -> None:
    n = record(engine, START, Regime(BASE_DAYS, 2.0, 0.5, 0.04, 0.2, True, 60.0), 1)
    record(engine, GO_LIVE, Regime(COMP_DAYS, 0.5, 0.5, 0.02, 0.1, False, 40.0), n)
    result = benefit.report(engine, "p1", plan(), AnalyticsConfig())
    got = rows(result)
    down = got["downtime"]
    assert down["change_pct"] == pytest.approx(-75, abs=1)  # 2 h -> 0.5 h a day
    assert down["low_pct"] <= down["change_pct"] <= down["high_pct"] <= -50
    assert down["verdict"] == "met" and down["met"] is True
    labour = got["inspection labour"]
    assert result["baseline"]["labour_source"] == "logged"
    assert labour["verdict"] in ("met", "inconclusive") and labour["change_pct"] < -15
    quality = got["quality"]  # bad rate halved on both dies: +50 %, escapes included
    assert quality["change_pct"] == pytest.approx(50, abs=8) and quality["verdict"] == "met"
    mgmt = got["management efficiency"]  # recovery 2 h -> 0.5 h: +300 %
    assert mgmt["change_pct"] == pytest.approx(300, abs=10)
    assert mgmt["low_pct"] == mgmt["high_pct"]  # every breakdown alike: no spread
    assert result["plan"]["since"] == GO_LIVE.isoformat()
    assert any(
        "unclassified stops (74.0 h baseline" in a for a in result["assumptions"]
    )  # import gaps
    again = benefit.report(engine, "p1", plan(), AnalyticsConfig())
    assert again["rows"] == result["rows"]  # seeded: the same figures every time


def test_quality_is_standardised_to_the_die_mix(engine: Engine) -> None:
    """Per-die bad rates do not change; only the mix moves to the better die. A crude
    scrap ratio would claim a large gain; the standardised one shows none."""
    n = record(engine, START, Regime(BASE_DAYS, 1.0, 0.5, 0.02, 0.2, False), 1)
    record(engine, GO_LIVE, Regime(COMP_DAYS, 1.0, 0.9, 0.02, 0.2, False), n)
    result = benefit.report(engine, "p1", plan(), AnalyticsConfig())
    quality = rows(result)["quality"]
    crude_base = result["baseline"]["scrap"] / result["baseline"]["castings"]
    crude_now = result["current"]["scrap"] / result["current"]["castings"]
    assert (1 - crude_now / crude_base) * 100 > 40  # what a crude comparison would claim
    assert quality["change_pct"] == pytest.approx(0, abs=6)
    assert quality["verdict"] != "met"


def test_period_is_honoured(engine: Engine) -> None:
    """Days outside the declared periods change nothing."""
    n = record(engine, START, Regime(BASE_DAYS, 2.0, 0.5, 0.04, 0.2, False), 1)
    n = record(engine, GO_LIVE, Regime(COMP_DAYS, 0.5, 0.5, 0.02, 0.1, False), n)
    first = benefit.report(engine, "p1", plan(), AnalyticsConfig())
    later = GO_LIVE + timedelta(days=COMP_DAYS + 1)
    record(engine, later, Regime(3, 6.0, 0.1, 0.5, 0.5, False), n)
    second = benefit.report(engine, "p1", plan(), AnalyticsConfig())
    assert second["rows"] == first["rows"]
    shorter = benefit.report(
        engine, "p1", plan(baseline_since=START + timedelta(days=5)), AnalyticsConfig()
    )
    assert shorter["baseline"]["castings"] == first["baseline"]["castings"] / 2
    assert shorter["plan"]["baseline_since"] == (START + timedelta(days=5)).isoformat()


def test_no_baseline_data_gives_no_verdict(engine: Engine) -> None:
    record(engine, GO_LIVE, Regime(COMP_DAYS, 0.5, 0.5, 0.02, 0.1, False), 1)
    result = benefit.report(engine, "p1", plan(), AnalyticsConfig())
    assert {r["verdict"] for r in result["rows"]} == {"no data"}
    assert not any(r["met"] for r in result["rows"])
    assert "not measurable" in " ".join(result["assumptions"])


def test_plan_must_fix_periods_apart() -> None:
    with pytest.raises(PlanError, match="since"):
        benefit.periods(BenefitPlan(baseline_since=START, baseline_until=GO_LIVE))
    overlapping = plan(since=GO_LIVE - timedelta(days=1))
    with pytest.raises(PlanError, match="after the baseline"):
        benefit.periods(overlapping)
    with pytest.raises(ValueError, match=r"benefit\.resample_by"):
        AnalyticsConfig.from_dict({"benefit": {"resample_by": "week"}})
    with pytest.raises(ValueError, match="has no zone"):
        AnalyticsConfig.from_dict({"benefit": {"since": "2026-03-02T00:00:00"}})
