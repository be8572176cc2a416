"""Texts analytics and the line store in English are said in the page's language: an
envelope breach, a die's maintenance advice, the words drawn into charts."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from castline.analytics.benefit import TARGETS, assumptions
from castline.analytics.benefit_measure import PeriodData
from castline.analytics.benefit_plan import BenefitPlan
from castline.analytics.config import AnalyticsConfig
from castline.analytics.maintenance import recommend
from castline.domain.envelope import Breach, describe
from castline.settings import load
from castline.web import benefit_words, charts, die_words
from castline.web.i18n import Translator
from castline.web.plant_time import PlantClock

ZH, EN = Translator("zh"), Translator("en")


def test_each_breach_form_in_both_languages() -> None:
    out = describe(Breach("pressure_bar", 12.3, 812.0, 600.0, 750.0, 4.2))
    assert ZH.breach(out) == (
        "金属压力在距切换点 +12.3 毫秒处超出包络带，持续 4.2 毫秒：812 bar，包络带 600 至 750 bar"
    )
    assert EN.breach(out).startswith("metal pressure left the band +12.3 ms")
    assert ZH.breach(describe(Breach("rate_hz", 0, 2000, 1000, 1000, 0))) == (
        "曲线采样频率 2000 Hz，包络线为 1000 Hz"
    )
    assert ZH.breach(describe(Breach("velocity_mps", 0, math.nan, 0, 0, 0))) == "曲线中没有快压射段"
    assert ZH.breach("something the line says one day") == "something the line says one day"


def test_die_advice_from_the_record_not_the_sentence() -> None:
    action, reason = recommend("D7", 0.93, 1.5, True)
    row = {"die": "D7", "life_used": 0.93, "ng_trend_pct_per_1000": 1.5, "ng_rising": True,
           "action": action, "reason": reason, "rated_life_source": "default",
           "rated_life_shots": 100_000}  # fmt: skip
    said, why = die_words.advise(ZH, row)
    assert said == "下次换模时安排抛光"
    assert why == (
        "模具 D7：已用额定寿命的 93%，不合格率上升 1.5 %/千模次：下次换模时安排抛光"
        "（额定寿命 100,000 模次为默认值：请设置 rated_life_by_die）"
    )
    assert die_words.advise(EN, row)[1].startswith(reason)


def test_chart_clocks_name_the_plant_zone_in_the_page_language() -> None:
    settings = load()
    zh, en = charts.plant_words(ZH, settings), charts.plant_words(EN, settings)
    assert zh.time_axis == f"时间 ({settings.calendar.zone.key})" and zh.baseline == "基准期"
    assert en.time_axis == f"time ({settings.calendar.zone.key})"
    assert zh.parameter("melt_temp_c") == ZH.param("melt_temp_c") != "melt_temp_c"


def period(since: datetime, labour: str, **facts: float) -> PeriodData:
    one = np.ones(2)
    edges = pd.date_range(since, periods=3, freq="D")
    return PeriodData(
        since, since + timedelta(days=2), edges, one, one, labour, one, one, one, one, one,
        one, ["D1"], np.ones((2, 1)), np.zeros((2, 1)),
        facts={"castings_with_truth": 12, "unclassified_h": 1.5, "alarms_with_cause": 0,
               "decided_by_person": 40} | facts,
    )  # fmt: skip


@pytest.mark.parametrize("with_causes", [True, False])
def test_every_assumption_analytics_writes_is_said_in_chinese(with_causes: bool) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    plan = BenefitPlan(start, start + timedelta(days=2), start + timedelta(days=2))
    plan = plan.merged(resamples=200) if with_causes else plan
    clock = PlantClock.of(load())
    sources = ("logged", "declared plan", "castline decisions", "none")
    for b_labour, c_labour in zip(sources, reversed(sources), strict=True):
        b = period(start, b_labour)
        c = period(start + timedelta(days=2), c_labour)
        for sentence in assumptions(b, c, plan, AnalyticsConfig(), ["D1", "D2"], with_causes):
            zh = benefit_words.say(ZH, sentence, clock.show)
            assert zh != sentence and len(re.findall(r"[\u4e00-\u9fff]", zh)) > 8, sentence
            assert not re.search(r"\b(the|of|and|baseline|comparison)\b", zh), zh
            assert benefit_words.say(EN, sentence, clock.show) != sentence  # understood
    said = benefit_words.say(
        ZH, assumptions(b, c, plan, AnalyticsConfig(), [], False)[0], clock.show
    )
    assert "2026-11-01 08:00 CST" in said and "T00:00" not in said  # plant time


def test_each_benefit_unit_in_chinese() -> None:
    for target in TARGETS:
        said = benefit_words.unit(ZH, target.metric, target.unit)
        assert said != target.unit and re.search(r"[\u4e00-\u9fff]", said), target
        assert benefit_words.unit(EN, target.metric, target.unit) == target.unit
