"""The plant's words in English and Chinese: process parameters, defect types, SPC rules,
alarm subjects and the reasons of a verdict, as a die-caster says them.

Kept apart from the page texts of `web/i18n.py` (which merges them into its catalogues)
so a plant's process or quality engineer can review the vocabulary in one place. The
English parameter, defect and rule texts are the domain's own (one source); the Chinese
ones are the words of a Chinese die-casting shop floor (压铸机, 模具, 压射, 铸件, 冷隔,
气孔, 缩孔, 飞边...), not word-for-word translations.
"""

from __future__ import annotations

from castline.domain.defects import DEFAULT_CATALOGUE
from castline.domain.spc import RULE_TEXT
from castline.domain.units import PARAMETERS

EN: dict[str, str] = (
    {f"param.{p.name}": p.label[:1].upper() + p.label[1:] for p in PARAMETERS}
    | {f"defect.{d.code}": d.name for d in DEFAULT_CATALOGUE}
    | {f"defect.{d.code}.means": d.description for d in DEFAULT_CATALOGUE}
    | {f"rule.{code}": text for code, text in RULE_TEXT.items()}
    | {
        "rule.scrap_risk": "predicted scrap risk rising",
        "rule.out_of_control": "readings out of control (one alarm per die)",
        "subject.process": "Process",
        "subject.set_points": "Set points",
        "subject.scrap_risk": "Scrap risk",
        "alarm.spc_detail": "centre {center} {unit}, control limits {lcl} – {ucl}",
        "alarm.level_detail": "new set point {after} {unit} (was {before})",
        "alarm.risk_detail": "predicted scrap risk {risk} over the last {shots} shots, "
        "{times}× the recent NG rate {usual}",
        # why castline decided a part as it did, written for the person at the line
        "reason.score": "anomaly score {score}",
        "reason.late_start": "Not inspected: the line was {late} s behind when this photo's "
        "turn came, so the part was held. Check it by hand.",
        "reason.too_slow": "Not inspected in time: the inspection did not finish in the "
        "{budget} s left before the verdict deadline, so the part was held. Check it by hand.",
        "reason.die_unknown": "The die on the machine is not known yet (no shot or state "
        "message named it), so no inspection model could be chosen. Check the part by hand.",
        "reason.model_failed": "The inspection model of die {die} (view {view}) could not be "
        "loaded ({detail}). Tell the engineer; check the part by hand.",
        "reason.no_model": "No inspection model is active for die {die} (view {view}): an "
        "engineer must train or promote one. Check the part by hand.",
        "reason.inspection_failed": "The inspection failed ({detail}). Check the part by hand.",
        "reason.trial": "Warm-up (trial) shot: scrapped by rule.",
        "reason.photo_refused": "The photo could not be used ({detail}). Check the part by hand.",
        "reason.no_photo": "No photo of the casting came within {window} s of the shot. "
        "Check the part by hand.",
        "reason.cell_timeout": "The robot cell had no verdict within {deadline} s and held "
        "the part. Check it by hand.",
        "reason.cell_timeout_journal": "The robot cell had no verdict within {deadline} s and "
        "held the part (the verdict journal was unreachable). Check it by hand.",
        "reason.views_missing": "Only {came} of the {expected} views of the casting came "
        "within {window} s of the shot ({views}), so the part was held. Check it by hand.",
        "reason.worst_view": "The worst of its {count} views ({views}) decides. View {view}: "
        "{inner}",
        "reason.machine_text": "castline's own words: {text}",
    }
)

