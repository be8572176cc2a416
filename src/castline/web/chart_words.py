"""The words drawn into the analytics charts (control chart, KPI trend, benefit bars) in
English and zh-CN, merged into the catalogues of `web/i18n.py`; `web/charts.py` turns
them into the `ChartWords` those charts take."""

from __future__ import annotations

EN: dict[str, str] = {
    "chart.time": "time",
    "chart.control_title": "{kind} chart: {parameter}",
    "chart.baseline": "baseline",
    "chart.beyond": "beyond 3σ",
    "chart.drift": "drift",
    "chart.ratio": "ratio",
    "chart.measured": "measured change",
    "chart.target": "target",
    "chart.improvement": "% improvement against the baseline (line: interval)",
    "chart.limit.lcl": "LCL",
    "chart.limit.center": "centre",
    "chart.limit.ucl": "UCL",
}

ZH: dict[str, str] = {
    "chart.time": "时间",
    "chart.control_title": "{kind} 控制图：{parameter}",
    "chart.baseline": "基准期",
    "chart.beyond": "超出 3σ",
    "chart.drift": "漂移",
    "chart.ratio": "比率",
    "chart.measured": "实测变化",
    "chart.target": "目标",
    "chart.improvement": "相对基准期的改善 %（线段：置信区间）",
    "chart.limit.lcl": "下控制限",
    "chart.limit.center": "中心线",
    "chart.limit.ucl": "上控制限",
}
