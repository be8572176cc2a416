"""The benefit report's assumptions in the page's language.

`analytics.benefit` lists its assumptions as English sentences (the report, the API, the
CLI keep them so). The benefit page recognises each form, like verdict reasons, and says
it again in English or zh-CN with its times in plant time; a sentence no pattern knows is
shown as written. `tests/web/test_display_words.py` runs every form analytics can write
through here, so a changed sentence fails there, not silently on the page."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from castline.web.i18n import Translator

N = r"[\d.,]+"
FORMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (code, re.compile(pattern))
    for code, pattern in (
        (
            "periods",
            r"periods from the (?P<source>.+?), fixed before this report: baseline (?P<b0>\S+) "
            r"to (?P<b1>\S+), comparison (?P<c0>\S+) to (?P<c1>\S+?)"
            r"(?P<open> \(its end: when the report was made\))?",
        ),
        (
            "bootstrap",
            rf"(?P<resamples>{N}) bootstrap resamples \(seed (?P<seed>\S+)\) of whole "
            rf"(?P<by>\w+)s with production \((?P<nb>{N}) baseline, (?P<nc>{N}) comparison\), "
            r"treated as independent; (?P<confidence>\S+) percentile intervals",
        ),
        ("whole_interval", r"a target is met only when its whole interval clears it"),
        (
            "labour_logged",
            r"inspection hours of the (?P<period>\w+): the labour log \(work: inspection\)",
        ),
        (
            "labour_declared",
            r"inspection hours of the (?P<period>\w+): the declared staffing plan, not measured",
        ),
        (
            "labour_decisions",
            rf"inspection hours of the (?P<period>\w+): (?P<n>{N}) castings a person had to "
            rf"decide x (?P<s>{N}) s \(manual_inspection_s\), other inspection work not counted",
        ),
        (
            "labour_none",
            r"inspection hours of the (?P<period>\w+): none logged or declared: not measurable",
        ),
        (
            "quality",
            r"quality: scrap is the final disposition \(a person's review, else castline's "
            r"verdict, else the ground truth\); escapes are known only where a ground truth "
            rf"was recorded \((?P<bt>{N}) baseline, (?P<ct>{N}) comparison castings\); the "
            r"baseline is standardised to the comparison's mix of dies (?P<dies>.*?)"
            r"(?:; dies in one period only are left out: (?P<only>.*))?",
        ),
        (
            "downtime",
            r"downtime: breakdown stops only, as the machines classified them or a person "
            rf"corrected them; unclassified stops \((?P<bh>{N}) h baseline, (?P<ch>{N}) h "
            r"comparison\) count in planned busy time but not as breakdowns; planned stops "
            r"are outside planned busy time",
        ),
        (
            "management_causes",
            r"management: handling time is the mean time to recovery of breakdowns plus the "
            r"mean time from an alarm to its acknowledgement with a named cause \(alarms "
            r"raised and acknowledged inside the period\)",
        ),
        (
            "management_no_causes",
            r"management: handling time is the mean time to recovery of breakdowns; time to "
            rf"a named cause is left out: (?P<ba>{N}) baseline and (?P<ca>{N}) comparison "
            r"alarms were acknowledged with a cause, and both periods need some to compare",
        ),
    )
)


def say(t: Translator, sentence: str, when: Callable[[datetime], str]) -> str:
    """One assumption in `t`'s language; its times through `when` (plant time)."""
    for code, pattern in FORMS:
        found = pattern.fullmatch(sentence)
        if found is None:
            continue
        fields = {k: v or "" for k, v in found.groupdict().items()}
        for name in ("b0", "b1", "c0", "c1"):
            if name in fields:
                fields[name] = when(datetime.fromisoformat(fields[name]))
        for name, prefix in (("period", "benefit.a.period."), ("by", "benefit.a.by.")):
            if name in fields and t.has(prefix + fields[name]):
                fields[name] = t(prefix + fields[name])
        if "source" in fields:  # "analytics file, command line"
            parts = fields["source"].split(", ")
            keys = ["benefit.a.source." + p.replace(" ", "_") for p in parts]
            said = [t(k) if t.has(k) else p for k, p in zip(keys, parts, strict=True)]
            fields["source"] = t("benefit.a.source_join").join(said)
        if fields.get("open"):
            fields["open"] = t("benefit.a.open")
        if fields.get("only"):
            fields["only"] = t("benefit.a.only", dies=fields["only"])
        return t(f"benefit.a.{code}", **fields)
    return sentence


def unit(t: Translator, metric: str, written: str) -> str:
    """A target's unit in `t`'s language (analytics.benefit.TARGETS), else as written."""
    key = "benefit.u." + metric.replace(" ", "_")
    return t(key) if t.has(key) else written


