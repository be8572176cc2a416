"""The dashboard in English and Chinese (zh-CN): one catalogue per language, keyed by
message id, and the choice of language for a request.

No gettext: the catalogues are plain dicts, checked by a test to hold the same ids, and
every id a template asks for must be in both. A missing id shows as itself, so a walk of
the pages finds it. The Chinese words are the ones a die-casting plant uses (压铸机,
模具, 压射, 铸件, 废品率...), not a word-for-word translation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from starlette.requests import Request

from castline.web import (
    alarm_words,
    benefit_words,
    breach_words,
    chart_words,
    curve_words,
    die_words,
    refusal_words,
    vocabulary,
)
from castline.web.reasons import ReasonCode, understand

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")
COOKIE = "castline_lang"
HTML_LANG: dict[Lang, str] = {"en": "en", "zh": "zh-CN"}

EN: dict[str, str] = {
    # frame of every page
    "app.title": "castline",
    "nav.review": "Review",
    "nav.alarms": "Alarms",
    "nav.models": "Models",
    "nav.dies": "Dies",
    "nav.kpi": "KPIs",
    "nav.dead_letters": "Dead letters",
    "nav.users": "Users",
    "nav.other_lang": "中文",
    "search.placeholder": "part: plant/machine/shot",
    "search.label": "part key",
    "logout": "Log out",
    "problem.broker": "Broker",
    "problem.line": "Line runtime",
    "problem.nats": "NATS",
    "problem.stream": "Stream",
    "problem.database": "Database",
    "time.zone_note": "Times in plant time ({zone})",
    # words used on many pages
    "verdict.OK": "OK",
    "verdict.NG": "NG",
    "verdict.REVIEW": "REVIEW",
    "verdict.QUARANTINE": "QUARANTINE",
    "verdict.none": "—",
    "verdict.OK.means": "good casting, moves on",
    "verdict.NG.means": "defective, to the reject chute",
    "verdict.REVIEW.means": "uncertain, a person decides",
    "verdict.QUARANTINE.means": "no trustworthy verdict, to the quarantine rack",
    "state.running": "running",
    "state.idle": "idle",
    "state.setup": "setup",
    "state.planned_stop": "planned stop",
    "state.breakdown": "breakdown",
    "state.offline": "offline",
    "state.unknown": "unknown",
    "sev.info": "info",
    "sev.warning": "warning",
    "sev.critical": "critical",
    "role.viewer": "viewer",
    "role.operator": "operator",
    "role.engineer": "engineer",
    "role.admin": "admin",
    "word.die": "Die",
    "word.machine": "Machine",
    "word.plant": "Plant",
    "word.part": "Part",
    "word.shot": "Shot",
    "word.time": "Time",
    "word.score": "Score",
    "word.verdict": "Verdict",
    "word.none": "None.",
    "word.all": "all",
    "word.open": "open",
    "word.back_home": "Back to the plant overview",
    "live.connecting": "connecting",
    "live.on": "live",
    "live.off": "reconnecting",
    # backlog line (also filled in by live.js)
    "line.unknown": "Inspection backlog unknown: {reason}",
    "line.why.no_nats": "this dashboard runs without --nats",
    "line.why.no_runtime": "no line runtime has started on this broker yet",
    "line.counts": "Inspection backlog: {waiting} waiting, {in_progress} in inspection",
    "line.oldest": ", oldest {oldest} s",
    "line.behind": " (over the {deadline} s verdict deadline: parts go to quarantine)",
    # login
    "login.title": "Log in",
    "login.name": "Name",
    "login.password": "Password",
    "login.wrong": "Wrong name or password.",
    "login.locked": "Too many failed logins: try again in {seconds} s.",
    # plants
    "plants.title": "Plants",
    "plants.empty": "No plant recorded yet: start the line (castline up) or a simulator.",
    # overview
    "overview.title": "Plant {plant}",
    "overview.live_today": "today since {since}, live",
    "overview.shift": "Shift {shift}: {start} – {end}",
    "overview.no_shift": "No shift now",
    "overview.empty": "No machines recorded for this plant yet: they appear with their "
    "first state or shot message.",
    "overview.ranked": "Machines that need a person come first.",
    "overview.no_photo": "no photo yet",
    "overview.last_casting": "last casting",
    "overview.shots_today": "Shots today",
    "overview.shift_shots": "This shift",
    "overview.yield_today": "Yield today",
    "overview.scrap_today": "Scrap rate today",
    "overview.verdicts": "Verdicts today",
    "overview.oee_today": "OEE today",
    "overview.alarms_open": "Open alarms",
    "overview.legend": "Legend",
    "status.red": "Act now",
    "status.amber": "Watch",
    "status.green": "OK",
    "status.red.means": "open alarm, stopped machine or scrap rate over {red} %",
    "status.amber.means": "parts in quarantine or review, idle, or scrap rate over {amber} %",
    "status.green.means": "running, no open alarm, scrap rate at most {amber} %",
    "why.alarms": "{n} open alarm(s)",
    "why.stopped": "machine {state}",
    "why.scrap": "scrap rate {rate}",
    "why.quarantine": "{n} in quarantine",
    "why.review": "{n} waiting for review",
    "why.idle": "machine {state}",
    # machine
    "machine.title": "Machine {name}",
    "machine.die": "die",
    "machine.shots_today": "shots today",
    "machine.yield_today": "yield today",
    "machine.alarms_open": "open alarms",
    "machine.die_life": "die life used ({shots} of {rated} shots)",
    "machine.control_chart": "Control chart",
    "machine.parameter": "parameter",
    "machine.spc_line": "{chart} chart · centre {center} {unit} · limits {lcl} – {ucl}",
    "machine.cpk": "{index} {cpk}",
    "machine.baseline": "baseline {baseline} of {points} points",
    "machine.rule_hit": "{meaning}: {count}×, last {last}",
    "machine.no_rule_hits": "No rule hits after the baseline.",
    "machine.no_shots": "No shots to chart yet: the chart appears with the first shots "
    "of this machine.",
    "machine.trend": "Parameter trend by verdict",
    "machine.trend_note": "Each point is a shot, coloured by its verdict:",
    "machine.why_ng": "Why NG parts happen here",
    "machine.why_ng_note": "{ng} NG of {shots} judged shots; parameters ranked by the NG "
    "parts they explain.",
    "machine.pareto": "Defect Pareto",
    "machine.open_alarms": "Open alarms",
    "machine.die_title": "Die {die}",
    "machine.die_text": "{part} · {shots} shots of {rated} rated.",
    "machine.maintenance": "{kind} at {shots} shots",
    "machine.recent": "Recent shots",
    "machine.melt": "Melt °C",
    "machine.die_fixed": "Die fixed °C",
    "machine.cast_bar": "Cast pressure, bar",
    "machine.no_recent": "No shots recorded yet.",
    # part
    "part.title": "Part {key}",
    "part.heat_toggle": "heat map and defect regions",
    "part.photo": "casting photograph",
    "part.region": "score {score}, {area} px",
    "part.no_photo": "No photograph recorded for this part.",
    "part.reason": "Reason",
    "part.model": "Model",
    "part.decided": "Decided",
    "part.latency": "Latency",
    "part.regions": "Regions",
    "part.no_verdict": "No verdict recorded.",
    "part.review": "Review",
    "part.confirmed": "Confirmed {decision}{defect} by {reviewer} at {at}.",
    "part.not_reviewed": "Not reviewed.",
    "part.truth": "Ground truth (simulator): {truth}",
    "part.truth.defective": "defective",
    "part.truth.good": "good",
    "part.parameters": "Process parameters",
    "part.shot_line": "Die {die} · shot at {at}",
    "part.trial": "trial shot",
    "part.code": "code {code}",
    "part.col.parameter": "Parameter",
    "part.col.value": "Value",
    "part.col.unit": "Unit",
    "part.col.limits": "Control limits",
    "part.sensor_fault": "sensor fault",
    "part.outside": "outside limits",
    "part.no_shot": "No shot record for this part.",
    "part.cavity": "cavity {cavity}",
    "part.views": "{count} views",
    "part.view": "View {view}",
    "part.view_deciding": "decides the part's verdict (the worst view)",
    "part.downstream": "Downstream results",
    "part.no_downstream": "No downstream station has reported on this part yet.",
    "part.escape": "Escape: castline passed this part and a downstream station found it NG.",
    "part.col.station": "Station",
    "part.col.test": "Test",
    "part.col.result": "Result",
    "part.col.defect": "Defect",
    "part.col.tested": "Tested",
    "downstream.test.xray": "X-ray",
    "downstream.test.leak": "Leak test",
    "downstream.test.machining": "Machining",
    "downstream.test.cmm": "CMM measurement",
    # heat map beside the photo
    "heat.title": "Heat map colour scale",
    "heat.low": "normal (photo unchanged)",
    "heat.threshold": "region threshold {value}",
    "heat.high": "{value} and more",
    "heat.high_relative": "1.5 × region threshold and more",
    "heat.means": "Colour shows how unlike a good casting each spot looks to the "
    "inspection model (anomaly score, the model's own units). Spots above the region "
    "threshold are boxed and numbered, most likely defect first.",
    "heat.col.vs": "× threshold",
    "heat.col.size": "Size",
    "heat.px": "{area} px",
    "heat.no_regions": "No region above the threshold.",
    # review queue keyboard
    "keys.title": "Keys",
    "keys.next": "next part",
    "keys.prev": "previous part",
    "keys.ok": "pass as OK",
    "keys.ng": "confirm NG (choose the defect type first)",
    "keys.later": "review later (skip)",
    "keys.open": "open the part",
    "keys.need_defect": "Choose the defect type, then press n again.",
    "keys.later_done": "Left for later: {part}",
    "review.override_text": "castline judged part {key} {verdict}. Passing it as OK sends "
    "it on to the next process: write the reason and confirm.",
    # review
    "review.title": "Review queue",
    "review.waiting": "{n} parts wait",
    "review.note": "Confirm or override each part; NG needs a defect type. Every confirmed "
    "part becomes a training label (castline review export DIR).",
    "review.empty": "Nothing to review: parts the model is unsure of (REVIEW) and "
    "quarantined parts appear here as the line decides them.",
    "review.no_photo": "no photo",
    "review.casting": "casting",
    "review.no_model": "no model",
    "review.defect": "defect type (for NG)",
    "review.comment": "comment",
    "review.ok": "Confirm OK",
    "review.ng": "Confirm NG",
    "review.filters": "Filters",
    "review.by_machine": "Machine",
    "review.by_verdict": "Verdict",
    "review.all": "all",
    "review.none_match": "No waiting part matches these filters.",
    "review.clear": "Show all",
    "review.past_end": "This page is past the end of the queue.",
    "review.first_page": "First page",
    "review.pages": "Pages",
    "review.prev": "Newer",
    "review.next": "Older",
    "review.page_of": "page {page} of {pages}",
    "review.recent": "Recently confirmed",
    "review.col.decision": "Decision",
    "review.col.defect": "Defect",
    "review.col.by": "By",
    "review.col.at": "At",
    "review.done": "Part {key} confirmed {decision}.",
    # alarms
    "alarms.title": "Alarms",
    "alarms.empty": "No alarms: SPC rule hits and die or process alarms appear here when "
    "the analytics raises them.",
    "alarms.col.severity": "Severity",
    "alarms.col.where": "Where",
    "alarms.col.alarm": "Alarm",
    "alarms.col.raised": "Raised",
    "alarms.col.seen": "Seen",
    "alarms.col.acked": "Acknowledged",
    "alarms.cleared": "cleared {at}",
    "alarms.what_done": "what was done",
    "alarms.ack": "Acknowledge",
    "alarms.done": "Alarm {id} acknowledged.",
    # models
    "models.title": "Inspection models",
    "models.empty": "No model registered yet: castline up trains one on first run "
    "(see docs/vision.md).",
    "models.group": "Die {die} · view {view}",
    "models.rollback": "Roll back…",
    "models.col.version": "Version",
    "models.col.registered": "Registered",
    "models.col.metrics": "Metrics",
    "models.active": "active",
    "models.promote": "Promote…",
    "models.promote_q": "Promote {version}?",
    "models.promote_text": "From the next casting on, die {die} view {view} is inspected "
    "with version {version}.",
    "models.promoted": "Die {die} view {view} now inspects with {version}.",
    "models.rollback_q": "Roll back die {die} view {view}?",
    "models.rollback_text": "The version registered before the active one becomes active again.",
    "models.rolled_back": "Die {die} view {view} rolled back.",
    "confirm.title": "Confirm",
    "confirm.yes": "Yes, do it",
    "confirm.cancel": "Cancel",
    "confirm.reason": "Reason",
    "review.override": "Pass a part castline held?",
    "flash.not_done": "Not done: {reason}",
    # dies
    "dies.title": "Die life",
    "dies.chart": "die life",
    "dies.maintenance": "Maintenance · plant {plant}",
    "dies.col.die": "Die",
    "dies.col.machine": "Machine",
    "dies.col.since": "Since maintenance",
    "dies.col.ng_rate": "NG rate",
    "dies.col.action": "Action",
    "dies.col.why": "Why",
    "dies.col.part": "Part",
    "dies.col.where": "Where",
    "dies.col.shots": "Shots",
    "dies.col.rated": "Rated life",
    "dies.col.used": "Used",
    "dies.shots": "{n} shots",
    "dies.failures": "{unit}: {failures} failures, availability {availability}",
    "dies.empty": "No dies recorded yet: dies appear with the first shot that names one.",
    "dies.cavities": "Scrap by cavity, last 7 days · plant {plant}",
    "dies.cavities_note": "Dies with several cavities: one cavity apart from its siblings "
    "points at that cavity (venting, cooling, wear), not at the machine. In brackets the 95 % "
    "interval.",
    "dies.col.cavity": "Cavity",
    "dies.col.parts": "Castings",
    "dies.col.ng": "NG",
    "dies.col.scrap": "Scrap rate",
    # KPIs
    "kpi.title": "KPIs and benefit report",
    "kpi.downstream": "Downstream stations · plant {plant} · last {days} days",
    "kpi.downstream_none": "No downstream station (X-ray, leak test, machining) has posted a "
    "result in this time.",
    "kpi.downstream_line": "{results} results, {ng} of them NG.",
    "kpi.unmatched": "{n} results name a part castline does not know: a wrong code or part "
    "key, or a station posting another line's parts. They are kept and join their part if it "
    "is recorded within 7 days.",
    "kpi.unmatched_list": "List them",
    "kpi.unmatched_none": "Every result joined its part.",
    "kpi.today": "Plant {plant} · today since {since} (ISO 22400)",
    "kpi.col.machine": "Machine",
    "kpi.col.oee": "OEE",
    "kpi.col.availability": "Availability",
    "kpi.col.effectiveness": "Effectiveness",
    "kpi.col.quality": "Quality ratio",
    "kpi.col.scrap": "Scrap rate",
    "kpi.col.fpy": "First-pass yield",
    "kpi.col.produced": "Produced",
    "kpi.col.good": "Good",
    "kpi.col.scrap_n": "Scrap",
    "kpi.no_shots": "No shots today yet: the KPIs appear with the first shots of the day.",
    "kpi.trend": "KPI trend of {plant}",
    "kpi.benefit": "Benefit report · last {days} days against the {before} days before",
    "kpi.col.measure": "Measure",
    "kpi.col.unit": "Unit",
    "kpi.col.baseline": "Baseline",
    "kpi.col.now": "Now",
    "kpi.col.change": "Change",
    "kpi.col.target": "Target",
    "kpi.met": "met",
    "kpi.not_yet": "not yet",
    "kpi.castings": "{baseline} castings in the baseline, {now} now.",
    "kpi.days": "{n} days",
    "pareto.title": "Defect Pareto · last {days} days",
    "pareto.empty": "No part was confirmed NG in the last {days} days. When reviewers "
    "confirm NG parts, their defect types, machines and dies are counted here, most "
    "frequent first.",
    "pareto.note": "Parts confirmed NG by a reviewer, most frequent first.",
    "pareto.by.defect_type": "Defect type",
    "pareto.by.machine": "Machine",
    "pareto.by.die": "Die",
    "pareto.col.parts": "Parts",
    "pareto.col.share": "Share",
    "pareto.col.cumulative": "Cumulative",
    "pareto.unnamed": "not named",
    "pareto.by.shift": "Shift",
    "pareto.between_shifts": "between shifts",
    "pareto.chart": "Parts confirmed NG by {by} · last {days} days",
    "kpi.shifts": "Plant {plant} · KPIs by shift, today and yesterday (plant time)",
    "kpi.shifts_empty": "No machine state recorded since yesterday's plant midnight: each "
    "shift appears here once its machines report.",
    "kpi.col.day": "Day",
    "kpi.col.shift": "Shift",
    "kpi.col.span": "Counted",
    "kpi.today_word": "today",
    "kpi.yesterday_word": "yesterday",
    "kpi.shift_running": "under way",
    "kpi.calendar_note": "Shifts, breaks, planned stops and holidays are the plant calendar "
    "of the settings. Time in a break, a planned stop, on a holiday or between shifts is "
    "not counted as lost; a machine that runs then counts its production.",
    "overload.title": "The line cannot keep up",
    "overload.growing": "the inspection backlog grew from {start} to {end} parts over the "
    "last minute.",
    "overload.late": "{late} of {verdicts} parts ({share}) in the last minute went to "
    "quarantine because their verdict came after the deadline.",
    "overload.suggest": "Give the line less to do or more to do it with: fewer simulated "
    "machines (castline up --machines), a lower simulator speed (--speed), or one more line "
    "worker sharing the work (castline line run, on this or another computer).",
    # dead letters
    "dead.title": "Dead letters",
    "dead.parked": "{n} message(s) parked in the broker: they could not be stored here as "
    "dead letters (a topic that is no NATS subject, a payload over the broker's limit, or the "
    "database refused them). Read them with: castline line parked",
    "dead.note": "invalid messages, kept with the reason",
    "dead.empty": "None: every message was valid. A message that fails validation "
    "appears here with its reason.",
    # users
    "users.title": "Users and keys",
    "users.new_key": "New API key for {user} (shown once, copy it now):",
    "users.col.user": "User",
    "users.col.role": "Role",
    "users.col.plants": "Plants",
    "users.col.keys": "Keys",
    "users.col.since": "Since",
    "users.key_button": "New API key",
    "users.revoke": "Revoke keys",
    "users.revoke_q": "Revoke every API key of {user}?",
    "users.add": "Add a user",
    "users.name": "name",
    "users.password": "password (10+ characters)",
    "users.plants": "plants, comma-separated (empty: all)",
    "users.add_button": "Add",
    "users.added": "User {user} added.",
    "users.revoked": "{n} API key(s) of {user} revoked.",
    "users.audit": "Audit log",
    "users.col.when": "When",
    "users.col.who": "Who",
    "users.col.action": "Action",
    "users.col.target": "Target",
    "users.col.detail": "Detail",
    # API reference
    "api.title": "API reference",
    "api.note": "Every operation of the JSON API. Send an API key in the X-API-Key header. "
    "The OpenAPI 3 schema, for any OpenAPI tool:",
    "api.col.parameter": "Parameter",
    "api.col.in": "In",
    "api.col.type": "Type",
    "api.required": "required",
    "api.body": "Body (JSON): {body}",
    # charts
    "chart.shot_number": "shot number",
    "chart.no_readings": "no readings yet",
    "chart.rule_hit": "rule hit",
    "chart.confirmed_defects": "confirmed defects",
    "chart.no_defects": "no confirmed defects yet",
    "chart.cumulative": "cumulative %",
    "chart.parts": "parts",
    "chart.no_dies": "no dies recorded",
    "chart.die_life": "rated die life used, %",
    # --- benefit report and downtime (issue #15) ---
    "benefit.title": "Benefit report",
    "benefit.open": "Open the benefit report (four targets, intervals, assumptions)",
    "benefit.plant": "Plant {plant}",
    "benefit.no_plan": (
        "No figures: the analytics file declares no benefit periods ([benefit] "
        "baseline_since, baseline_until, since), or the comparison has not begun."
    ),
    "benefit.periods": "Baseline {b0} to {b1}; comparison {c0} to {c1}.",
    "benefit.castings": "{baseline} castings in the baseline, {now} in the comparison.",
    "benefit.col.improvement": "Improvement",
    "benefit.col.interval": "Interval",
    "benefit.col.verdict": "Verdict",
    "benefit.assumptions": "Assumptions",
    "benefit.m.labour": "Inspection labour",
    "benefit.m.downtime": "Downtime (breakdowns)",
    "benefit.m.quality": "Quality (scrap + escapes)",
    "benefit.m.management": "Management efficiency",
    "benefit.v.met": "met",
    "benefit.v.not_met": "not met",
    "benefit.v.inconclusive": "inconclusive",
    "benefit.v.no_data": "no data",
    "unit.source units": "source units",
    "labour.title": "Logged inspection hours",
    "labour.note": "Person-hours of inspection worked, by plant day. Where any are logged "
    "in a period, the labour target is measured on them.",
    "labour.first_day": "first day",
    "labour.last_day": "last day",
    "labour.hours": "person-hours",
    "labour.comment": "note (who, which station)",
    "labour.save": "Log hours",
    "labour.done": "{hours} inspection hours logged",
    "labour.col.from": "From",
    "labour.col.until": "Until",
    "labour.col.by": "Logged by",
    "labour.none": "No inspection hours logged yet.",
    "refusal.labour_entry": "the entry is not valid (end after start, at most 31 days, "
    "hours above 0 and at most 200 people for the whole stretch)",
    "refusal.labour_overlap": "those days overlap hours logged before",
    "refusal.labour_days": "give the days as 2026-11-30",
    "downtime.title": "Downtime",
    "downtime.note": (
        "Stops of the last {days} days by class; planned stops last. MTBF and MTTR count "
        "breakdowns only. Import gaps stay unclassified until someone says what they were."
    ),
    "downtime.plant": "Plant {plant}",
    "downtime.empty": "No stops in this period.",
    "downtime.col.class": "Class",
    "downtime.col.reason": "Reason",
    "downtime.col.hours": "Hours",
    "downtime.col.stops": "Stops",
    "downtime.col.start": "Began",
    "downtime.col.machine_said": "Machine said",
    "downtime.reliability": "{machine}: {n} breakdowns, MTBF {mtbf} h, MTTR {mttr} min",
    "downtime.reason_hint": "what happened",
    "downtime.save": "Save",
    "downtime.by": "by {who}",
    "downtime.done": "Stop of {machine} classified.",
    "stop.breakdown": "breakdown",
    "stop.setup": "setup / die change",
    "stop.planned": "planned",
    "stop.no_order": "no order",
    "stop.unclassified": "unclassified",
}

ZH: dict[str, str] = {
    "app.title": "castline",
    "nav.review": "复检",
    "nav.alarms": "报警",
    "nav.models": "检测模型",
    "nav.dies": "模具",
    "nav.kpi": "KPI",
    "nav.dead_letters": "无效消息",
    "nav.users": "用户",
    "nav.other_lang": "English",
    "search.placeholder": "铸件：工厂/压铸机/压射号",
    "search.label": "铸件编号",
    "logout": "退出登录",
    "problem.broker": "消息服务器",
    "problem.line": "产线运行",
    "problem.nats": "NATS",
    "problem.stream": "消息流",
    "problem.database": "数据库",
    "time.zone_note": "时间为工厂当地时间（{zone}）",
    "verdict.OK": "合格",
    "verdict.NG": "不合格",
    "verdict.REVIEW": "待复检",
    "verdict.QUARANTINE": "隔离",
    "verdict.none": "—",
    "verdict.OK.means": "合格铸件，流入下道工序",
    "verdict.NG.means": "缺陷件，进废品滑道",
    "verdict.REVIEW.means": "模型不确定，由人工判定",
    "verdict.QUARANTINE.means": "无可信判定，放入隔离架",
    "state.running": "生产中",
    "state.idle": "待机",
    "state.setup": "换模调机",
    "state.planned_stop": "计划停机",
    "state.breakdown": "故障停机",
    "state.offline": "离线",
    "state.unknown": "未知",
    "sev.info": "提示",
    "sev.warning": "警告",
    "sev.critical": "严重",
    "role.viewer": "查看者",
    "role.operator": "操作工",
    "role.engineer": "工程师",
    "role.admin": "管理员",
    "word.die": "模具",
    "word.machine": "压铸机",
    "word.plant": "工厂",
    "word.part": "铸件",
    "word.shot": "压射号",
    "word.time": "时间",
    "word.score": "得分",
    "word.verdict": "判定",
    "word.none": "无。",
    "word.all": "全部",
    "word.open": "未处理",
    "word.back_home": "返回工厂总览",
    "live.connecting": "连接中",
    "live.on": "实时",
    "live.off": "重新连接中",
    "line.unknown": "检测积压未知：{reason}",
    "line.why.no_nats": "本看板运行时未指定 --nats",
    "line.why.no_runtime": "此消息服务器上尚未启动产线运行时",
    "line.counts": "检测积压：{waiting} 件等待，{in_progress} 件检测中",
    "line.oldest": "，最久 {oldest} 秒",
    "line.behind": "（超过 {deadline} 秒判定时限：铸件进入隔离）",
    "login.title": "登录",
    "login.name": "用户名",
    "login.password": "密码",
    "login.wrong": "用户名或密码错误。",
    "login.locked": "登录失败次数过多：请 {seconds} 秒后再试。",
    "plants.title": "工厂",
    "plants.empty": "尚无工厂记录：请启动产线（castline up）或模拟器。",
    "overview.title": "工厂 {plant}",
    "overview.live_today": "今天自 {since} 起，实时",
    "overview.shift": "{shift} 班：{start} – {end}",
    "overview.no_shift": "当前不在班次内",
    "overview.empty": "该工厂尚无压铸机记录：收到第一条状态或压射消息后显示。",
    "overview.ranked": "需要人员处理的压铸机排在前面。",
    "overview.no_photo": "暂无照片",
    "overview.last_casting": "最近铸件",
    "overview.shots_today": "今日压射数",
    "overview.shift_shots": "本班次",
    "overview.yield_today": "今日良品率",
    "overview.scrap_today": "今日废品率",
    "overview.verdicts": "今日判定",
    "overview.oee_today": "今日 OEE",
    "overview.alarms_open": "未处理报警",
    "overview.legend": "图例",
    "status.red": "立即处理",
    "status.amber": "注意",
    "status.green": "正常",
    "status.red.means": "有未处理报警、停机或废品率超过 {red} %",
    "status.amber.means": "有隔离或待复检铸件、待机或废品率超过 {amber} %",
    "status.green.means": "生产中，无未处理报警，废品率不超过 {amber} %",
    "why.alarms": "{n} 条未处理报警",
    "why.stopped": "压铸机{state}",
    "why.scrap": "废品率 {rate}",
    "why.quarantine": "{n} 件隔离",
    "why.review": "{n} 件待复检",
    "why.idle": "压铸机{state}",
    "machine.title": "压铸机 {name}",
    "machine.die": "模具",
    "machine.shots_today": "今日压射数",
    "machine.yield_today": "今日良品率",
    "machine.alarms_open": "未处理报警",
    "machine.die_life": "模具寿命已用（{shots} / {rated} 模次）",
    "machine.control_chart": "控制图",
    "machine.parameter": "工艺参数",
    "machine.spc_line": "{chart} 图 · 中心线 {center} {unit} · 控制限 {lcl} – {ucl}",
    "machine.cpk": "{index} {cpk}",
    "machine.baseline": "基准 {baseline} / {points} 点",
    "machine.rule_hit": "{meaning}：{count} 次，最近 {last}",
    "machine.no_rule_hits": "基准期后无判异规则触发。",
    "machine.no_shots": "暂无压射数据：该压铸机有压射后显示控制图。",
    "machine.trend": "工艺参数趋势（按判定着色）",
    "machine.trend_note": "每个点代表一次压射，颜色表示判定：",
    "machine.why_ng": "不合格原因分析",
    "machine.why_ng_note": "已判定 {shots} 次压射中 {ng} 件不合格；"
    "工艺参数按可解释的不合格件数排序。",
    "machine.pareto": "缺陷柏拉图",
    "machine.open_alarms": "未处理报警",
    "machine.die_title": "模具 {die}",
    "machine.die_text": "{part} · 已压射 {shots} 模次，额定 {rated} 模次。",
    "machine.maintenance": "{kind}，于 {shots} 模次",
    "machine.recent": "最近压射",
    "machine.melt": "铝液温度 °C",
    "machine.die_fixed": "定模温度 °C",
    "machine.cast_bar": "增压压力 bar",
    "machine.no_recent": "暂无压射记录。",
    "part.title": "铸件 {key}",
    "part.heat_toggle": "热力图和缺陷区域",
    "part.photo": "铸件照片",
    "part.region": "得分 {score}，{area} 像素",
    "part.no_photo": "该铸件没有照片记录。",
    "part.reason": "原因",
    "part.model": "模型",
    "part.decided": "判定时间",
    "part.latency": "耗时",
    "part.regions": "缺陷区域",
    "part.no_verdict": "无判定记录。",
    "part.review": "复检",
    "part.confirmed": "{reviewer} 于 {at} 确认为{decision}{defect}。",
    "part.not_reviewed": "未复检。",
    "part.truth": "真实情况（模拟器）：{truth}",
    "part.truth.defective": "有缺陷",
    "part.truth.good": "良好",
    "part.parameters": "工艺参数",
    "part.shot_line": "模具 {die} · 压射时间 {at}",
    "part.trial": "试模压射",
    "part.code": "二维码 {code}",
    "part.col.parameter": "参数",
    "part.col.value": "数值",
    "part.col.unit": "单位",
    "part.col.limits": "控制限",
    "part.sensor_fault": "传感器故障",
    "part.outside": "超出控制限",
    "part.no_shot": "该铸件没有压射记录。",
    "part.cavity": "第 {cavity} 腔",
    "part.views": "{count} 个视角",
    "part.view": "视角 {view}",
    "part.view_deciding": "决定铸件判定（最差的视角）",
    "part.downstream": "后工序检测结果",
    "part.no_downstream": "后工序工位尚未上报该铸件的检测结果。",
    "part.escape": "漏检：castline 判为合格，后工序工位检出不合格。",
    "part.col.station": "工位",
    "part.col.test": "检测项目",
    "part.col.result": "结果",
    "part.col.defect": "缺陷",
    "part.col.tested": "检测时间",
    "downstream.test.xray": "X 射线探伤",
    "downstream.test.leak": "气密性检测",
    "downstream.test.machining": "机加工",
    "downstream.test.cmm": "三坐标测量",
    "heat.title": "热力图色标",
    "heat.low": "正常（照片不变）",
    "heat.threshold": "区域阈值 {value}",
    "heat.high": "{value} 及以上",
    "heat.high_relative": "区域阈值的 1.5 倍及以上",
    "heat.means": "颜色表示检测模型认为每处与合格铸件的差异程度（异常得分，模型自身单位）。"
    "超过区域阈值的地方加框并编号，最可能的缺陷排第一。",
    "heat.col.vs": "阈值倍数",
    "heat.col.size": "大小",
    "heat.px": "{area} 像素",
    "heat.no_regions": "没有超过阈值的区域。",
    "keys.title": "快捷键",
    "keys.next": "下一件",
    "keys.prev": "上一件",
    "keys.ok": "判为合格放行",
    "keys.ng": "确认不合格（先选缺陷类型）",
    "keys.later": "稍后复检（跳过）",
    "keys.open": "打开铸件详情",
    "keys.need_defect": "请先选择缺陷类型，再按 n。",
    "keys.later_done": "已留待稍后：{part}",
    "review.override_text": "castline 判定铸件 {key} 为{verdict}。判为合格会放行到下道工序："
    "请填写理由并确认。",
    "review.title": "复检队列",
    "review.waiting": "{n} 件待复检",
    "review.note": "逐件确认或改判；判为不合格须选择缺陷类型。每个确认的铸件都成为训练标签"
    "（castline review export DIR）。",
    "review.empty": "无待复检铸件：模型不确定（待复检）和隔离的铸件会在产线判定后出现在这里。",
    "review.no_photo": "无照片",
    "review.casting": "铸件",
    "review.no_model": "无模型",
    "review.defect": "缺陷类型（不合格时）",
    "review.comment": "备注",
    "review.ok": "确认合格",
    "review.ng": "确认不合格",
    "review.filters": "筛选",
    "review.by_machine": "压铸机",
    "review.by_verdict": "判定",
    "review.all": "全部",
    "review.none_match": "没有符合筛选条件的待复检铸件。",
    "review.clear": "显示全部",
    "review.past_end": "此页已超出复检队列末尾。",
    "review.first_page": "第一页",
    "review.pages": "分页",
    "review.prev": "较新",
    "review.next": "较早",
    "review.page_of": "第 {page} / {pages} 页",
    "review.recent": "最近确认",
    "review.col.decision": "结论",
    "review.col.defect": "缺陷",
    "review.col.by": "确认人",
    "review.col.at": "时间",
    "review.done": "铸件 {key} 已确认为{decision}。",
    "alarms.title": "报警",
    "alarms.empty": "无报警：SPC 判异和模具、工艺报警由分析模块触发后显示在这里。",
    "alarms.col.severity": "级别",
    "alarms.col.where": "位置",
    "alarms.col.alarm": "报警",
    "alarms.col.raised": "发生时间",
    "alarms.col.seen": "出现次数",
    "alarms.col.acked": "确认",
    "alarms.cleared": "已于 {at} 解除",
    "alarms.what_done": "采取了什么措施",
    "alarms.ack": "确认报警",
    "alarms.done": "报警 {id} 已确认。",
    "models.title": "检测模型",
    "models.empty": "尚未注册模型：castline up 首次运行时会训练一个（见 docs/vision.md）。",
    "models.group": "模具 {die} · 视角 {view}",
    "models.rollback": "回退…",
    "models.col.version": "版本",
    "models.col.registered": "注册时间",
    "models.col.metrics": "指标",
    "models.active": "使用中",
    "models.promote": "启用…",
    "models.promote_q": "启用 {version}？",
    "models.promote_text": "从下一个铸件起，模具 {die} 视角 {view} 使用版本 {version} 检测。",
    "models.promoted": "模具 {die} 视角 {view} 现使用 {version} 检测。",
    "models.rollback_q": "回退模具 {die} 视角 {view}？",
    "models.rollback_text": "在当前版本之前注册的版本重新启用。",
    "models.rolled_back": "模具 {die} 视角 {view} 已回退。",
    "confirm.title": "确认",
    "confirm.yes": "确定执行",
    "confirm.cancel": "取消",
    "confirm.reason": "理由",
    "review.override": "放行 castline 已拦下的铸件？",
    "flash.not_done": "未执行：{reason}",
    "dies.title": "模具寿命",
    "dies.chart": "模具寿命",
    "dies.maintenance": "维护 · 工厂 {plant}",
    "dies.col.die": "模具",
    "dies.col.machine": "压铸机",
    "dies.col.since": "上次维护后",
    "dies.col.ng_rate": "不合格率",
    "dies.col.action": "措施",
    "dies.col.why": "原因",
    "dies.col.part": "铸件",
    "dies.col.where": "位置",
    "dies.col.shots": "模次",
    "dies.col.rated": "额定寿命",
    "dies.col.used": "已用",
    "dies.shots": "{n} 模次",
    "dies.failures": "{unit}：{failures} 次故障，可用率 {availability}",
    "dies.empty": "尚无模具记录：压射消息中出现模具后显示。",
    "dies.cavities": "按型腔的废品率（近 7 天）· 工厂 {plant}",
    "dies.cavities_note": "一模多腔的模具：某一型腔的废品率明显高于其他型腔时，问题多在该型腔"
    "（排气、冷却、磨损），而不在压铸机。括号内为 95 % 置信区间。",
    "dies.col.cavity": "型腔",
    "dies.col.parts": "铸件数",
    "dies.col.ng": "不合格",
    "dies.col.scrap": "废品率",
    "kpi.title": "KPI 与效益报告",
    "kpi.downstream": "后工序工位 · 工厂 {plant} · 近 {days} 天",
    "kpi.downstream_none": "这段时间内后工序工位（X 射线探伤、气密性检测、机加工）没有上报结果。",
    "kpi.downstream_line": "共 {results} 条结果，其中 {ng} 条不合格。",
    "kpi.unmatched": "{n} 条结果对应的铸件 castline 不认识：二维码或铸件编号有误，或工位上报了"
    "其他产线的铸件。这些结果会保留，若 7 天内记录到该铸件则自动关联。",
    "kpi.unmatched_list": "查看列表",
    "kpi.unmatched_none": "所有结果都已关联到铸件。",
    "kpi.today": "工厂 {plant} · 今天自 {since} 起（ISO 22400）",
    "kpi.col.machine": "压铸机",
    "kpi.col.oee": "OEE",
    "kpi.col.availability": "可用率",
    "kpi.col.effectiveness": "性能效率",
    "kpi.col.quality": "质量率",
    "kpi.col.scrap": "废品率",
    "kpi.col.fpy": "一次合格率",
    "kpi.col.produced": "产量",
    "kpi.col.good": "合格",
    "kpi.col.scrap_n": "废品",
    "kpi.no_shots": "今天尚无压射：有压射后显示 KPI。",
    "kpi.trend": "{plant} 的 KPI 趋势",
    "kpi.benefit": "效益报告 · 最近 {days} 天对比之前 {before} 天",
    "kpi.col.measure": "指标",
    "kpi.col.unit": "单位",
    "kpi.col.baseline": "基准",
    "kpi.col.now": "当前",
    "kpi.col.change": "变化",
    "kpi.col.target": "目标",
    "kpi.met": "达成",
    "kpi.not_yet": "未达成",
    "kpi.castings": "基准期 {baseline} 件铸件，当前 {now} 件。",
    "kpi.days": "{n} 天",
    "pareto.title": "缺陷柏拉图 · 最近 {days} 天",
    "pareto.empty": "最近 {days} 天没有确认为不合格的铸件。复检员确认不合格铸件后，"
    "这里会按缺陷类型、压铸机和模具统计，按频次从高到低排列。",
    "pareto.note": "复检员确认为不合格的铸件，按频次从高到低排列。",
    "pareto.by.defect_type": "缺陷类型",
    "pareto.by.machine": "压铸机",
    "pareto.by.die": "模具",
    "pareto.col.parts": "件数",
    "pareto.col.share": "占比",
    "pareto.col.cumulative": "累计占比",
    "pareto.unnamed": "未注明",
    "pareto.by.shift": "班次",
    "pareto.between_shifts": "班次之间",
    "pareto.chart": "按{by}统计的确认不合格铸件 · 最近 {days} 天",
    "kpi.shifts": "工厂 {plant} · 按班次的 KPI，今天和昨天（工厂时间）",
    "kpi.shifts_empty": "自昨天零点（工厂时间）起尚无压铸机状态记录："
    "压铸机上报后，各班次在此显示。",
    "kpi.col.day": "日期",
    "kpi.col.shift": "班次",
    "kpi.col.span": "统计时段",
    "kpi.today_word": "今天",
    "kpi.yesterday_word": "昨天",
    "kpi.shift_running": "进行中",
    "kpi.calendar_note": "班次、休息、计划停机和节假日来自设置中的工厂日历。休息、计划停机、"
    "节假日及班次之间的时间不计为损失；压铸机在此期间生产的，计入生产。",
    "overload.title": "产线处理不过来",
    "overload.growing": "最近一分钟待检积压从 {start} 件增至 {end} 件。",
    "overload.late": "最近一分钟 {verdicts} 件中有 {late} 件（{share}）因判定晚于时限而隔离。",
    "overload.suggest": "减少产线的负荷或增加处理能力：减少模拟压铸机数量（castline up "
    "--machines）、降低模拟速度（--speed），或再启动一个共同分担的产线工作进程（castline line "
    "run，本机或另一台电脑）。",
    "dead.title": "无效消息",
    "dead.parked": "{n} 条消息暂存在消息代理中：无法作为无效消息保存到这里（主题不是合法的 NATS "
    "主题、消息超过代理的大小上限，或数据库拒绝写入）。查看方式：castline line parked",
    "dead.note": "校验未通过的消息，连同原因保存",
    "dead.empty": "无：所有消息均有效。校验未通过的消息会连同原因显示在这里。",
    "users.title": "用户与 API 密钥",
    "users.new_key": "{user} 的新 API 密钥（只显示一次，请立即复制）：",
    "users.col.user": "用户",
    "users.col.role": "角色",
    "users.col.plants": "工厂",
    "users.col.keys": "密钥",
    "users.col.since": "创建时间",
    "users.key_button": "新建 API 密钥",
    "users.revoke": "吊销密钥",
    "users.revoke_q": "吊销 {user} 的全部 API 密钥？",
    "users.add": "添加用户",
    "users.name": "用户名",
    "users.password": "密码（至少 10 个字符）",
    "users.plants": "工厂，逗号分隔（留空：全部）",
    "users.add_button": "添加",
    "users.added": "已添加用户 {user}。",
    "users.revoked": "已吊销 {user} 的 {n} 个 API 密钥。",
    "users.audit": "审计日志",
    "users.col.when": "时间",
    "users.col.who": "操作人",
    "users.col.action": "操作",
    "users.col.target": "对象",
    "users.col.detail": "详情",
    "api.title": "API 参考",
    "api.note": "JSON API 的全部接口。在 X-API-Key 请求头中发送 API 密钥。"
    "OpenAPI 3 描述文件（可导入任何 OpenAPI 工具）：",
    "api.col.parameter": "参数",
    "api.col.in": "位置",
    "api.col.type": "类型",
    "api.required": "必填",
    "api.body": "请求体（JSON）：{body}",
    "chart.shot_number": "压射号",
    "chart.no_readings": "暂无数据",
    "chart.rule_hit": "判异点",
    "chart.confirmed_defects": "已确认缺陷",
    "chart.no_defects": "暂无已确认缺陷",
    "chart.cumulative": "累计 %",
    "chart.parts": "铸件数",
    "chart.no_dies": "暂无模具记录",
    "chart.die_life": "模具额定寿命已用 %",
    # --- 效益报告与停机 (issue #15) ---
    "benefit.title": "效益报告",
    "benefit.open": "打开效益报告（四项目标、置信区间、假设）",
    "benefit.plant": "工厂 {plant}",
    "benefit.no_plan": (
        "无数据：分析配置文件未声明效益对比期（[benefit] baseline_since、baseline_until、"
        "since），或对比期尚未开始。"
    ),
    "benefit.periods": "基准期 {b0} 至 {b1}；对比期 {c0} 至 {c1}。",
    "benefit.castings": "基准期 {baseline} 件铸件，对比期 {now} 件。",
    "benefit.col.improvement": "改善",
    "benefit.col.interval": "置信区间",
    "benefit.col.verdict": "结论",
    "benefit.assumptions": "假设",
    "benefit.m.labour": "检验人工",
    "benefit.m.downtime": "停机（故障）",
    "benefit.m.quality": "质量（废品 + 漏检）",
    "benefit.m.management": "管理效率",
    "benefit.v.met": "达成",
    "benefit.v.not_met": "未达成",
    "benefit.v.inconclusive": "尚无定论",
    "benefit.v.no_data": "无数据",
    "unit.source units": "源数据单位",
    "labour.title": "已登记的检验工时",
    "labour.note": "按工厂日登记的检验人工工时。某期间内有登记时，检验人工目标按登记工时计算。",
    "labour.first_day": "起始日",
    "labour.last_day": "结束日",
    "labour.hours": "人工工时",
    "labour.comment": "备注（谁、哪个工位）",
    "labour.save": "登记工时",
    "labour.done": "已登记 {hours} 小时检验工时",
    "labour.col.from": "起",
    "labour.col.until": "止",
    "labour.col.by": "登记人",
    "labour.none": "尚未登记检验工时。",
    "refusal.labour_entry": "登记无效（结束须晚于开始，最长 31 天，工时大于 0 且不超过 200 人"
    "全程工作）",
    "refusal.labour_overlap": "这些日期与已登记的工时重叠",
    "refusal.labour_days": "日期格式如 2026-11-30",
    "downtime.title": "停机",
    "downtime.note": (
        "最近 {days} 天的停机按类别列出，计划停机排在最后。MTBF 和 MTTR 只计故障。"
        "导入数据中的空档在有人说明前保持未分类。"
    ),
    "downtime.plant": "工厂 {plant}",
    "downtime.empty": "此期间没有停机。",
    "downtime.col.class": "类别",
    "downtime.col.reason": "原因",
    "downtime.col.hours": "小时",
    "downtime.col.stops": "次数",
    "downtime.col.start": "开始",
    "downtime.col.machine_said": "压铸机报告",
    "downtime.reliability": "{machine}：故障 {n} 次，MTBF {mtbf} 小时，MTTR {mttr} 分钟",
    "downtime.reason_hint": "发生了什么",
    "downtime.save": "保存",
    "downtime.by": "由 {who}",
    "downtime.done": "{machine} 的停机已分类。",
    "stop.breakdown": "故障",
    "stop.setup": "调机 / 换模",
    "stop.planned": "计划停机",
    "stop.no_order": "无订单",
    "stop.unclassified": "未分类",
}

EN |= vocabulary.EN  # the plant's words (parameters, defects, rules, reasons)
ZH |= vocabulary.ZH
EN |= curve_words.EN  # shot curves and golden envelopes
ZH |= curve_words.ZH
EN |= alarm_words.EN  # live alarms and the causes people name
ZH |= alarm_words.ZH
EN |= chart_words.EN  # words drawn into the analytics charts
ZH |= chart_words.ZH
EN |= refusal_words.EN  # why an action was refused
ZH |= refusal_words.ZH
EN |= breach_words.EN  # a shot curve's envelope breach
ZH |= breach_words.ZH
EN |= die_words.EN  # a die's maintenance advice
ZH |= die_words.ZH
EN |= benefit_words.EN  # the benefit report's assumptions
ZH |= benefit_words.ZH
CATALOGUES: dict[Lang, Mapping[str, str]] = {"en": EN, "zh": ZH}


class Translator:
    """`t("id", name=value)`: the message of one language, its `{name}` fields filled."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang
        self.messages = CATALOGUES[lang]

    def __call__(self, message_id: str, **fields: object) -> str:
        text = self.messages.get(message_id)
        if text is None:
            return message_id  # visible on the page, so a walk of the pages catches it
        return text.format(**fields) if fields else text

    def has(self, message_id: str) -> bool:
        return message_id in self.messages

    def verdict(self, code: str | None) -> str:
        return self(f"verdict.{code}") if code else self("verdict.none")

    def state(self, code: str | None) -> str:
        return self(f"state.{code}") if code and self.has(f"state.{code}") else (code or "—")

    def param(self, name: str) -> str:
        """A process parameter's name (a plant's own parameters keep their id)."""
        return self(f"param.{name}") if self.has(f"param.{name}") else name

    def defect(self, code: str | None) -> str:
        if not code:
            return ""
        return self(f"defect.{code}") if self.has(f"defect.{code}") else code.replace("_", " ")

    def station_test(self, code: str) -> str:
        """A downstream station's test (xray, leak...); a plant's own test keeps its name."""
        key = f"downstream.test.{code}"
        return self(key) if self.has(key) else code

    def defect_means(self, code: str) -> str:
        return self(f"defect.{code}.means") if self.has(f"defect.{code}.means") else ""

    def rule(self, code: str) -> str:
        """What an SPC rule (or another alarm rule) means; unknown rules keep their id."""
        return self(f"rule.{code}") if self.has(f"rule.{code}") else code

    def subject(self, subject: str) -> str:
        """What an alarm is about: a process parameter, the set points, the scrap risk."""
        if self.has(f"param.{subject}"):
            return self(f"param.{subject}")
        return self(f"subject.{subject}") if self.has(f"subject.{subject}") else subject

    def reason(self, stored: str | None) -> str:
        """A verdict's stored reason in words for the line (`web/reasons.py`); a text no
        pattern knows is shown as stored."""
        understood = understand(stored)
        if understood.code is None:
            return understood.stored or "—"
        fields = dict(understood.fields)
        if understood.code is ReasonCode.WORST_VIEW:  # the deciding view's own reason
            fields["inner"] = self.reason(fields.get("inner"))
        return self(f"reason.{understood.code.value}", **fields)

    def breach(self, stored: str | None) -> str:
        """A golden-envelope breach as stored by the line, said in this language
        (`web/breach_words.py`); a text no pattern knows is shown as stored."""
        code, fields = breach_words.understand(stored or "")
        if code is None:
            return stored or "—"
        if "trace" in fields and self.has(f"breach.trace.{fields['trace']}"):
            fields["trace"] = self(f"breach.trace.{fields['trace']}")
        return self(f"breach.{code}", **fields)

    def for_script(self) -> dict[str, str]:
        """The words live.js writes into the page (verdicts, states, backlog)."""
        prefixes = ("verdict.", "state.", "live.", "line.")
        return {k: v for k, v in self.messages.items() if k.startswith(prefixes)}


