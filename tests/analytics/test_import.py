"""Import of a slice of the real KAMP export: twice adds rows once; bad rows reported."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from castline.analytics import importer, mapping
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store

ROWS = 300


def test_importing_twice_adds_rows_once(engine: Engine, kamp_data: Path) -> None:
    database.upgrade(engine)
    source = kamp_data / "process" / "train_group_8600.csv"
    first = importer.import_shots(engine, source, mapping.KAMP, "kamp", limit=ROWS, progress=False)
    second = importer.import_shots(engine, source, mapping.KAMP, "kamp", limit=ROWS, progress=False)
    store = Store(engine)
    assert first.rows == ROWS and sum(first.rejected.values()) == 0
    assert first.shots_added == ROWS == store.count(t.shots, plant="kamp")
    assert first.truths_added == ROWS
    assert first.states_added >= 1
    assert second.shots_added == second.truths_added == second.states_added == 0
    assert store.count(t.shots, plant="kamp") == ROWS
    with engine.connect() as conn:
        shot = conn.execute(select(t.shots).order_by(t.shots.c.at).limit(1)).one()._mapping
    assert shot["machine"] == "die-8600" and shot["die"] == "8600"
    assert 0.0 < shot["fast_shot_velocity_mps"] < 1.0  # mm/s converted to m/s
    assert shot["at"].utcoffset().total_seconds() == 0


def test_bad_rows_are_counted_with_their_reason(sqlite_engine: Engine, kamp_data: Path) -> None:
    database.upgrade(sqlite_engine)
    lines = (kamp_data / "process" / "test_group_8600.csv").read_text(encoding="utf-8-sig")
    header, *rows = lines.splitlines()[:6]
    columns = header.split(",")
    broken = rows[0].split(",")
    broken[columns.index("datetime")] = "not a time"
    hot = rows[1].split(",")
    hot[columns.index("upper_mold_temp1")] = "1449"
    source = sqlite_engine.url.database
    assert source is not None
    path = Path(source).with_name("slice.csv")
    path.write_text("\n".join([header, ",".join(broken), ",".join(hot), *rows[2:]]) + "\n")
    report = importer.import_shots(sqlite_engine, path, mapping.KAMP, "p1", progress=False)
    assert report.rejected == {"unreadable datetime": 1}
    assert report.implausible["die_temp_fixed_c"] >= 1
    assert report.shots_added == 4
    stored = Store(sqlite_engine).shots("p1", limit=None)
    faulty = [s for s in stored if "implausible" in s["extra"]]
    assert faulty and faulty[0]["die_temp_fixed_c"] is None
    assert faulty[0]["extra"]["implausible"]["die_temp_fixed_c"] == 1449
    states = Store(sqlite_engine).states("p1")
    assert [s["state"] for s in states] == ["running", "planned_stop"]  # export ends: stop
