"""Benefit report: the four targets measured on a baseline period and a comparison period,
with bootstrap intervals, a verdict a manager can sign, and every assumption listed.

Targets (what the plant was promised), each an improvement in its own direction:

- inspection labour -15 %: change of inspection person-hours per casting made;
- downtime -50 %: change of breakdown time per planned busy time (classified stops);
- quality +5 %: relative fall of the bad rate (scrap + escapes per casting), the
  baseline standardised to the comparison period's die mix (dies in both periods only);
- management efficiency +20 %: baseline handling time / comparison handling time - 1,
  handling time = mean time to recovery of breakdowns, plus mean time from alarm to an
  acknowledgement with a named cause when both periods have such alarms.

The periods come from the plan (`analytics.benefit_plan`), fixed before the figures are
read. Blocks (days, shifts or hours) of each period are resampled with replacement
(seeded); a target is "met" only when its whole interval clears it, "not met" when the
whole interval misses it, else "inconclusive".
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from castline.analytics import kpis
from castline.analytics.benefit_measure import PeriodData, measure
from castline.analytics.benefit_plan import BenefitPlan, PlanError
from castline.analytics.config import AnalyticsConfig


@dataclass(frozen=True, slots=True)
class Target:
    metric: str
    unit: str
    target_pct: float  # negative: the figure must fall by at least this much


TARGETS = (
    Target("inspection labour", "inspection h per 1,000 castings", -15.0),
    Target("downtime", "breakdown share of planned busy time", -50.0),
    Target("quality", "scrap + escapes per casting, die mix of the comparison", 5.0),
    Target("management efficiency", "handling h per problem", 20.0),
)


@dataclass(frozen=True, slots=True)
class Period:
    since: datetime
    until: datetime


class Sums:
    """Sums over a choice of blocks (one row per resample, or the observed one)."""

    def __init__(self, d: PeriodData, pick: np.ndarray) -> None:
        def total(a: np.ndarray) -> np.ndarray:
            return np.asarray(a[pick].sum(axis=-2 if a.ndim == 2 else -1))

        self.castings, self.labour_h = total(d.castings), total(d.labour_h)
        self.pbt_s, self.breakdown_s = total(d.pbt_s), total(d.breakdown_s)
        self.recovery_s, self.recoveries = total(d.recovery_s), total(d.recoveries)
        self.cause_s, self.causes = total(d.cause_s), total(d.causes)
        self.made, self.bad = total(d.made), total(d.bad)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def figures(
    b: Sums, c: Sums, common: tuple[np.ndarray, np.ndarray], with_causes: bool
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(baseline, comparison, improvement %) of each target's figure."""
    out = {}
    labour = (_ratio(b.labour_h, b.castings) * 1000, _ratio(c.labour_h, c.castings) * 1000)
    share = (_ratio(b.breakdown_s, b.pbt_s), _ratio(c.breakdown_s, c.pbt_s))
    for name, (base, cur) in (("inspection labour", labour), ("downtime", share)):
        out[name] = (base, cur, (_ratio(cur, base) - 1) * 100)
    bi, ci = common  # the same dies' columns in both periods
    rate_b = _ratio(b.bad[..., bi], b.made[..., bi])
    mix = _ratio(c.made[..., ci], c.made[..., ci].sum(axis=-1, keepdims=True))
    standard = np.nansum(np.where(mix > 0, rate_b * mix, 0), axis=-1)
    standard = np.where(np.isnan(rate_b).any(axis=-1) & (mix > 0).any(axis=-1), np.nan, standard)
    rate_c = _ratio(c.bad[..., ci].sum(axis=-1), c.made[..., ci].sum(axis=-1))
    out["quality"] = (standard, rate_c, (1 - _ratio(rate_c, standard)) * 100)
    handle_b = _ratio(b.recovery_s, b.recoveries) / 3600
    handle_c = _ratio(c.recovery_s, c.recoveries) / 3600
    if with_causes:
        handle_b = handle_b + _ratio(b.cause_s, b.causes) / 3600
        handle_c = handle_c + _ratio(c.cause_s, c.causes) / 3600
    out["management efficiency"] = (handle_b, handle_c, (_ratio(handle_b, handle_c) - 1) * 100)
    return out


def _common_dies(b: PeriodData, c: PeriodData) -> tuple[np.ndarray, np.ndarray, list[str]]:
    both = sorted(set(b.dies) & set(c.dies))
    return (
        np.array([b.dies.index(d) for d in both], dtype=int),
        np.array([c.dies.index(d) for d in both], dtype=int),
        both,
    )


