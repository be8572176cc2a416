"""A person's stop class counts in the KPIs: failures, MTBF and MTTR on the KPI page
agree with the downtime page after a stop is reclassified (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from castline.analytics import downtime, kpis
from castline.analytics.config import AnalyticsConfig
from castline.domain.states import MachineState
from castline.domain.stops import StopClass

from .plant import at, record_shift


def both_pages(engine: Engine) -> tuple[dict[str, object], downtime.Reliability]:
    config = AnalyticsConfig(planned_cycle_time_s=60)
    (row,) = kpis.kpi_table(engine, "p1", at(6), at(14), by="total", config=config)
    segs = downtime.segments(engine, "p1", at(6), at(14), "m1")
    (page,) = downtime.reliability(segs, at(6), at(14))
    return row, page


def assert_agree(row: dict[str, object], page: downtime.Reliability, failures: int) -> None:
    assert row["failures"] == page.breakdowns == failures
    assert row["mtbf_s"] == pytest.approx(page.mtbf_h * 3600)  # type: ignore[operator]
    assert row["mttr_s"] == pytest.approx(page.mttr_min * 60)  # type: ignore[operator]


def test_reclassified_stops_count_alike_on_kpis_and_downtime(engine: Engine) -> None:
    store = record_shift(engine)  # one breakdown 08:00-08:30
    store.record_state("p1", "m1", MachineState.OFFLINE, at(10), die="8412")  # an import gap
    store.record_state("p1", "m1", MachineState.RUNNING, at(10.25), die="8412")
    row, page = both_pages(engine)
    assert_agree(row, page, 1)
    assert row["repair_s"] == pytest.approx(1800)

    downtime.classify(engine, "p1", "m1", at(10), StopClass.BREAKDOWN, "encoder cable", "ana")
    row, page = both_pages(engine)
    assert_agree(row, page, 2)
    assert row["repair_s"] == pytest.approx(1800 + 900)
    assert row["mtbf_s"] == pytest.approx(6.75 * 3600 / 2)

    downtime.classify(engine, "p1", "m1", at(8), StopClass.SETUP, "die change, not a fault", "ana")
    row, page = both_pages(engine)
    assert_agree(row, page, 1)
    assert row["mttr_s"] == pytest.approx(900)
    assert row["availability"] == pytest.approx(6.75 / 8)  # time categories stay the state's
