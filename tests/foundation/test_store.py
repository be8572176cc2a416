"""The system of record on SQLite and PostgreSQL: migrations, idempotent writes, queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect

from castline.domain.plant import CameraView, Machine
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.verdict import Verdict
from castline.store import database, reads
from castline.store import tables as t
from castline.store.reads import PartFilter
from castline.store.repository import Store

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def make_shot(n: int, machine: str = "m1", melt: float | None = 680.0) -> Shot:
    return Shot(
        key=PartKey("p1", machine, n),
        die="8412",
        at=T0 + timedelta(seconds=40 * n),
        params={"melt_temp_c": melt, "cycle_time_s": 40.0},
        extra={"ems_operation_time": 23.0},
    )


@pytest.fixture
def store(engine: Engine) -> Store:
    database.upgrade(engine)
    return Store(engine)


def test_migrations_upgrade_from_empty_and_downgrade(engine: Engine) -> None:
    assert database.current(engine) is None
    database.upgrade(engine)
    assert database.current(engine) == database.head()
    names = set(inspect(engine).get_table_names())
    assert set(t.metadata.tables) <= names
    database.downgrade(engine, "base")
    left = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert left == set()
    database.upgrade(engine)  # and back up again: downgrade left nothing behind
    assert database.current(engine) == database.head()


def test_schema_matches_tables_module(engine: Engine) -> None:
    """The migration creates exactly the columns of tables.py (no drift)."""
    database.upgrade(engine)
    inspector = inspect(engine)
    for name, table in t.metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert columns == {c.name for c in table.columns}, name


def test_same_shot_twice_is_one_row(store: Store) -> None:
    shots = [make_shot(n) for n in range(50)]
    assert store.record_shots(shots) == 50
    assert store.record_shots(shots) == 0
    assert store.record_shots([*shots[:10], make_shot(50)]) == 1
    assert store.count(t.shots) == 51


def test_bulk_batches_are_idempotent_and_keep_values(store: Store) -> None:
    """Large batches take the bulk path on PostgreSQL (COPY); same contract as small ones."""
    shots = [make_shot(n, melt=None if n % 7 == 0 else 600.0 + n) for n in range(400)]
    assert store.record_shots(shots[:250]) == 250
    assert store.record_shots(shots) == 150
    assert store.record_shots(shots) == 0
    fresh = [make_shot(n) for n in range(400, 650)]  # one shot sent twice in one batch
    assert store.record_shots([*fresh, fresh[3]]) == 250
    rows = {r["shot_number"]: r for r in store.shots("p1", limit=None)}
    assert len(rows) == 650
    assert rows[7]["melt_temp_c"] is None and rows[8]["melt_temp_c"] == 608.0
    assert rows[8]["extra"] == {"ems_operation_time": 23.0}
    assert rows[8]["at"] == T0 + timedelta(seconds=320)


def test_same_verdict_twice_keeps_the_first(store: Store) -> None:
    key = PartKey("p1", "m1", 7)
    assert store.record_verdict(key, Verdict.NG, T0, score=3.2, model_version="v1")
    assert not store.record_verdict(key, Verdict.OK, T0, score=0.1, model_version="v2")
    part = store.part(key)
    assert part is not None and part["verdict"]["verdict"] == "NG"
    assert store.count(t.verdicts) == 1


def test_shot_round_trip_keeps_values_units_and_extra(store: Store) -> None:
    store.record_shots([make_shot(3, melt=None)])
    row = store.shots("p1")[0]
    assert row["melt_temp_c"] is None  # not measured stays not measured
    assert row["cycle_time_s"] == 40.0
    assert row["extra"] == {"ems_operation_time": 23.0}
    assert row["at"] == T0 + timedelta(seconds=120)
    assert row["at"].tzinfo is not None


def test_queries_by_machine_time_verdict_and_parameter(store: Store) -> None:
    store.record_shots([make_shot(n, "m1", melt=600.0 + n) for n in range(20)])
    store.record_shots([make_shot(n, "m2") for n in range(5)])
    for n in range(0, 20, 4):
        store.record_verdict(PartKey("p1", "m1", n), Verdict.NG, T0, score=5.0)
    assert len(store.shots("p1")) == 25
    assert len(store.shots("p1", machine="m2")) == 5
    assert [r["shot_number"] for r in store.shots("p1", machine="m1", limit=3)] == [19, 18, 17]
    window = store.shots(
        "p1", machine="m1", since=T0 + timedelta(seconds=400), until=T0 + timedelta(seconds=600)
    )
    assert sorted(r["shot_number"] for r in window) == [10, 11, 12, 13, 14]
    ng = store.shots("p1", verdict=Verdict.NG)
    assert sorted(r["shot_number"] for r in ng) == [0, 4, 8, 12, 16]
    hot = store.shots("p1", parameter="melt_temp_c", low=615.0, high=617.0)
    assert sorted(r["shot_number"] for r in hot) == [15, 16, 17]
    assert store.verdict_counts("p1") == {"m1": {"NG": 5}}
    with pytest.raises(ValueError, match="unknown parameter"):
        store.shots("p1", parameter="nonsense")


def test_part_gathers_everything_about_a_casting(store: Store) -> None:
    key = PartKey("p1", "m1", 11)
    assert store.part(key) is None
    store.record_shots([make_shot(11)])
    store.record_image(key, "front", T0, "ab" * 32)
    store.record_image(key, "front", T0, "ab" * 32)
    store.record_verdict(key, Verdict.REVIEW, T0, score=1.5)
    store.record_review(key, Verdict.NG, "olga", T0, defect_type="cold_shut")
    store.record_truth(key, True, "cold_shut", "cold die")
    part = store.part(key)
    assert part is not None
    assert len(part["images"]) == 1
    assert part["review"]["defect_type"] == "cold_shut"
    assert part["truth"]["defective"] is True
    with pytest.raises(ValueError, match="OK or NG"):
        store.record_review(key, Verdict.QUARANTINE, "olga", T0)


def test_states_and_dead_letters(store: Store) -> None:
    store.ensure_machine("p1", Machine("m1", views=(CameraView("front"), CameraView("top"))))
    store.ensure_machine("p1", Machine("m1"))
    assert store.count(t.machines) == 1
    assert store.record_state("p1", "m1", MachineState.RUNNING, T0)
    assert not store.record_state("p1", "m1", MachineState.RUNNING, T0)
    store.record_state("p1", "m1", MachineState.BREAKDOWN, T0 + timedelta(hours=1))
    assert [r["state"] for r in store.states("p1")] == ["running", "breakdown"]
    assert store.record_dead_letter("castline/v1/p1/m1/shot", "not JSON", b"\xff", T0)
    assert not store.record_dead_letter("castline/v1/p1/m1/shot", "not JSON", b"\xff", T0)
    # The same bytes as another message (another stream sequence) is another letter.
    assert store.record_dead_letter("castline/v1/p1/m1/shot", "not JSON", b"\xff", T0, "S:2")
    assert not store.record_dead_letter("castline/v1/p1/m1/shot", "not JSON", b"\xff", T0, "S:2")
    letters = store.dead_letters()
    assert letters[0]["payload"] == b"\xff" and letters[0]["reason"] == "not JSON"


def test_the_die_mounted_on_a_machine_is_its_newest_shots_or_a_newer_states(store: Store) -> None:
    assert store.mounted_die("p1", "m1") is None
    store.record_state("p1", "m1", MachineState.SETUP, T0, die="7001")
    assert store.mounted_die("p1", "m1") == "7001"  # announced before its first shot
    store.record_shots([make_shot(n) for n in (1, 2)])
    store.record_state("p1", "m1", MachineState.IDLE, T0 + timedelta(hours=1))  # names none
    assert store.mounted_die("p1", "m1") == "8412"
    store.record_state("p1", "m1", MachineState.SETUP, T0 + timedelta(hours=2), die="9100")
    assert store.mounted_die("p1", "m1") == "9100"  # the die change, before its first shot
    assert store.mounted_die("p1", "m2") is None


def test_naive_timestamps_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.record_state("p1", "m1", MachineState.IDLE, datetime(2026, 1, 1))


def test_the_part_join_from_shots_or_from_verdicts(store: Store) -> None:
    """One join for everyone: a part decided without a shot record appears from its
    verdict, not from the shots; outcome columns and filters hold on both databases."""
    s, v = t.shots, t.verdicts
    store.record_shots([make_shot(n) for n in range(4)])
    store.record_shots([Shot(PartKey("p1", "m1", 9), "other", T0, {})])
    store.record_shots([Shot(PartKey("p2", "m1", 1), "8412", T0, {})])
    store.record_image(PartKey("p1", "m1", 1), "top", T0, "bb" * 32)
    store.record_image(PartKey("p1", "m1", 1), "front", T0, "aa" * 32)
    store.record_verdict(PartKey("p1", "m1", 1), Verdict.REVIEW, T0 + timedelta(minutes=1))
    store.record_review(PartKey("p1", "m1", 1), Verdict.NG, "olga", T0, defect_type="porosity")
    store.record_truth(PartKey("p1", "m1", 2), False)
    store.record_verdict(PartKey("p1", "m1", 7), Verdict.QUARANTINE, T0 + timedelta(hours=1))

    def keys(query: Any) -> list[int]:
        return sorted(r["shot_number"] for r in reads.rows(store.engine, query))

    columns = (*reads.SHOT_FACTS, *reads.OUTCOME, reads.first_image(s))
    rows = reads.rows(store.engine, reads.parts(*columns, where=PartFilter("p1", die="8412")))
    by_number = {r["shot_number"]: r for r in rows}
    assert sorted(by_number) == [0, 1, 2, 3]  # not the other die, not the other plant
    assert by_number[1]["review"] == "NG" and by_number[1]["image"] == "aa" * 32
    assert by_number[1]["verdict"] == "REVIEW" and by_number[2]["truth"] in (False, 0)
    assert by_number[0]["verdict"] is None and by_number[0]["image"] is None

    decided = reads.parts(v.c.shot_number, s.c.die, anchor=v, where=PartFilter(plant="p1"))
    assert keys(decided) == [1, 7]  # shot 7 has no shot record, still a part
    late = PartFilter(plants=["p1"], since=T0 + timedelta(minutes=30))
    assert keys(reads.parts(v.c.shot_number, anchor=v, where=late)) == [7]
    assert keys(reads.parts(s.c.shot_number, where=PartFilter(plants=[]))) == []
    flagged = PartFilter("p1", verdict=Verdict.REVIEW)
    assert keys(reads.parts(s.c.shot_number, where=flagged)) == [1]
    assert store.verdict_counts("p1", since=T0 + timedelta(minutes=30)) == {"m1": {"QUARANTINE": 1}}
