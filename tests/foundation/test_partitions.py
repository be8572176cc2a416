"""Time partitions of shots and machine states (migration 0012): the upgrade keeps the
rows, every time is stored, writes stay exactly-once, retention drops whole partitions;
SQLite stays one table per fact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from castline.analytics import queries as aq
from castline.cli import app
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.verdict import Verdict
from castline.store import database, partitions, reads
from castline.store import tables as t
from castline.store.facts import Facts, StateFact, record_facts
from castline.store.repository import Store
from castline.web import queries

NOW = datetime.now(UTC).replace(microsecond=0)


def shot(n: int, at: datetime, machine: str = "m1", plant: str = "p1") -> Shot:
    return Shot(key=PartKey(plant, machine, n), die="d1", at=at, params={"cycle_time_s": 40.0})


def shot_times(engine: Engine) -> dict[int, datetime]:
    with engine.connect() as conn:
        found = conn.execute(select(t.shots.c.shot_number, t.shots.c.at))
        return {int(n): at for n, at in found}


def test_upgrade_keeps_rows_ids_and_sequences(pg_engine: Engine) -> None:
    database.upgrade(pg_engine, "0011")
    store = Store(pg_engine)
    old = NOW - timedelta(days=400)
    store.record_shots([shot(1, old), shot(2, NOW), shot(3, NOW + timedelta(seconds=5))])
    store.record_verdict(PartKey("p1", "m1", 1), Verdict.OK, NOW)
    record_facts(pg_engine, Facts(states=[StateFact("p1", "m1", MachineState.RUNNING, old)]))
    with pg_engine.connect() as conn:
        ids_before = sorted(conn.execute(select(t.shots.c.id)).scalars())
    database.upgrade(pg_engine)
    with pg_engine.connect() as conn:
        assert partitions.is_partitioned(conn, "shots")
        assert partitions.is_partitioned(conn, "machine_states")
        assert sorted(conn.execute(select(t.shots.c.id)).scalars()) == ids_before
        months = {p.start for p in partitions.partitions(conn, "shots")}
        # the old row's month got a partition of its own, not the default one
        assert partitions.period_start(old) in months
        in_default = conn.execute(text("SELECT count(*) FROM shots_default")).scalar_one()
    assert in_default == 0
    assert shot_times(pg_engine) == {1: old, 2: NOW, 3: NOW + timedelta(seconds=5)}
    assert store.count(t.machine_states) == 1
    assert store.part(PartKey("p1", "m1", 1))["verdict"]["verdict"] == "OK"  # type: ignore[index]
    store.record_shots([shot(4, NOW)])  # the sequence goes on after the copied ids
    with pg_engine.connect() as conn:
        new_id = conn.execute(select(t.shots.c.id).where(t.shots.c.shot_number == 4)).scalar()
    assert new_id is not None and new_id > max(ids_before)
    database.downgrade(pg_engine, "0011")  # and back: one table again, the rows kept
    with pg_engine.connect() as conn:
        assert not partitions.is_partitioned(conn, "shots")
    assert set(shot_times(pg_engine)) == {1, 2, 3, 4}


def test_any_time_is_stored_and_exactly_once(engine: Engine) -> None:
    database.upgrade(engine)
    store = Store(engine)
    far_past = datetime(1971, 1, 1, tzinfo=UTC)
    far_future = datetime(2199, 12, 31, tzinfo=UTC)
    times = {1: far_past, 2: NOW, 3: NOW + timedelta(days=40), 4: far_future}
    batch = [shot(n, at) for n, at in times.items()]
    assert store.record_shots(batch) == 4
    assert store.record_shots(batch) == 0  # a redelivery adds nothing
    # many at once go through COPY on PostgreSQL: still exactly once
    many = [shot(100 + i, NOW - timedelta(days=i)) for i in range(300)]
    assert store.record_shots(many) == 300
    assert store.record_shots(many) == 0
    # the same shot number again at another time: the first record stays, as before
    assert store.record_shots([shot(2, NOW + timedelta(minutes=3))]) == 0
    assert store.record_shots([shot(101, NOW + timedelta(minutes=3)) for _ in range(1)]) == 0
    assert store.count(t.shots) == 304
    assert shot_times(engine)[2] == NOW
    # within one batch too, the first of the two is kept
    assert store.record_shots([shot(9, NOW), shot(9, NOW + timedelta(seconds=1))]) == 1
    assert shot_times(engine)[9] == NOW
    # another machine's shot of the same number is another part
    assert store.record_shots([shot(2, NOW, machine="m2")]) == 1


def test_partitions_made_ahead_and_rows_moved_from_default(pg_engine: Engine) -> None:
    database.upgrade(pg_engine)
    store = Store(pg_engine)
    later = partitions.add_months(partitions.period_start(NOW), 9)
    store.record_shots([shot(1, later + timedelta(hours=1))])  # no partition yet: default
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM shots_default")).scalar_one() == 1
    created = partitions.ensure_partitions(pg_engine, now=later)
    assert f"shots_p{later:%Y%m%d}" in created
    assert f"machine_states_p{later:%Y%m%d}" in created
    assert partitions.ensure_partitions(pg_engine, now=later) == []  # made once
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM shots_default")).scalar_one() == 0
        moved = f"SELECT count(*) FROM shots_p{later:%Y%m%d}"
        assert conn.execute(text(moved)).scalar_one() == 1
    assert store.record_shots([shot(1, later + timedelta(hours=1))]) == 0


def test_retention_drops_old_partitions_and_their_parts(engine: Engine) -> None:
    database.upgrade(engine)
    store = Store(engine)
    old, older = NOW - timedelta(days=400), datetime(1990, 6, 1, tzinfo=UTC)
    partitions.ensure_partitions(engine, now=old, ahead=0)  # old's month; 1990: default
    store.record_shots([shot(1, older), shot(2, old), shot(3, NOW)])
    for n in (1, 2, 3):
        store.record_verdict(PartKey("p1", "m1", n), Verdict.OK, NOW)
    states = [StateFact("p1", "m1", MachineState.RUNNING, at) for at in (old, NOW)]
    record_facts(engine, Facts(states=states))
    before = partitions.period_start(NOW - timedelta(days=100))
    gone = partitions.drop_history(engine, before)
    assert gone["shots"] == 2 and gone["states"] == 1
    if engine.dialect.name == "postgresql":
        assert gone["partitions"] == 2  # the old month of shots and of states
        with engine.connect() as conn:
            left = {p.start for p in partitions.partitions(conn, "shots")}
        assert all(start >= before for start in left)
    assert set(shot_times(engine)) == {3}
    assert store.count(t.verdicts) == 1  # the dropped shots' verdicts went with them
    assert store.count(t.machine_states) == 1
    assert store.record_shots([shot(4, old)]) == 1  # an old time is still stored


def test_sqlite_stays_unpartitioned(sqlite_engine: Engine) -> None:
    database.upgrade(sqlite_engine)
    assert database.current(sqlite_engine) == database.head()
    assert partitions.ensure_partitions(sqlite_engine) == []
    with sqlite_engine.connect() as conn:
        assert not partitions.is_partitioned(conn)
        found = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'shots'")).scalar()
    assert "UNIQUE (plant, machine, shot_number)" in str(found)
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.shots)).scalar_one() == 0


def test_history_command_drops_by_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'castline.db'}"
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CASTLINE_DATABASE_URL", url)
    monkeypatch.setenv("CASTLINE_LANG", "en")
    engine = database.open_store(url)
    Store(engine).record_shots([shot(1, NOW - timedelta(days=50)), shot(2, NOW)])
    kept = CliRunner().invoke(app, ["db", "history"])  # the default: keep everything
    assert kept.exit_code == 0, kept.output
    assert "kept" in kept.output and Store(engine).count(t.shots) == 2
    monkeypatch.setenv("CASTLINE_SHOT_RETENTION_DAYS", "30")
    dropped = CliRunner().invoke(app, ["db", "history"])
    assert dropped.exit_code == 0, dropped.output
    assert "older than 30 days" in dropped.output and "1 shot(s)" in dropped.output
    assert set(shot_times(engine)) == {2}
    monkeypatch.setenv("CASTLINE_LANG", "zh")
    assert "早于 30 天" in CliRunner().invoke(app, ["db", "history"]).output


def test_newest_reads_by_index_agree_with_the_record(engine: Engine) -> None:
    """The overview's per-machine reads (newest state, highest shot number, machines and
    plants from the facts) found by index probes, on both databases."""
    database.upgrade(engine)
    store = Store(engine)
    store.record_shots(
        [shot(n, NOW - timedelta(minutes=n), machine=m, plant=p)
         for p in ("p1", "p2") for m in ("m1", "m2", "m3") for n in range(1, 6)]
    )  # fmt: skip
    states = [
        StateFact("p1", m, state, NOW - timedelta(hours=h))
        for m in ("m1", "m4")
        for h, state in ((30, MachineState.IDLE), (2, MachineState.RUNNING))
    ]
    record_facts(engine, Facts(states=states))
    assert [r["id"] for r in reads.rows(engine, reads.known_plants())] == ["p1", "p2"]
    machines = [r["id"] for r in reads.rows(engine, reads.known_machines("p1"))]
    assert machines == ["m1", "m2", "m3", "m4"]  # m4: known from its states only
    newest = {r["machine"]: r for r in reads.rows(engine, reads.latest_states("p1"))}
    assert {m: r["state"] for m, r in newest.items()} == {"m1": "running", "m4": "running"}
    earlier = reads.rows(engine, reads.latest_states("p1", before=NOW - timedelta(hours=3)))
    assert {r["machine"]: r["state"] for r in earlier} == {"m1": "idle", "m4": "idle"}
    top = reads.newest_part(t.shots, "p2")
    found = reads.rows(engine, select(top.c.machine, top.c.shot_number))
    assert sorted((r["machine"], r["shot_number"]) for r in found) == [
        ("m1", 5), ("m2", 5), ("m3", 5)
    ]  # fmt: skip
    tiles = queries.machine_tiles(engine, "p1", NOW - timedelta(days=1))
    assert {tile["machine"]: tile["state"] for tile in tiles}["m4"] == "running"
    # the KPIs' states of a window: those in it, and the one in force at its start
    window = aq.states(engine, "p1", until=NOW, since=NOW - timedelta(hours=3))
    assert list(zip(window["machine"], window["state"], strict=True)) == [
        ("m1", "idle"), ("m1", "running"), ("m4", "idle"), ("m4", "running")
    ]  # fmt: skip