def verdict(
    low: float | None, high: float | None, target: float, observed: float | None = None
) -> str:
    """Met only when the whole interval clears the target; not met when none of it does.
    A change observed without an interval (too few blocks or events in a period to
    resample) is inconclusive; "no data" only when nothing was observed."""
    if low is None or high is None:
        return "no data" if observed is None else "inconclusive"
    if target < 0:
        return "met" if high <= target else "not met" if low > target else "inconclusive"
    return "met" if low >= target else "not met" if high < target else "inconclusive"


def bootstrap(
    b: PeriodData, c: PeriodData, plan: BenefitPlan, with_causes: bool
) -> list[dict[str, Any]]:
    """One row per target: observed figures, the interval of the improvement, verdict."""
    bi, ci, _ = _common_dies(b, c)
    ab, ac = np.flatnonzero(b.active()), np.flatnonzero(c.active())
    observed = figures(Sums(b, ab), Sums(c, ac), (bi, ci), with_causes)
    draws: dict[str, np.ndarray] = {}
    if len(ab) >= 2 and len(ac) >= 2:
        rng = np.random.default_rng(plan.seed)
        pick_b = ab[rng.integers(0, len(ab), size=(plan.resamples, len(ab)))]
        pick_c = ac[rng.integers(0, len(ac), size=(plan.resamples, len(ac)))]
        resampled = figures(Sums(b, pick_b), Sums(c, pick_c), (bi, ci), with_causes)
        draws = {name: change for name, (_, _, change) in resampled.items()}
    tail = (1 - plan.confidence) / 2 * 100
    rows = []
    for target in TARGETS:
        base, cur, change = (_number(x) for x in observed[target.metric])
        low = high = None
        sample = draws.get(target.metric)
        if sample is not None and change is not None:
            finite = sample[np.isfinite(sample)]
            if finite.size >= 0.95 * sample.size:  # a few undefined draws: still an interval
                low, high = (float(v) for v in np.percentile(finite, [tail, 100 - tail]))
        rows.append(
            {
                "metric": target.metric,
                "unit": target.unit,
                "baseline": base,
                "current": cur,
                "change_pct": change,
                "low_pct": low,
                "high_pct": high,
                "target_pct": target.target_pct,
                "verdict": verdict(low, high, target.target_pct, change),
                "met": verdict(low, high, target.target_pct, change) == "met",
            }
        )
    return rows


def _number(x: np.ndarray) -> float | None:
    value = float(np.asarray(x).reshape(-1)[0]) if np.asarray(x).size else float("nan")
    return value if np.isfinite(value) else None


def periods(plan: BenefitPlan, now: datetime | None = None) -> tuple[Period, Period]:
    """The plan's two periods; PlanError when the plan does not declare them."""
    plan.check()
    assert plan.baseline_since and plan.baseline_until and plan.since
    until = plan.until or now or datetime.now(UTC)
    if until <= plan.since:
        raise PlanError(("until",), "the comparison period has not begun yet")
    return Period(plan.baseline_since, plan.baseline_until), Period(plan.since, until)