def parse_lang(value: str | None) -> Lang | None:
    """`zh`, `zh-CN`, `zh-Hans`... -> zh; `en`, `en-GB`... -> en; anything else None."""
    if not value:
        return None
    base = value.strip().lower().replace("_", "-").split("-", 1)[0]
    for lang in LANGS:
        if base == lang:
            return lang
    return None


def from_accept_language(header: str) -> Lang | None:
    """The browser's most preferred language castline speaks (q-values honoured)."""
    ranked: list[tuple[float, int, Lang]] = []
    for index, item in enumerate(header.split(",")[:20]):
        name, _, params = item.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        lang = parse_lang(name)
        if lang and quality > 0:
            ranked.append((-quality, index, lang))
    return min(ranked)[2] if ranked else None


def choose(query: str | None, cookie: str | None, user: str | None, accept_language: str) -> Lang:
    """`?lang=`, else the remembered choice (cookie), else the user's setting, else the
    browser's languages, else English."""
    for candidate in (query, cookie, user):
        if (lang := parse_lang(candidate)) is not None:
            return lang
    return from_accept_language(accept_language) or "en"


def of_request(request: Request) -> Lang:
    """The language of a page or chart for this request (a user setting is not kept yet)."""
    return choose(
        request.query_params.get("lang"),
        request.cookies.get(COOKIE),
        None,
        request.headers.get("accept-language", ""),
    )
