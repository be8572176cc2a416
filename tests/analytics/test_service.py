"""The analytics the dashboard and `castline report` call, on a recorded plant; SPC alarms
through the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from castline.analytics import alarms, benefit, charts, maintenance, rootcause, spc
from castline.analytics.benefit_plan import BenefitPlan
from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store, insert_ignore

from .plant import DAY, at, record_shift

PNG = b"\x89PNG\r\n\x1a\n"


def record_drift(engine: Engine, n: int = 700, shift_at: int = 500) -> Store:
    """Melt temperature steady for 500 shots, then 4 degrees hotter; hot shots fail more."""
    database.upgrade(engine)
    store = Store(engine)
    store.ensure_machine("p1", Machine("m7"))
    rng = np.random.default_rng(2)
    melt = rng.normal(700, 1.5, n)
    melt[shift_at:] += 4
    shots = [
        Shot(PartKey("p1", "m7", i), "8412", DAY + timedelta(minutes=i), {"melt_temp_c": float(v)})
        for i, v in enumerate(melt)
    ]
    store.record_shots(shots)
    ng = rng.random(n) < np.where(melt > 703, 0.3, 0.02)
    truths = [
        {
            "plant": "p1",
            "machine": "m7",
            "shot_number": s.key.shot_number,
            "defective": bool(bad),
            "defect_type": "cold_shut" if bad else None,
            "cause": "",
        }
        for s, bad in zip(shots, ng, strict=True)
    ]
    with engine.begin() as conn:
        insert_ignore(conn, t.truths, truths)
    return store


def test_spc_scan_raises_each_alarm_once(engine: Engine) -> None:
    record_drift(engine)
    first = spc.monitor(engine, "p1", parameters=("melt_temp_c",), baseline_shots=500)
    (chart,) = first
    assert chart["chart"] == "I-MR" and chart["baseline_points"] == 500
    assert {"nelson1", "nelson2", "ewma", "cusum_up"} <= set(chart["rules"])
    assert chart["rules"]["cusum_up"]["first_at"] >= (DAY + timedelta(minutes=500)).isoformat()
    began = datetime.fromisoformat(chart["rules"]["cusum_up"]["onset_at"])
    assert abs(began - (DAY + timedelta(minutes=500))) <= timedelta(minutes=10)
    again = spc.monitor(engine, "p1", parameters=("melt_temp_c",), baseline_shots=500)
    assert again[0]["alarms"] == chart["alarms"]  # same alarms, bumped, not new ones
    open_alarms = alarms.listing(engine, "p1")
    assert len(open_alarms) == len(chart["alarms"])
    assert all(a["count"] == 2 for a in open_alarms)
    # one process alarm for the die: points beyond 3 sigma (the drift is in its summary)
    (alarm,) = open_alarms
    assert alarm["subject"] == "process" and alarm["rule"] == "out_of_control"
    assert alarm["severity"] == "warning"  # inside the spec
    assert [a["rule"] for a in chart["alarms"]] == ["nelson1"]
    assert "one point beyond 3 sigma" in alarm["message"]
    fired = chart["rules"]["nelson1"]
    assert datetime.fromisoformat(alarm["raised_at"]) == datetime.fromisoformat(fired["first_at"])
    assert datetime.fromisoformat(alarm["last_seen_at"]) == datetime.fromisoformat(fired["last_at"])


def test_a_drift_alone_raises_one_drift_alarm(sqlite_engine: Engine) -> None:
    record_drift(sqlite_engine, n=900, shift_at=500)
    rules = ("ewma", "cusum_up", "cusum_down")
    (chart,) = spc.monitor(sqlite_engine, "p1", parameters=("melt_temp_c",), rules=rules)
    (alarm,) = alarms.listing(sqlite_engine, "p1")
    assert alarm["rule"] == "out_of_control" and "slow drift" in alarm["message"]
    assert [a["rule"] for a in chart["alarms"]] == ["drift"]
    began = datetime.fromisoformat(chart["rules"]["drift"]["onset_at"])
    assert abs(began - (DAY + timedelta(minutes=500))) <= timedelta(minutes=10)


def test_control_chart_root_cause_and_png(sqlite_engine: Engine) -> None:
    record_drift(sqlite_engine)
    chart = spc.control_chart(
        sqlite_engine, "p1", "m7", "melt_temp_c", baseline_shots=500, last=100
    )
    assert len(chart["series"]) == 100 and chart["ppk"] is not None
    assert chart["cpk"] is None and chart["capability_index"] == "Ppk"  # single shots
    assert any("nelson1" in p["rules"] for p in chart["series"])
    stored = spc.stored_chart(sqlite_engine, "p1", "m7", "melt_temp_c", baseline_shots=500)
    png = charts.machine_chart_png(stored, "p1", "m7")
    assert png.startswith(PNG)
    cause = rootcause.report(sqlite_engine, "p1", machine="m7")
    top = cause["findings"][0]
    assert top["parameter"] == "melt_temp_c" and top["side"] == ">"
    assert cause["defects"][0]["confirmed"] == ["melt_temp_c"]


def test_maintenance_and_benefit(sqlite_engine: Engine) -> None:
    store = record_shift(sqlite_engine)
    store.ensure_die("8412", rated_life_shots=10, machine="m1", plant="p1")
    result = maintenance.report(sqlite_engine, "p1", at(6), at(14))
    (die,) = result["dies"]
    assert die["shots_since_maintenance"] == 10 and die["action"].startswith("maintain now")
    assert "die 8412: 100% of rated life" in die["reason"]
    assert result["downtime"][0]["stop_class"] == "breakdown"  # planned stops never head it
    assert result["machines"][0]["failures"] == 1
    plan = BenefitPlan(at(-24), at(-16), at(6), at(14), resample_by="hour")
    report = benefit.report(sqlite_engine, "p1", plan)
    labour = report["rows"][0]
    assert labour["metric"] == "inspection labour" and labour["current"] is not None
    assert labour["verdict"] == "no data"  # nothing in the baseline: no verdict
    page = benefit.to_html(report, {"chart": PNG})
    assert "inspection labour" in page and "data:image/png;base64" in page
    assert "Assumptions" in page
    assert benefit.to_csv(report).startswith("metric,unit,baseline")


def test_subgroup_chart_plots_means_and_catches_a_shift() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(50, 1, 1000)
    x[600:] += 1.5
    at = pd.date_range(DAY, periods=1000, freq="min")
    chart = spc.build_chart("melt_temp_c", at, x, baseline_shots=500, subgroup=5)
    assert chart.kind == "X-bar/R" and chart.points.size == 200 and chart.baseline_points == 100
    assert chart.limits.sigma == pytest.approx(1 / np.sqrt(5), rel=0.1)  # sigma of a mean
    hits = chart.fired["nelson1"]
    assert hits[120:].sum() > 10 * max(1, hits[:100].sum())  # the shift, not the baseline
    assert spc.build_chart("melt_temp_c", at, x, baseline_shots=500, subgroup=12).kind == "X-bar/S"


def test_benefit_labour_needs_logged_or_declared_hours(sqlite_engine: Engine) -> None:
    """A baseline before castline has no decisions to count: without logged hours or a
    declared staffing plan its labour is not measurable (never assumed all manual)."""
    store = record_shift(sqlite_engine)
    earlier = [
        Shot(PartKey("p1", "m1", 1000 + n), "8412", at(-16 + n * 0.1), {}) for n in range(20)
    ]
    store.record_shots(earlier)
    for n, shot in enumerate(earlier):
        store.record_truth(shot.key, defective=n < 4)
    plan = BenefitPlan(at(-18), at(-12), at(6), at(14), resample_by="hour")
    report = benefit.report(sqlite_engine, "p1", plan)
    labour = {r["metric"]: r for r in report["rows"]}["inspection labour"]
    assert labour["baseline"] is None and labour["verdict"] == "no data"
    assert report["baseline"]["labour_source"] == "none"
    assert report["current"]["labour_source"] == "castline decisions"
    assert labour["current"] == pytest.approx(20 / 3600 / 10 * 1000)  # 1 of 10 by a person
    declared = replace(plan, baseline_inspection_h_per_day=24.0)
    report = benefit.report(sqlite_engine, "p1", declared)
    assert report["baseline"]["labour_source"] == "declared plan"
    assert any("declared staffing plan, not measured" in a for a in report["assumptions"])


def test_ng_trend_sees_a_wearing_die() -> None:
    rng = np.random.default_rng(9)
    wearing = (rng.random(4000) < np.linspace(0.01, 0.08, 4000)).astype(float)
    steady = (rng.random(4000) < 0.03).astype(float)
    slope, rising = maintenance.ng_trend(wearing)
    assert rising and slope == pytest.approx(7 / 4, rel=0.35)  # 7 points over 4000 shots
    assert not maintenance.ng_trend(steady)[1]
    action, reason = maintenance.recommend("8412", 0.5, slope, rising)
    assert action == "plan polish at next setup" and "NG rate rising" in reason