def report(
    engine: Engine,
    plant: str,
    plan: BenefitPlan,
    config: AnalyticsConfig | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The benefit report of a plant under a declared plan (PlanError: no plan)."""
    config = config or AnalyticsConfig()
    base, cur = periods(plan, now)
    b = measure(engine, plant, base.since, base.until, plan.resample_by, config,
                plan.baseline_inspection_h_per_day)  # fmt: skip
    c = measure(engine, plant, cur.since, cur.until, plan.resample_by, config,
                plan.current_inspection_h_per_day)  # fmt: skip
    with_causes = bool(b.causes.sum() and c.causes.sum())
    rows = bootstrap(b, c, plan, with_causes)
    _, _, dies = _common_dies(b, c)
    return {
        "plant": plant,
        "plan": plan.as_dict() | {"until": cur.until.isoformat()},
        "baseline": _period_facts(b),
        "current": _period_facts(c),
        "rows": rows,
        "assumptions": assumptions(b, c, plan, config, dies, with_causes),
    }


def _period_facts(d: PeriodData) -> dict[str, Any]:
    return {
        "since": d.since.isoformat(),
        "until": d.until.isoformat(),
        "blocks": int(d.active().sum()),
        "labour_source": d.labour_source,
        **d.facts,
    }


def assumptions(
    b: PeriodData,
    c: PeriodData,
    plan: BenefitPlan,
    config: AnalyticsConfig,
    dies: list[str],
    with_causes: bool,
) -> list[str]:
    """Everything a reader must accept for the figures to mean what they say."""
    said = [
        f"periods from the {plan.source}, fixed before this report: baseline "
        f"{b.since.isoformat()} to {b.until.isoformat()}, comparison {c.since.isoformat()} "
        f"to {c.until.isoformat()}"
        + ("" if plan.until else " (its end: when the report was made)"),
        f"{plan.resamples} bootstrap resamples (seed {plan.seed}) of whole {plan.resample_by}s "
        f"with production ({int(b.active().sum())} baseline, {int(c.active().sum())} "
        f"comparison), treated as independent; {plan.confidence:.0%} percentile intervals",
        "a target is met only when its whole interval clears it",
    ]
    for name, d in (("baseline", b), ("comparison", c)):
        said.append(f"inspection hours of the {name}: {_labour_words(d, config)}")
    only = sorted((set(b.dies) | set(c.dies)) - set(dies))
    said.append(
        f"quality: scrap is the final disposition (a person's review, else castline's "
        f"verdict, else the ground truth); escapes are known only where a ground truth "
        f"was recorded ({b.facts['castings_with_truth']:.0f} baseline, "
        f"{c.facts['castings_with_truth']:.0f} comparison castings); the baseline is "
        f"standardised to the comparison's mix of dies {', '.join(dies) or '(none)'}"
        + (f"; dies in one period only are left out: {', '.join(only)}" if only else "")
    )
    said.append(
        "downtime: breakdown stops only, as the machines classified them or a person "
        f"corrected them; unclassified stops ({b.facts['unclassified_h']:.1f} h baseline, "
        f"{c.facts['unclassified_h']:.1f} h comparison) count in planned busy time but not "
        "as breakdowns; planned stops are outside planned busy time"
    )
    said.append(
        "management: handling time is the mean time to recovery of breakdowns"
        + (
            " plus the mean time from an alarm to its acknowledgement with a named cause "
            "(alarms raised and acknowledged inside the period)"
            if with_causes
            else "; time to a named cause is left out: "
            f"{b.facts['alarms_with_cause']:.0f} baseline and "
            f"{c.facts['alarms_with_cause']:.0f} comparison alarms were acknowledged with a "
            "cause, and both periods need some to compare"
        )
    )
    return said


def _labour_words(d: PeriodData, config: AnalyticsConfig) -> str:
    if d.labour_source == "logged":
        return "the labour log (work: inspection)"
    if d.labour_source == "declared plan":
        return "the declared staffing plan, not measured"
    if d.labour_source == "castline decisions":
        return (
            f"{d.facts['decided_by_person']:.0f} castings a person had to decide x "
            f"{config.manual_inspection_s:.0f} s (manual_inspection_s), other inspection "
            "work not counted"
        )
    return "none logged or declared: not measurable"


def to_csv(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(result["rows"][0]))
    writer.writeheader()
    writer.writerows(result["rows"])
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def to_html(result: dict[str, Any], images: dict[str, bytes]) -> str:
    """One self-contained page: the table, the assumptions and the PNG charts."""
    import base64

    head = ["metric", "unit", "baseline", "current", "change_pct", "low_pct", "high_pct",
            "target_pct", "verdict"]  # fmt: skip
    rows = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r[k])}</td>" for k in head) + "</tr>" for r in result["rows"]
    )
    said = "".join(f"<li>{html.escape(a)}</li>" for a in result["assumptions"])
    figures_html = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        for title, png in images.items()
    )
    b, c = result["baseline"], result["current"]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>castline benefit report: {html.escape(result['plant'])}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;"
        "border-bottom:1px solid #ccc}</style></head><body>"
        f"<h1>Benefit report: plant {html.escape(result['plant'])}</h1>"
        f"<p>Baseline {b['since']} to {b['until']} ({b['castings']:.0f} castings); "
        f"comparison {c['since']} to {c['until']} ({c['castings']:.0f} castings).</p>"
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{rows}</table>"
        f"<h2>Assumptions</h2><ul>{said}</ul>{figures_html}</body></html>"
    )


def daily_kpis(
    engine: Engine, plant: str, baseline: Period, current: Period, config: AnalyticsConfig
) -> list[dict[str, Any]]:
    """Plant KPIs per day over both periods, for the trend chart."""
    rows = []
    for period in (baseline, current):
        rows += kpis.kpi_table(
            engine, plant, period.since, period.until, by="day", level="plant", config=config
        )
    return sorted(rows, key=lambda r: pd.Timestamp(r["period_start"]))
