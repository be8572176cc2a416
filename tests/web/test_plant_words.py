"""The plant's words: every stored reason the line writes is understood and phrased for the
operator in both languages; parameters, defects and alarms in Chinese; the heat map's
scale on the page is the one the line draws with."""

from __future__ import annotations

from pathlib import Path

import pytest

from castline.domain.defects import DEFAULT_CATALOGUE
from castline.domain.spc import RULE_TEXT
from castline.domain.units import PARAMETERS
from castline.web import heat_legend
from castline.web.alarm_text import alarm_text
from castline.web.i18n import ZH, Translator
from castline.web.reasons import ReasonCode, understand
from castline.web.review_page import beyond_score

STATIC = Path(heat_legend.__file__).parent / "static"

# Each machine text as line/, messaging/opcua_cell.py write it, and its code.
STORED = [
    ("score 0.913", ReasonCode.SCORE, {"score": "0.913"}),
    ("deadline passed 3.4 s before inspection started", ReasonCode.LATE_START, {"late": "3.4"}),
    ("deadline passed: inspection took over 0.29 s", ReasonCode.TOO_SLOW, {"budget": "0.29"}),
    ("die unknown: no shot or state message named the mounted die yet", ReasonCode.DIE_UNKNOWN, {}),
    (
        "model for die D1, view front failed to load: bad manifest",
        ReasonCode.MODEL_FAILED,
        {"die": "D1", "view": "front", "detail": "bad manifest"},
    ),
    ("no active model for die D7, view top", ReasonCode.NO_MODEL, {"die": "D7", "view": "top"}),
    ("inspection failed: out of memory", ReasonCode.INSPECTION_FAILED, {"detail": "out of memory"}),
    ("warm-up (trial) shot: scrapped by rule", ReasonCode.TRIAL, {}),
    ("photo refused: not a JPEG", ReasonCode.PHOTO_REFUSED, {"detail": "not a JPEG"}),
    ("no casting image within 30 s of the shot", ReasonCode.NO_PHOTO, {"window": "30"}),
    (
        "only 1 of 2 views within 30 s of the shot (front)",
        ReasonCode.VIEWS_MISSING,
        {"came": "1", "expected": "2", "window": "30", "views": "front"},
    ),
    (
        "worst of 2 views (front, side): side: score 0.913",
        ReasonCode.WORST_VIEW,
        {"count": "2", "views": "front, side", "view": "side", "inner": "score 0.913"},
    ),
    ("no verdict within 2 s at the robot cell", ReasonCode.CELL_TIMEOUT, {"deadline": "2"}),
    (
        "no verdict within 2 s at the robot cell (verdict journal unreachable)",
        ReasonCode.CELL_TIMEOUT_JOURNAL,
        {"deadline": "2"},
    ),
]


@pytest.mark.parametrize(("stored", "code", "fields"), STORED)
def test_every_stored_reason_is_understood_and_written_for_the_line(
    stored: str, code: ReasonCode, fields: dict[str, str]
) -> None:
    understood = understand(stored)
    assert (understood.code, understood.fields) == (code, fields)
    english, chinese = Translator("en").reason(stored), Translator("zh").reason(stored)
    assert english != stored and chinese != stored
    for name, value in fields.items():  # the figures survive; a view's own reason, phrased
        in_en = Translator("en").reason(value) if name == "inner" else value
        in_zh = Translator("zh").reason(value) if name == "inner" else value
        assert in_en in english and in_zh in chinese
    assert any("\u4e00" <= c <= "\u9fff" for c in chinese)


def test_every_reason_code_has_a_pattern() -> None:
    assert {code for _, code, _ in STORED} == set(ReasonCode)


def test_the_reason_the_issue_quoted_reads_right() -> None:
    stored = "deadline passed: inspection took over 0.29 s"
    assert (
        Translator("en")
        .reason(stored)
        .startswith("Not inspected in time: the inspection did not finish in the 0.29 s left")
    )
    assert Translator("zh").reason(stored).startswith("检测超时")


def test_the_deciding_view_s_own_reason_is_phrased_too() -> None:
    stored = "worst of 2 views (front, side): side: no active model for die D2, view side"
    english, chinese = Translator("en").reason(stored), Translator("zh").reason(stored)
    assert english.startswith("The worst of its 2 views (front, side) decides. View side:")
    assert english.endswith(Translator("en").reason("no active model for die D2, view side"))
    assert chinese.endswith(Translator("zh").reason("no active model for die D2, view side"))
    assert "视角 side" in chinese
    unknown = "worst of 2 views (front, side): side: a newer reason"
    assert Translator("zh").reason(unknown).endswith("a newer reason")  # shown as stored
    assert Translator("en").reason("worst of 2 views (front, side): side:").endswith("—")


def test_an_unknown_reason_is_shown_as_stored() -> None:
    assert Translator("zh").reason("a reason from a newer line") == "a reason from a newer line"
    assert Translator("en").reason(None) == "—"
    assert understand("score 0.5 and more").code is None  # anchored: no partial matches
    assert beyond_score("score 0.912") == ""  # the queue prints the score already
    assert beyond_score("no active model for die D1, view top") != ""


