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
    "parked.none": "no message is parked",
    "parked.line": "{at} UTC  {subject}  ({size} bytes)",
    "db.history_kept": "partitions ahead made; shot_retention_days is 0: the history is kept",
    "db.history_dropped": "older than {days} days: {partitions} partition(s) dropped, "
    "{shots} shot(s) and {states} machine state(s) deleted",
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
    # castline hub and its subcommands (messaging/cli.py)
    "hub.lag": "{plant}: {lag} messages behind, last heard {heard}{photos}{error}",
    "hub.never": "never",
    "hub.ago": "{s:.1f} s ago",
    "hub.with_photos": ", photos copied",
    "hub.and_photos": " and photos",
    "hub.source_error": ", error: {error}",
    "hub.added": "{plant}: added; the hub copies its records and verdicts{photos} from now on",
    "hub.already": "{plant}: the hub copies it already (see `castline hub plants`)",
    "hub.removed": "{plant}: removed; what the hub copied of it stays, and adding it again "
    "resumes after that",
    "hub.on_off": "photos {state}? say on or off",
    "hub.photos_on": "{plant}: photos copied now: those the plant still keeps after the last "
    "one the hub holds, then each new one",
    "hub.photos_off": "{plant}: photos no longer copied; records and verdicts go on",
    "hub.unchanged": "{plant}: already so, nothing changed",
    "hub.none": "the hub copies no plants yet: castline hub add-plant PLANT",
    "hub.bad_plant": "plant id {plant} must be 1 to 64 letters, digits, '_' or '-', and not "
    "'hub' (the hub's own JetStream domain)",
    "hub.bad_url": "--hub {url}: give the hub's NATS URL, nats://HOST:PORT (or tls://, ws://, wss://)",
    "hub.unknown_plant": "the hub does not copy plant '{plant}' (see `castline hub plants`)",
    "hub.no_central": "the server at {url} holds no central stream: is it a `castline hub`?",
    "hub.legacy": "the hub copies all of {plant} through one source made before photos were "
    "optional; leaving photos out would copy its records again",
    "hub.unreachable": "cannot reach the hub at {url} ({detail}); is `castline hub` running "
    "there, and --hub its client URL?",
    # castline vision update (vision/cli.py)
    "vupdate.where": "name the model to update: a model folder (MODEL), or --die and --view "
    "for the active one of a die and camera view, not both",
    "vupdate.nothing": "nothing to learn from: give --ok DIR (photos confirmed good) and/or "
    "--ng DIR (confirmed defects), or --reviews with --die and --view",
    "vupdate.reviews_and_dirs": "--reviews learns from the reviews in the database: give it "
    "without --ok and --ng (or fold the folders in with a second command)",
    "vupdate.out_needed": "give --out NEW_FOLDER: the new version is written there, the "
    "model given stays as it is",
    "vupdate.out_with_die": "--out is for a model folder; with --die and --view the new "
    "version goes into the models folder of the settings and is registered",
    "vupdate.out_exists": "{path} exists already: choose a new folder for the new version",
    "vphotos.not_folder": "{path} is not a folder of photos",
    "vphotos.no_photos": "{path} holds no .jpeg/.jpg/.png/.bmp photos",
    "vupdate.unreadable": "{path} is not a photo castline can read ({detail})",
    "vupdate.conflict": "{n} photo(s) are in both --ok and --ng (same content): a photo is "
    "good or defective, not both; remove them from one of the folders",
    "vupdate.defect_type": "--defect-type must be 1 to 40 characters, got {n}",
    "vupdate.no_active": "{die}/{view} has no active model: register one with `castline "
    "vision register MODEL --die {die} --view {view} --activate`",
    "vupdate.no_head_data": "{path} has no head_descriptors.npz (trained before castline "
    "kept what a head refit needs): --ng cannot teach it; retrain it with `castline vision "
    "train GOOD_DIR --defects DIR`",
    "vupdate.failed": "the model was not updated: {detail}",
    "vupdate.no_reviews": "{die}/{view}: no reviews wait to be learnt (photos castline held "
    "and a person passed, or parts a person confirmed NG) since the active version {version}",
    "vupdate.made": "{version} -> {path}: {good} good photo(s) into the memory, {defects} "
    "confirmed defect(s) for the head",
    "vupdate.head": "  supervised head {how}: NG threshold {ng:.4g}, false reject {frr:.1%} "
    "(cross-fitted on {n} good photos), escape {escape} on {defects} defects",
    "vupdate.head_created": "created",
    "vupdate.head_refitted": "refitted",
    "vupdate.pending": "  {n} confirmed defect(s) kept; a first head is made once {need} are "
    "confirmed: until then the score stays the anomaly score",
    "vupdate.registered": "{die}/{view}: registered {version}{active}",
    "vupdate.active": " (active)",
    "vtrain.summary": "input {height} x {width} px (shaped like the photos); memory {memory}; "
    "part region {part}; {copies}",
    "vtrain.copies": "turned copies of each photo: {count}",
    "vtrain.no_copies": "no copies of the photos",
    "vtrain.per_cell": "per cell",
    "vtrain.whole_photo": "for the whole photo",
    "vtrain.part_found": "found",
    "vtrain.part_none": "none: every place counts",
    "vupdate.activate_hint": "  the line keeps its model until you run: castline vision "
    "activate --die {die} --view {view} {version}",
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
    "parked.none": "没有暂存的消息",
    "parked.line": "{at} UTC  {subject}  （{size} 字节）",
    "db.history_kept": "已创建后续分区；shot_retention_days 为 0：历史数据全部保留",
    "db.history_dropped": "早于 {days} 天：已删除 {partitions} 个分区、{shots} 条压铸记录和 "
    "{states} 条设备状态",
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
    "hub.lag": "{plant}：落后 {lag} 条消息，上次联系 {heard}{photos}{error}",
    "hub.never": "从未",
    "hub.ago": "{s:.1f} 秒前",
    "hub.with_photos": "，复制照片",
    "hub.and_photos": "和照片",
    "hub.source_error": "，错误：{error}",
    "hub.added": "{plant}：已添加；中心站从现在起复制其记录、判定结果{photos}",
    "hub.already": "{plant}：中心站已在复制该工厂（见 `castline hub plants`）",
    "hub.removed": "{plant}：已移除；已复制的内容保留，再次添加时从其后继续",
    "hub.on_off": "照片 {state}？请写 on 或 off",
    "hub.photos_on": "{plant}：开始复制照片：先复制工厂仍保存的、中心站最后一张之后的照片，"
    "再复制每张新照片",
    "hub.photos_off": "{plant}：不再复制照片；记录和判定结果照常复制",
    "hub.unchanged": "{plant}：已是如此，没有改动",
    "hub.none": "中心站尚未复制任何工厂：castline hub add-plant 工厂",
    "hub.bad_plant": "工厂 id {plant} 须为 1 到 64 个字母、数字、'_' 或 '-'，且不能是 "
    "'hub'（中心站自己的 JetStream 域）",
    "hub.bad_url": "--hub {url}：请给出中心站的 NATS 地址 nats://主机:端口（或 tls://、ws://、wss://）",
    "hub.unknown_plant": "中心站没有复制工厂 '{plant}'（见 `castline hub plants`）",
    "hub.no_central": "{url} 上的服务器没有中心流：它是 `castline hub` 吗？",
    "hub.legacy": "中心站通过一个在照片可选之前建立的源复制 {plant} 的全部消息；"
    "不复制照片将导致其记录被再次复制",
    "hub.unreachable": "无法连接 {url} 上的中心站（{detail}）；`castline hub` 是否在运行，"
    "--hub 是否为其客户端地址？",
    "vupdate.where": "请指明要更新的模型：模型文件夹（MODEL），或用 --die 和 --view "
    "指定某模具和相机视角的当前模型，二者只能选一",
    "vupdate.nothing": "没有可学习的内容：请给出 --ok DIR（确认合格的照片）和/或 "
    "--ng DIR（确认的缺陷），或与 --die、--view 一起使用 --reviews",
    "vupdate.reviews_and_dirs": "--reviews 从数据库中的复核结果学习：请不要同时给出 --ok 和 "
    "--ng（文件夹可用另一条命令加入）",
    "vupdate.out_needed": "请给出 --out 新文件夹：新版本写入该处，原模型保持不变",
    "vupdate.out_with_die": "--out 仅用于模型文件夹；使用 --die 和 --view 时，新版本写入设置中的"
    "模型文件夹并登记",
    "vupdate.out_exists": "{path} 已存在：请为新版本选择一个新文件夹",
    "vphotos.not_folder": "{path} 不是照片文件夹",
    "vphotos.no_photos": "{path} 中没有 .jpeg/.jpg/.png/.bmp 照片",
    "vupdate.unreadable": "{path} 不是 castline 能读取的照片（{detail}）",
    "vupdate.conflict": "有 {n} 张照片同时出现在 --ok 和 --ng 中（内容相同）：一张照片要么合格"
    "要么有缺陷；请从其中一个文件夹删除",
    "vupdate.defect_type": "--defect-type 须为 1 到 40 个字符，实际为 {n} 个",
    "vupdate.no_active": "{die}/{view} 没有当前模型：请用 `castline vision register MODEL "
    "--die {die} --view {view} --activate` 登记一个",
    "vupdate.no_head_data": "{path} 中没有 head_descriptors.npz（在 castline 保存监督头重新拟合"
    "所需数据之前训练）：--ng 无法用于该模型；请用 `castline vision train GOOD_DIR --defects "
    "DIR` 重新训练",
    "vupdate.failed": "模型未更新：{detail}",
    "vupdate.no_reviews": "{die}/{view}：自当前版本 {version} 以来没有待学习的复核结果"
    "（castline 拦下而人工放行的照片，或人工确认为 NG 的铸件）",
    "vupdate.made": "{version} -> {path}：{good} 张合格照片加入记忆库，{defects} 张确认的缺陷"
    "照片用于监督头",
    "vupdate.head": "  监督头已{how}：NG 阈值 {ng:.4g}，误判率 {frr:.1%}（在 {n} 张合格照片上"
    "交叉拟合），{defects} 个缺陷中漏检率 {escape}",
    "vupdate.head_created": "创建",
    "vupdate.head_refitted": "重新拟合",
    "vupdate.pending": "  已保存 {n} 个确认的缺陷；确认满 {need} 个后才创建第一个监督头："
    "在此之前评分仍为异常分数",
    "vupdate.registered": "{die}/{view}：已登记 {version}{active}",
    "vupdate.active": "（当前模型）",
    "vtrain.summary": "模型输入 {height} x {width} 像素（按照片的形状）；记忆{memory}；"
    "零件区域{part}；{copies}",
    "vtrain.copies": "每张照片另加 {count} 张旋转副本",
    "vtrain.no_copies": "不加照片副本",
    "vtrain.per_cell": "按单元",
    "vtrain.whole_photo": "覆盖整张照片",
    "vtrain.part_found": "已找到",
    "vtrain.part_none": "未找到：每处都检测",
    "vupdate.activate_hint": "  产线继续使用原模型，直到运行：castline vision activate --die "
    "{die} --view {view} {version}",
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
