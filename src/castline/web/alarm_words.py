"""The words of live alarms and their causes, in English and zh-CN (merged into the
catalogues of `web/i18n.py`)."""

from __future__ import annotations

EN = {
    "rule.quarantine_rate": "many parts held in QUARANTINE",
    "rule.backlog": "the line cannot keep up",
    "rule.envelope_breach": "shot curve outside the golden envelope",
    "subject.quarantine": "Held parts",
    "subject.line": "Line",
    "subject.envelope": "Shot curve",
    "alarm.step": "{name} {before} → {after}",
    "alarm.list_sep": ", ",
    "alarm.new_level_detail": "die {die} runs at a new level: {steps}; limits learnt anew "
    "from the next {shots} shots",
    "alarm.held_detail": "{share} of the last {window} parts of {machine} held (limit "
    "{limit}); latest: {latest}",
    "alarm.backlog_detail": "the oldest message has waited {oldest} s (verdict deadline "
    "{deadline} s), {waiting} waiting: parts go to QUARANTINE",
    "alarm.process_detail": "die {die}: {count} readings out of control ({names})",
    "alarms.cause": "cause",
    "alarms.choose_cause": "choose the cause",
    "alarms.cause_col": "Cause",
    "cause.melt": "melt (furnace, ladle, alloy temperature)",
    "cause.die_temperature": "die temperature (heating, cooling, cold die)",
    "cause.vacuum": "vacuum",
    "cause.shot_unit": "shot unit (plunger, tip, accumulator, hydraulics)",
    "cause.die_damage": "die damage",
    "cause.set_point_change": "set point changed on purpose",
    "cause.sensor": "sensor or reading fault",
    "cause.material": "material",
    "cause.maintenance": "maintenance",
    "cause.line_capacity": "line capacity (workers, computer)",
    "cause.other": "other (say which)",
}

ZH = {
    "rule.quarantine_rate": "隔离铸件过多",
    "rule.backlog": "产线处理跟不上",
    "rule.envelope_breach": "压射曲线超出标准包络线",
    "subject.quarantine": "隔离铸件",
    "subject.line": "产线",
    "subject.envelope": "压射曲线",
    "alarm.step": "{name} {before} → {after}",
    "alarm.list_sep": "、",
    "alarm.new_level_detail": "模具 {die} 运行在新的水平：{steps}；控制限由之后 {shots} 模次"
    "重新计算",
    "alarm.held_detail": "{machine} 最近 {window} 个铸件中 {share} 被隔离（上限 {limit}）；"
    "最近一件：{latest}",
    "alarm.backlog_detail": "产线落后：最早的消息已等待 {oldest} 秒（判定时限 {deadline} 秒），"
    "{waiting} 条待处理，铸件将被隔离",
    "alarm.process_detail": "模具 {die}：{count} 项工艺参数失控（{names}）",
    "alarms.cause": "原因",
    "alarms.choose_cause": "选择原因",
    "alarms.cause_col": "原因",
    "cause.melt": "铝液（熔炉、浇包、合金温度）",
    "cause.die_temperature": "模具温度（加热、冷却、冷模）",
    "cause.vacuum": "真空",
    "cause.shot_unit": "压射系统（冲头、冲头头部、蓄能器、液压）",
    "cause.die_damage": "模具损坏",
    "cause.set_point_change": "有意修改工艺设定值",
    "cause.sensor": "传感器或读数故障",
    "cause.material": "原材料",
    "cause.maintenance": "维修保养",
    "cause.line_capacity": "产线能力（工作进程、计算机）",
    "cause.other": "其他（请说明）",
}