def test_parameters_defects_and_rules_all_have_chinese_names() -> None:
    zh = Translator("zh")
    missing = [p.name for p in PARAMETERS if f"param.{p.name}" not in ZH]
    missing += [d.code for d in DEFAULT_CATALOGUE if f"defect.{d.code}" not in ZH]
    missing += [rule for rule in RULE_TEXT if f"rule.{rule}" not in ZH]
    assert missing == [], "add the Chinese words to castline/web/vocabulary.py"
    assert [zh.defect(c) for c in ("gas_porosity", "shrinkage_porosity", "cold_shut")] == [
        "气孔",
        "缩孔（缩松）",
        "冷隔",
    ]
    assert zh.defect("flash") == "飞边（毛刺）" and zh.defect("crack") == "裂纹（热裂）"
    assert zh.param("intensification_pressure_bar") == "增压压力"
    assert zh.param("plant_own_parameter") == "plant_own_parameter"
    assert Translator("en").defect("new_defect") == "new defect"


def test_an_alarm_in_chinese_keeps_its_figures() -> None:
    alarm = {
        "subject": "melt_temp_c",
        "rule": "nelson1",
        "message": "melt temperature on m1/D1: one point beyond 3 sigma (4x, began about "
        "2026-11-30T01:00:00+00:00, last 2026-11-30T02:00:00+00:00); centre 662.1 °C, "
        "limits 640.2..684",
    }
    chinese = alarm_text(Translator("zh"), alarm)
    assert chinese.title == "铝液温度 · 单点超出 3σ 控制限"
    assert chinese.detail == "中心线 662.1 °C，控制限 640.2 – 684"
    assert chinese.stored == alarm["message"]
    english = alarm_text(Translator("en"), alarm)
    assert english.title == "Melt temperature · one point beyond 3 sigma"
    assert english.detail == alarm["message"]
    risk = alarm | {
        "subject": "scrap_risk",
        "rule": "scrap_risk",
        "message": "die D1 on m1: predicted scrap risk 12.5% over the last 50 shots, 3.1x the "
        "recent NG rate 4.0%",
    }
    said = alarm_text(Translator("zh"), risk)
    assert said.title == "废品风险 · 预测废品风险上升"
    assert said.detail == "最近 50 模次的预测废品风险 12.5%，是近期检出不良率 4.0% 的 3.1 倍"
    odd = alarm_text(Translator("zh"), alarm | {"rule": "nelson_9", "message": "free text"})
    assert odd.title == "铝液温度 · nelson_9" and odd.detail == ""


def test_the_pages_colour_scale_is_the_one_the_line_draws() -> None:
    css = (STATIC / "style.css").read_text()
    assert heat_legend.GRADIENT in css  # regenerate the .heat-bar line if the blend changes
    numbered = heat_legend.legend([], 0.8)
    assert numbered.full == pytest.approx(1.2) and numbered.regions == ()


LIVE = [  # each live alarm form as the line and report spc store it, and its Chinese detail
    (
        {"subject": "set_points", "rule": "level_shift"},
        "die D1 runs at a new level (die_temp_fixed_c 205.1 -> 115, melt_temp_c 662 -> 640): "
        "a set-point change or a sustained fault; limits are learnt anew from the next 200 "
        "shots",
        "模具 D1 运行在新的水平：定模温度 205.1 → 115、铝液温度 662 → 640；控制限由之后 200 "
        "模次重新计算",
    ),
    (
        {"subject": "quarantine", "rule": "quarantine_rate"},
        "35% of the last 50 parts of m1 held in QUARANTINE (limit 20%); latest: no casting "
        "image within 30 s of the shot",
        "m1 最近 50 个铸件中 35% 被隔离（上限 20%）；最近一件：压射后 30 秒内未收到铸件照片。"
        "请人工检查铸件。",
    ),
    (
        {"subject": "line", "rule": "backlog"},
        "the line is behind: the oldest message waits 42 s (verdict deadline 5 s), 310 "
        "waiting; parts go to QUARANTINE. Run fewer machines or a lower speed, or add line "
        "workers.",
        "产线落后：最早的消息已等待 42 秒（判定时限 5 秒），310 条待处理，铸件将被隔离",
    ),
    (
        {"subject": "process", "rule": "out_of_control"},
        "die 8722: 2 reading(s) out of control (die_temp_fixed_c, melt_temp_c): melt "
        "temperature on m1/8722: one point beyond 3 sigma (4x, began about "
        "2019-03-08T01:00:00+00:00, last 2019-03-08T02:00:00+00:00); centre 662.1 °C, "
        "limits 640.2..684",
        "模具 8722：2 项工艺参数失控（定模温度、铝液温度）",
    ),
]


@pytest.mark.parametrize(("codes", "stored", "chinese"), LIVE)
def test_live_alarms_say_their_figures_in_chinese(
    codes: dict[str, str], stored: str, chinese: str
) -> None:
    said = alarm_text(Translator("zh"), codes | {"message": stored})
    assert said.detail == chinese and said.stored == stored
    assert any("\u4e00" <= c <= "\u9fff" for c in said.title)
    assert alarm_text(Translator("en"), codes | {"message": stored}).detail == stored


def test_a_velocity_in_source_units_keeps_its_figures_in_chinese() -> None:
    alarm = {
        "subject": "fast_shot_velocity_mps",
        "rule": "nelson1",
        "message": "fast shot (second phase) velocity on die-8917/8917: one point beyond 3 "
        "sigma (4x, began about 2019-03-08T01:00:00+00:00, last 2019-03-08T02:00:00+00:00); "
        "centre 0.1121 source units, limits 0.1043..0.12",
    }
    said = alarm_text(Translator("zh"), alarm)
    assert said.detail == "中心线 0.1121 源数据单位，控制限 0.1043 – 0.12"
