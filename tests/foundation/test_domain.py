from __future__ import annotations

from datetime import UTC, datetime

import pytest

from castline.domain.defects import DefectCatalogue
from castline.domain.plant import Die, MaintenanceRecord
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState, TimeCategory
from castline.domain.verdict import Thresholds, Verdict, combine, decide

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_decide_bands_and_fail_safe() -> None:
    th = Thresholds(review=1.0, ng=2.0)
    assert decide(0.5, th) is Verdict.OK
    assert decide(1.0, th) is Verdict.REVIEW
    assert decide(2.5, th) is Verdict.NG
    assert decide(None, th) is Verdict.QUARANTINE
    assert decide(float("nan"), th) is Verdict.QUARANTINE
    assert decide(0.1, None) is Verdict.QUARANTINE
    with pytest.raises(ValueError):
        Thresholds(review=3.0, ng=2.0)


def test_only_ok_passes_and_worst_view_decides() -> None:
    assert [v for v in Verdict if v.passes] == [Verdict.OK]
    assert combine([Verdict.OK, Verdict.REVIEW]) is Verdict.REVIEW
    assert combine([Verdict.NG, Verdict.QUARANTINE, Verdict.OK]) is Verdict.QUARANTINE
    assert combine([]) is Verdict.QUARANTINE


def test_part_key_identity_and_parse() -> None:
    a = PartKey("p1", "m1", 42, data_matrix="DM1")
    assert a == PartKey("p1", "m1", 42)
    assert PartKey.parse(str(a)) == a
    with pytest.raises(ValueError):
        PartKey.parse("p1/m1/x")


def test_die_life_and_maintenance() -> None:
    die = Die("8412", "housing", rated_life_shots=1000, shot_counter=900)
    die.maintenance.append(MaintenanceRecord(NOW, 600, "polish"))
    assert die.shots_since_maintenance() == 300
    assert die.life_used() == pytest.approx(0.9)


def test_states_map_to_iso22400_categories() -> None:
    assert MachineState.RUNNING.category is TimeCategory.APT
    assert MachineState.BREAKDOWN.category is TimeCategory.ADOT
    assert MachineState.SETUP.category is TimeCategory.ADET
    assert not MachineState.PLANNED_STOP.in_planned_busy_time


def test_implausible_readings_are_named() -> None:
    shot = Shot(PartKey("p", "m", 1), "d", NOW, {"die_temp_fixed_c": 1449.0, "melt_temp_c": 700.0})
    assert shot.implausible() == ["die_temp_fixed_c"]


def test_defect_catalogue() -> None:
    catalogue = DefectCatalogue()
    assert "cold_shut" in catalogue
    assert "melt_temp_c" in catalogue.causes_of("cold_shut")
    with pytest.raises(KeyError, match="known:"):
        catalogue.get("rust")
