"""Why an action was refused, in English and zh-CN (merged into the catalogues of
`web/i18n.py`): one id per `ActionError.code` of `web/actions.py`. The API answers the
English message; a page says it in its language."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from castline.web.i18n import Translator

# What the access checks of web/auth.py and the router say, as an error page shows it.
PAGE_ERRORS = (
    ("needs_role", re.compile(r"this needs the (?P<role>\w+) role or higher")),
    ("no_plant", re.compile(r"you have no access to plant '(?P<plant>[^']*)'")),
    ("csrf", re.compile(r"CSRF token missing or wrong.*")),
)


def page_error(t: Translator, detail: str) -> str:
    """An HTTP error's detail in `t`'s language; a detail no pattern knows as it is."""
    for code, pattern in PAGE_ERRORS:
        if (found := pattern.fullmatch(detail)) is not None:
            fields = found.groupdict()
            if "role" in fields:
                fields["role"] = t(f"role.{fields['role']}")
            return t(f"refusal.{code}", **fields)
    return detail


EN: dict[str, str] = {
    "refusal.no_part": "castline has no record of part {key}.",
    "refusal.no_machine": "Plant {plant} has no machine {machine}.",
    "refusal.part_key": "{key} is not a part key: write plant/machine/shot, e.g. p1/m1/1234.",
    "refusal.decision": "Choose OK or NG.",
    "refusal.ng_needs_defect": "Name the defect type of an NG part.",
    "refusal.unknown_defect": "Unknown defect type {defect}: pick one from the list.",
    "refusal.reviewed": "Part {key} was reviewed already.",
    "refusal.no_plant": "You have no access to plant {plant}.",
    "refusal.no_alarm": "Alarm {alarm} not found.",
    "refusal.name_cause": "Name the cause: pick one from the list.",
    "refusal.say_cause": "Say in the comment what caused it and what was done.",
    "refusal.acked": "Alarm {alarm} was acknowledged already.",
    "refusal.cleared": "Alarm {alarm} has cleared: nothing to acknowledge.",
    "refusal.no_model": "Model {model} not found.",
    "refusal.short_password": "A password needs at least 10 characters.",
    "refusal.plant_id": "Not a plant id: {plant} (letters, digits, _ and -).",
    "refusal.your_plants": "You manage users of plants {plants} only: name some of them.",
    "refusal.user_exists": "User {user} exists already.",
    "refusal.own_key": "An API key is created by its own user only.",
    "refusal.admin_revokes": "Only an admin revokes the keys of another user.",
    "refusal.no_user": "No user {user}.",
    "refusal.no_key": "You have no live API key {key}.",
    "refusal.stop_zone": "Give the stop's start with its zone, as listed.",
    "refusal.stop_reason": "Say what happened (the reason).",
    "refusal.long_reason": "The reason is longer than 500 characters.",
    "refusal.needs_role": "This needs the {role} role or higher.",
    "refusal.csrf": "The form's security token is missing or wrong: reload the page and try again.",
}

ZH: dict[str, str] = {
    "refusal.no_part": "castline 没有铸件 {key} 的记录。",
    "refusal.no_machine": "工厂 {plant} 没有压铸机 {machine}。",
    "refusal.part_key": "{key} 不是有效的铸件编号：请写 工厂/压铸机/压射号，例如 p1/m1/1234。",
    "refusal.decision": "请选择合格或不合格。",
    "refusal.ng_needs_defect": "判为不合格的铸件须选择缺陷类型。",
    "refusal.unknown_defect": "未知缺陷类型 {defect}：请从列表中选择。",
    "refusal.reviewed": "铸件 {key} 已复检过。",
    "refusal.no_plant": "您无权访问工厂 {plant}。",
    "refusal.no_alarm": "找不到报警 {alarm}。",
    "refusal.name_cause": "请选择原因类别。",
    "refusal.say_cause": "请在备注中说明原因及采取的措施。",
    "refusal.acked": "报警 {alarm} 已被确认。",
    "refusal.cleared": "报警 {alarm} 已消除，无需确认。",
    "refusal.no_model": "找不到检测模型 {model}。",
    "refusal.short_password": "密码至少需要 10 个字符。",
    "refusal.plant_id": "不是有效的工厂编号：{plant}（仅限字母、数字、_ 和 -）。",
    "refusal.your_plants": "您只能管理工厂 {plants} 的用户：请从中选择。",
    "refusal.user_exists": "用户 {user} 已存在。",
    "refusal.own_key": "API 密钥只能由用户本人创建。",
    "refusal.admin_revokes": "只有管理员可以吊销其他用户的密钥。",
    "refusal.no_user": "没有用户 {user}。",
    "refusal.no_key": "您没有有效的 API 密钥 {key}。",
    "refusal.stop_zone": "请按列表所示填写停机开始时间（含时区）。",
    "refusal.stop_reason": "请说明发生了什么（原因）。",
    "refusal.long_reason": "原因超过 500 个字符。",
    "refusal.needs_role": "此操作需要{role}或更高的角色。",
    "refusal.csrf": "表单的安全令牌缺失或有误：请刷新页面后重试。",
}