EN: dict[str, str] = {
    "benefit.a.periods": "Periods from the {source}, fixed before this report: baseline "
    "{b0} to {b1}, comparison {c0} to {c1}{open}.",
    "benefit.a.open": " (its end: when the report was made)",
    "benefit.a.bootstrap": "{resamples} bootstrap resamples (seed {seed}) of whole {by}s with "
    "production ({nb} baseline, {nc} comparison), treated as independent; {confidence} "
    "percentile intervals.",
    "benefit.a.whole_interval": "A target is met only when its whole interval clears it.",
    "benefit.a.labour_logged": "Inspection hours of the {period}: the labour log (work: "
    "inspection).",
    "benefit.a.labour_declared": "Inspection hours of the {period}: the declared staffing "
    "plan, not measured.",
    "benefit.a.labour_decisions": "Inspection hours of the {period}: {n} castings a person had "
    "to decide × {s} s (manual_inspection_s), other inspection work not counted.",
    "benefit.a.labour_none": "Inspection hours of the {period}: none logged or declared, so "
    "not measurable.",
    "benefit.a.quality": "Quality: scrap is the final disposition (a person's review, else "
    "castline's verdict, else the ground truth); escapes are known only where a ground truth "
    "was recorded ({bt} baseline, {ct} comparison castings); the baseline is standardised to "
    "the comparison's mix of dies {dies}{only}.",
    "benefit.a.only": "; dies in one period only are left out: {dies}",
    "benefit.a.downtime": "Downtime: breakdown stops only, as the machines classified them or "
    "a person corrected them; unclassified stops ({bh} h baseline, {ch} h comparison) count in "
    "planned busy time but not as breakdowns; planned stops are outside planned busy time.",
    "benefit.a.management_causes": "Management: handling time is the mean time to recovery of "
    "breakdowns plus the mean time from an alarm to its acknowledgement with a named cause "
    "(alarms raised and acknowledged inside the period).",
    "benefit.a.management_no_causes": "Management: handling time is the mean time to recovery "
    "of breakdowns; time to a named cause is left out: {ba} baseline and {ca} comparison "
    "alarms were acknowledged with a cause, and both periods need some to compare.",
    "benefit.u.inspection_labour": "inspection h per 1,000 castings",
    "benefit.u.downtime": "breakdown share of planned busy time",
    "benefit.u.quality": "scrap + escapes per casting, die mix of the comparison",
    "benefit.u.management_efficiency": "handling h per problem",
    "benefit.a.source.analytics_file": "analytics file",
    "benefit.a.source.command_line": "command line",
    "benefit.a.source_join": ", ",
    "benefit.a.period.baseline": "baseline",
    "benefit.a.period.comparison": "comparison",
    "benefit.a.by.day": "day",
    "benefit.a.by.shift": "shift",
    "benefit.a.by.hour": "hour",
}

ZH: dict[str, str] = {
    "benefit.a.periods": "各期间取自{source}，在本报告之前确定：基准期 {b0} 至 {b1}，"
    "对比期 {c0} 至 {c1}{open}。",
    "benefit.a.open": "（结束时间：生成报告之时）",
    "benefit.a.bootstrap": "以有生产的整{by}为单位做 {resamples} 次自助重抽样（种子 {seed}；"
    "基准期 {nb} 个、对比期 {nc} 个），视为相互独立；{confidence} 百分位置信区间。",
    "benefit.a.whole_interval": "只有整个置信区间都达到目标，才算达成目标。",
    "benefit.a.labour_logged": "{period}的检验工时：来自工时记录（工作：检验）。",
    "benefit.a.labour_declared": "{period}的检验工时：来自申报的人员配置计划，并非实测。",
    "benefit.a.labour_decisions": "{period}的检验工时：需人工判定的 {n} 件铸件 × {s} 秒"
    "（manual_inspection_s），其他检验工作未计入。",
    "benefit.a.labour_none": "{period}的检验工时：既无记录也未申报，无法衡量。",
    "benefit.a.quality": "质量：废品以最终处置为准（人工复检，否则为 castline 的判定，否则为"
    "真实结果）；漏检只在记录了真实结果的铸件上可知（基准期 {bt} 件，对比期 {ct} 件）；"
    "基准期按对比期的模具构成（{dies}）标准化{only}。",
    "benefit.a.only": "；只在一个期间出现的模具不计入：{dies}",
    "benefit.a.downtime": "停机：只计故障停机，按压铸机自报的类别或人工更正；未分类停机"
    "（基准期 {bh} 小时，对比期 {ch} 小时）计入计划负荷时间但不算故障；计划停机不计入"
    "计划负荷时间。",
    "benefit.a.management_causes": "管理效率：处理时间为故障的平均恢复时间，加上报警从发出到"
    "以具名原因确认的平均时间（期间内发出并确认的报警）。",
    "benefit.a.management_no_causes": "管理效率：处理时间为故障的平均恢复时间；未计入确认原因"
    "的时间：基准期 {ba} 条、对比期 {ca} 条报警以具名原因确认，两期都需要有才能比较。",
    "benefit.u.inspection_labour": "每千件铸件的检验工时（小时）",
    "benefit.u.downtime": "故障停机占计划负荷时间的比例",
    "benefit.u.quality": "每件铸件的废品 + 漏检（按对比期的模具构成）",
    "benefit.u.management_efficiency": "每个问题的处理时间（小时）",
    "benefit.a.source.analytics_file": "分析配置文件",
    "benefit.a.source.command_line": "命令行",
    "benefit.a.source_join": "、",
    "benefit.a.period.baseline": "基准期",
    "benefit.a.period.comparison": "对比期",
    "benefit.a.by.day": "天",
    "benefit.a.by.shift": "班次",
    "benefit.a.by.hour": "小时",
}
