"""What the `castline` command says to a person, in English or Chinese (zh-CN).

The language: `CASTLINE_LANG` (`zh`, `en`, `zh_CN.UTF-8`...), else the locale
(`LC_ALL`, `LC_MESSAGES`, `LANG`, the first one set, as POSIX reads them), else English.

Its own catalogue, not the dashboard's (`web/i18n.py`): every command's error path runs
through here, also those of the area CLIs below the web layer, which may not import
`castline.web`; and a terminal chooses its language from the environment, not from a
browser's request. Errors that lower layers raise in English (settings, a missing model,
click's usage errors) are recognised by their pattern and written again in the chosen
language; a text no pattern knows is shown as raised, so no message is ever lost.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal

Lang = Literal["en", "zh"]

EN: dict[str, str] = {
    "error": "error: {message}",
    "usage.try": "Try '{command} --help' for help.",
    "usage.error": "Error: {message}",
    "aborted": "Aborted!",
    # castline's own one-line errors (castline.cli.explain)
    "db.bad_url": "the database URL is not usable ({detail}): fix the setting database_url "
    "(CASTLINE_DATABASE_URL or --config)",
    "db.unreachable": "cannot use the database: {detail}; check the setting database_url "
    "(CASTLINE_DATABASE_URL) and that its server is up",
    "file.missing": "{path}: {detail}",
    "file.denied": "{path}: permission denied; choose a path this user may write",
    "connect.failed": "cannot connect: {detail}; is the server up (see `castline config`)?",
    "bug": "{kind}: {detail} (a bug? run `castline --traceback ...` and report what it prints)",
    # summaries
    "db.at": "{url}: at {revision}",
    "db.empty": "(empty)",
    "broker.up": "plant {plant}: NATS {nats}, MQTT {mqtt}",
    "broker.uplink": "uplink: leaf node of {uplink}",
    # castline up: what it says while it starts, runs and stops (app.py, demo_model.py)
    "up.ready": "castline is up: dashboard {url}  (API docs {url}/docs, metrics {url}/metrics)",
    "up.devices": "devices: MQTT {mqtt}{tls}, topics castline/v1/{plant}/<machine>/...",
    "up.tls": " over TLS",
    "up.device_login": "  each machine logs in: `castline device add <machine>` prints its login",
    "up.first_login": "first login: admin / {password}  (also in {path})",
    "up.ctrl_c": "Ctrl-C stops everything.",
    "up.uplink": "uplink: leaf node of {uplink}, JetStream domain {plant}",
    "up.cells": "robot cells: OPC UA {endpoint}",
    "up.stopping": "stopping: the hall has stopped, the line finishes the parts in flight",
    "import.interrupted": "interrupted: the rows above are saved; run the same command again "
    "to import the rest (rows already there are skipped)",
    "up.undecided": "stopping with {n} part(s) not yet decided",
    "train.real": "training the inspection model from the real photographs in {root} ...",
    "train.synthetic": "no real photographs found (set CASTLINE_DATA); training on synthetic ones",
    "train.expect": "training once, on first start: {good} good and {defective} defective "
    "photos, about {expected} on this machine (measured now); progress below",
    "train.took": "trained in {took}; next starts reuse the model",
    "seconds": "{n:.0f} s",
    "minutes": "{n:.0f} min",
    "load.behind": "warning: the line cannot keep up ({seen}). Try castline up --machines "
    "{machines_to} (now {machines}) or --speed {speed_to} (now {speed}), or add a line "
    "worker: castline line run (on this or another computer)",
    "load.backlog": "backlog {start} -> {end} parts in a minute",
    "load.late": "{late} of {verdicts} parts ({share}) quarantined because the verdict "
    "deadline passed",
    "load.and": "; ",
    "load.ok": "the line keeps up again",
}

ZH: dict[str, str] = {
    "error": "错误：{message}",
    "usage.try": "运行 '{command} --help' 查看帮助。",
    "usage.error": "错误：{message}",
    "aborted": "已中止！",
    "db.bad_url": "数据库 URL 无法使用（{detail}）：请修改设置 database_url"
    "（CASTLINE_DATABASE_URL 或 --config）",
    "db.unreachable": "无法使用数据库：{detail}；请检查设置 database_url"
    "（CASTLINE_DATABASE_URL）以及数据库服务器是否已启动",
    "file.missing": "{path}：{detail}",
    "file.denied": "{path}：没有权限；请选择当前用户可写的路径",
    "connect.failed": "无法连接：{detail}；服务器是否已启动（见 `castline config`）？",
    "bug": "{kind}：{detail}（可能是程序缺陷：请运行 `castline --traceback ...` 并报告输出）",
    "db.at": "{url}：当前版本 {revision}",
    "db.empty": "（空）",
    "broker.up": "工厂 {plant}：NATS {nats}，MQTT {mqtt}",
    "broker.uplink": "上联：作为 {uplink} 的叶节点",
    "up.ready": "castline 已启动：看板 {url}（API 文档 {url}/docs，监控指标 {url}/metrics）",
    "up.devices": "设备：MQTT {mqtt}{tls}，主题 castline/v1/{plant}/<压铸机>/...",
    "up.tls": "（TLS 加密）",
    "up.device_login": "  每台压铸机需登录：`castline device add <压铸机>` 会打印其登录信息",
    "up.first_login": "首次登录：admin / {password}（也保存在 {path}）",
    "up.ctrl_c": "按 Ctrl-C 全部停止。",
    "up.uplink": "上联：作为 {uplink} 的叶节点，JetStream 域 {plant}",
    "up.cells": "机器人工作站：OPC UA {endpoint}",
    "up.stopping": "正在停止：车间模拟已停止，产线正在处理在途铸件",
    "import.interrupted": "已中断：以上各行已保存；再次运行同一命令即可导入其余部分"
    "（已导入的行会跳过）",
    "up.undecided": "停止时仍有 {n} 个铸件未判定",
    "train.real": "正在用 {root} 中的真实照片训练检测模型……",
    "train.synthetic": "未找到真实照片（请设置 CASTLINE_DATA）；改用合成照片训练",
    "train.expect": "首次启动需训练一次：{good} 张合格照片和 {defective} 张缺陷照片，"
    "在本机约需 {expected}（刚刚实测）；进度见下方",
    "train.took": "训练用时 {took}；以后启动将直接使用该模型",
    "seconds": "{n:.0f} 秒",
    "minutes": "{n:.0f} 分钟",
    "load.behind": "警告：产线处理不过来（{seen}）。可尝试 castline up --machines "
    "{machines_to}（当前 {machines}）或 --speed {speed_to}（当前 {speed}），或增加一个"
    "产线工作进程：castline line run（在本机或另一台计算机上）",
    "load.backlog": "一分钟内积压从 {start} 增至 {end} 个铸件",
    "load.late": "{verdicts} 个铸件中有 {late} 个（{share}）因超过判定时限被隔离",
    "load.and": "；",
    "load.ok": "产线已恢复正常处理",
}

CATALOGUES: dict[Lang, Mapping[str, str]] = {"en": EN, "zh": ZH}

# English texts raised below the CLI (settings, vision, click), in Chinese. Each pattern
# matches a whole line; its named fields are kept as they are (paths, options, details).
RAISED_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"^invalid configuration:$", "配置无效："),
        (
            r"^(?P<indent>\s*)setting (?P<where>.+?): unknown setting$",
            "{indent}设置 {where}：未知设置",
        ),
        (
            r"^(?P<indent>\s*)setting (?P<where>.+?): (?P<detail>.+)$",
            "{indent}设置 {where}：{detail}",
        ),
        (
            r"^config file (?P<path>.+) not found \(set by --config or CASTLINE_CONFIG\)$",
            "找不到配置文件 {path}（由 --config 或 CASTLINE_CONFIG 指定）",
        ),
        (
            r"^config file (?P<path>.+) is a folder, not a TOML file$",
            "配置文件 {path} 是文件夹，不是 TOML 文件",
        ),
        (r"^(?P<path>.+): not valid TOML: (?P<detail>.+)$", "{path}：不是有效的 TOML：{detail}"),
        (
            r"^(?P<path>.+): no \[castline\] table; put the settings under a line \[castline\]$",
            "{path}：没有 [castline] 表；请把设置写在一行 [castline] 之下",
        ),
        (
            r"^(?P<path>.+): (?P<keys>.+) outside the \[castline\] table; move them under it$",
            "{path}：{keys} 在 [castline] 表之外；请移到该表之下",
        ),
        (
            r"^no model at (?P<path>.+): train one with `castline vision train`$",
            "{path} 处没有模型：请先用 `castline vision train` 训练一个",
        ),
        (
            r"^No such option: (?P<option>\S+) \(Possible options: (?P<options>.+)\)$",
            "没有选项 {option}（可用的选项：{options}）",
        ),
        (r"^No such option: (?P<option>\S+)$", "没有选项 {option}"),
        (r"^No such command '(?P<command>[^']+)'\.$", "没有命令 '{command}'。"),
        (r"^Missing option '(?P<option>[^']+)'\.$", "缺少选项 '{option}'。"),
        (r"^Missing argument '(?P<argument>[^']+)'\.$", "缺少参数 '{argument}'。"),
        (r"^Option '(?P<option>[^']+)' requires an argument\.$", "选项 '{option}' 需要一个值。"),
        (
            r"^Invalid value for '(?P<option>[^']+)': (?P<detail>.+)$",
            "'{option}' 的值无效：{detail}",
        ),
        (r"^Got unexpected extra arguments? \((?P<args>.+)\)$", "多余的参数（{args}）"),
    )
)


def parse_lang(value: str | None) -> Lang | None:
    """`zh`, `zh_CN.UTF-8`, `zh-Hans` -> zh; `en`, `en_US.UTF-8`, `C` -> en; else None."""
    if not value:
        return None
    base = re.split(r"[-_.@]", value.strip().lower(), maxsplit=1)[0]
    if base == "zh":
        return "zh"
    return "en" if base in ("en", "c", "posix") else None


def language(environ: Mapping[str, str] | None = None) -> Lang:
    env = os.environ if environ is None else environ
    if (chosen := parse_lang(env.get("CASTLINE_LANG"))) is not None:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(name):  # the first one set decides, as for any program
            return parse_lang(env[name]) or "en"
    return "en"


def say(message_id: str, lang: Lang | None = None, **fields: object) -> str:
    """The message `message_id` in `lang` (default: the environment's), fields filled."""
    text = CATALOGUES[lang or language()][message_id]
    return text.format(**fields) if fields else text


def translated(text: str, lang: Lang | None = None) -> str:
    """A message raised in English below the CLI, line by line in `lang`."""
    if (lang or language()) == "en":
        return text
    return "\n".join(_line_in_chinese(line) for line in text.split("\n"))


def _line_in_chinese(line: str) -> str:
    for pattern, chinese in RAISED_ZH:
        if found := pattern.match(line):
            return chinese.format(**{k: v or "" for k, v in found.groupdict().items()})
    return line
