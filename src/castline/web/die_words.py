"""A die's maintenance advice in the page's language, in English and zh-CN.

`analytics.maintenance` writes its action and reason in English for reports; the dies
page says them again from the figures the same record carries (life used, NG trend,
where the rated life came from), so nothing is parsed back out of a sentence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from castline.web.i18n import Translator

ACTIONS = {  # analytics' action -> its id here
    "maintain now: rated life exceeded": "maintain_now",
    "plan polish at next setup": "plan_polish",
    "no action": "none",
}


def advise(t: Translator, die: Mapping[str, Any]) -> tuple[str, str]:
    """(action, why) of one row of `maintenance.dies_report`, in `t`'s language."""
    code = ACTIONS.get(str(die["action"]))
    if code is None:  # an action this page does not know: as analytics said it
        return str(die["action"]), str(die["reason"])
    action = t(f"die.action.{code}")
    why = [t("die.why.life", die=die["die"], used=f"{float(die['life_used']):.0%}")]
    if die.get("ng_rising") and die.get("ng_trend_pct_per_1000") is not None:
        why.append(t("die.why.rising", slope=f"{die['ng_trend_pct_per_1000']:.1f}"))
    said = t("die.why.join").join(why) + t("die.why.then", action=action)
    if die.get("rated_life_source") == "default":
        said += t("die.why.default", rated=f"{int(die['rated_life_shots']):,}")
    return action, said


EN: dict[str, str] = {
    "die.action.maintain_now": "maintain now: rated life exceeded",
    "die.action.plan_polish": "plan polish at next setup",
    "die.action.none": "no action",
    "die.why.life": "die {die}: {used} of rated life",
    "die.why.rising": "NG rate rising {slope} %/1000 shots",
    "die.why.join": ", ",
    "die.why.then": ": {action}",
    "die.why.default": " (rated life {rated} shots is a default: set rated_life_by_die)",
}

ZH: dict[str, str] = {
    "die.action.maintain_now": "立即保养：已超过额定寿命",
    "die.action.plan_polish": "下次换模时安排抛光",
    "die.action.none": "无需处理",
    "die.why.life": "模具 {die}：已用额定寿命的 {used}",
    "die.why.rising": "不合格率上升 {slope} %/千模次",
    "die.why.join": "，",
    "die.why.then": "：{action}",
    "die.why.default": "（额定寿命 {rated} 模次为默认值：请设置 rated_life_by_die）",
}