ZH: dict[str, str] = {
    # 工艺参数
    "param.melt_temp_c": "铝液温度",
    "param.die_temp_fixed_c": "定模温度",
    "param.die_temp_moving_c": "动模温度",
    "param.sleeve_temp_c": "压室温度",
    "param.coolant_temp_c": "冷却水温度",
    "param.slow_shot_velocity_mps": "慢压射速度（一级）",
    "param.fast_shot_velocity_mps": "快压射速度（二级）",
    "param.intensification_pressure_bar": "增压压力",
    "param.biscuit_thickness_mm": "料饼厚度",
    "param.cycle_time_s": "压铸周期",
    "param.vacuum_mbar": "型腔真空度（绝对压力）",
    "param.spray_time_s": "脱模剂喷涂时间",
    "param.curve_switchover_mm": "快慢压射切换位置（曲线）",
    "param.curve_fast_velocity_mean_mps": "快压射平均速度（曲线）",
    "param.curve_fast_velocity_min_mps": "快压射最低速度（曲线）",
    "param.curve_fill_time_ms": "充型时间（曲线）",
    "param.curve_pressure_rise_ms": "增压建压时间（曲线）",
    "param.curve_intensification_bar": "增压压力（曲线）",
    "param.curve_biscuit_mm": "料饼厚度（曲线）",
    # 缺陷类型
    "defect.gas_porosity": "气孔",
    "defect.gas_porosity.means": "卷气或气体滞留形成的圆形光滑孔洞",
    "defect.shrinkage_porosity": "缩孔（缩松）",
    "defect.shrinkage_porosity.means": "金属液凝固收缩时补缩不足形成的不规则孔洞",
    "defect.cold_shut": "冷隔",
    "defect.cold_shut.means": "两股金属液相遇时温度过低，未能熔合",
    "defect.misrun": "浇不足（欠铸）",
    "defect.misrun.means": "型腔未充满：金属液先凝固了",
    "defect.flash": "飞边（毛刺）",
    "defect.flash.means": "分型面处挤出的薄片金属",
    "defect.crack": "裂纹（热裂）",
    "defect.crack.means": "凝固过程中应力造成的开裂",
    "defect.soldering": "粘模",
    "defect.soldering.means": "金属粘焊在模具表面，顶出时被拉伤",
    "defect.blister": "鼓泡",
    "defect.blister.means": "表皮下气体鼓起的泡",
    "defect.inclusion": "夹杂",
    "defect.inclusion.means": "金属中的氧化物或其他异物",
    "defect.die_mark": "模具印痕",
    "defect.die_mark.means": "模具表面损伤印在铸件上",
    # SPC 判异规则
    "rule.nelson1": "单点超出 3σ 控制限",
    "rule.nelson2": "连续 9 点落在中心线同一侧",
    "rule.nelson3": "连续 6 点持续上升或下降",
    "rule.nelson4": "连续 14 点交替上下",
    "rule.nelson5": "3 点中有 2 点落在同一侧 2σ 以外",
    "rule.nelson6": "5 点中有 4 点落在同一侧 1σ 以外",
    "rule.nelson7": "连续 15 点落在 1σ 以内（控制限过宽或数据分层）",
    "rule.nelson8": "连续 8 点落在中心线两侧 1σ 以外（数据混合）",
    "rule.we1": "单点超出 3σ 控制限",
    "rule.we2": "3 点中有 2 点落在同一侧 2σ 以外",
    "rule.we3": "5 点中有 4 点落在同一侧 1σ 以外",
    "rule.we4": "连续 8 点落在中心线同一侧",
    "rule.ewma": "EWMA 超出控制限：缓慢漂移",
    "rule.cusum_up": "CUSUM 向上：缓慢上漂",
    "rule.cusum_down": "CUSUM 向下：缓慢下漂",
    "rule.level_shift": "持续水平偏移（工艺设定值变更？）：之后重新计算控制限",
    "rule.drift": "缓慢漂移（EWMA 或 CUSUM）",
    "rule.baseline_misfit": "大多数点触发判异规则：基准期与该工序不符",
    "rule.scrap_risk": "预测废品风险上升",
    "rule.out_of_control": "工艺参数失控（每副模具一条报警）",
    "subject.process": "工艺过程",
    "subject.set_points": "工艺设定值",
    "subject.scrap_risk": "废品风险",
    "alarm.spc_detail": "中心线 {center} {unit}，控制限 {lcl} – {ucl}",
    "alarm.level_detail": "新设定值 {after} {unit}（原为 {before}）",
    "alarm.risk_detail": (
        "最近 {shots} 模次的预测废品风险 {risk}，是近期检出不良率 {usual} 的 {times} 倍"
    ),
    # 判定原因（写给产线人员）
    "reason.score": "异常得分 {score}",
    "reason.late_start": "未检测：轮到这张照片时产线已落后 {late} 秒，铸件被隔离。请人工检查。",
    "reason.too_slow": "检测超时：判定时限前剩余的 {budget} 秒内检测未完成，铸件被隔离。"
    "请人工检查。",
    "reason.die_unknown": "尚不知道压铸机上安装的模具（压射或状态消息中未给出），无法选择检测"
    "模型。请人工检查铸件。",
    "reason.model_failed": "模具 {die}（视角 {view}）的检测模型加载失败（{detail}）。"
    "请通知工程师，并人工检查铸件。",
    "reason.no_model": "模具 {die}（视角 {view}）没有启用的检测模型：需要工程师训练或启用一个。"
    "请人工检查铸件。",
    "reason.inspection_failed": "检测出错（{detail}）。请人工检查铸件。",
    "reason.trial": "预热（试模）压射：按规定报废。",
    "reason.photo_refused": "照片无法使用（{detail}）。请人工检查铸件。",
    "reason.no_photo": "压射后 {window} 秒内未收到铸件照片。请人工检查铸件。",
    "reason.cell_timeout": "机器人单元 {deadline} 秒内未收到判定，铸件被隔离。请人工检查。",
    "reason.cell_timeout_journal": "机器人单元 {deadline} 秒内未收到判定，铸件被隔离"
    "（判定日志无法访问）。请人工检查。",
    "reason.views_missing": "压射后 {window} 秒内只收到铸件 {expected} 个视角中的 {came} 个"
    "（{views}），铸件被隔离。请人工检查。",
    "reason.worst_view": "按 {count} 个视角（{views}）中最差的一个判定。视角 {view}：{inner}",
    "reason.machine_text": "系统原文：{text}",
}
