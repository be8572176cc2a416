"""The KPIs from the stored hours equal the KPIs from every shot, on SQLite and
PostgreSQL: multi-cavity dies, trials, reviews, truths without a verdict, downstream
NG, periods whose edges cut hours (a plant at UTC+05:30), facts that come late."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from castline.analytics import kpis
from castline.analytics.config import AnalyticsConfig
from castline.domain.plant_calendar import PlantCalendar, ShiftPlan
from castline.domain.states import MachineState
from castline.store import database, rollups
from castline.store import tables as t
from castline.store.repository import insert_ignore

START = datetime(2026, 3, 2, tzinfo=UTC)
HOURS = 50
VERDICTS = ("OK", "OK", "OK", "NG", "REVIEW", "QUARANTINE", None)


def _record(engine: Engine, rng: random.Random, first: int, hours: tuple[float, float]) -> int:
    """Shots every few minutes on two machines in [hours) after START, with what a plant
    records about their castings; returns the next shot number."""
    rows: dict[str, list[dict[str, object]]] = {n: [] for n in ("shots", "verdicts", "reviews")}
    rows |= {"truths": [], "downstream_results": []}
    n, at = first, START + timedelta(hours=hours[0])
    while at < START + timedelta(hours=hours[1]):
        for machine in ("m1", "m2"):
            n += 1
            _part(rows, rng, machine, n, at)
        at += timedelta(minutes=rng.uniform(2, 9))
    with engine.begin() as conn:
        for name, found in rows.items():
            insert_ignore(conn, t.metadata.tables[name], found)
    return n


def _part(
    rows: dict[str, list[dict[str, object]]], rng: random.Random, m: str, n: int, at: datetime
) -> None:
    die = rng.choice(("A", "B"))  # B casts two castings a shot
    key = {"plant": "p1", "machine": m, "shot_number": n}
    rows["shots"].append(key | {"die": die, "at": at, "trial": rng.random() < 0.05,
                                "cycle_time_s": rng.uniform(40, 70), "extra": {}})  # fmt: skip
    for cavity in (1, 2) if die == "B" else (1,):
        part = key | {"cavity": cavity}
        verdict = rng.choice(VERDICTS)
        if verdict:
            told = {"verdict": verdict, "score": 0.5, "reason": "", "decided_at": at}
            rows["verdicts"].append(part | told | {"regions": [], "timings": {}})
        elif rng.random() < 0.5:
            rows["truths"].append(part | {"defective": rng.random() < 0.3, "cause": ""})
        if rng.random() < 0.2:
            decision = rng.choice(("OK", "NG"))
            rows["reviews"].append(part | {"decision": decision, "reviewer": "qa",
                                           "comment": "", "at": at})  # fmt: skip
        if rng.random() < 0.08:
            rows["downstream_results"].append(_downstream(m, n, cavity, at, rng))


def _downstream(m: str, n: int, cavity: int, at: datetime, rng: random.Random) -> dict[str, object]:
    return {
        "plant": "p1", "station": "xray", "test": "xray", "result": rng.choice(("OK", "NG")),
        "tested_at": at, "received_at": at, "ref": f"{m}/{n}/{cavity}", "machine": m,
        "shot_number": n, "cavity": cavity, "matched_at": at, "values": {}, "note": "",
        "source": "broker",
    }  # fmt: skip


def _states(engine: Engine) -> None:
    rows = [
        {"plant": "p1", "machine": m, "state": s.value, "at": START + timedelta(hours=h),
         "die": "A", "reason": ""}
        for m in ("m1", "m2")
        for h, s in ((0, MachineState.RUNNING), (7.3, MachineState.BREAKDOWN),
                     (8.1, MachineState.RUNNING), (30.6, MachineState.SETUP),
                     (31, MachineState.RUNNING))
    ]  # fmt: skip
    with engine.begin() as conn:
        insert_ignore(conn, t.machine_states, rows)


@pytest.fixture(autouse=True)
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """No margin below the ids seen: with it, every hour of these small records (a few
    thousand ids) would count as late and be read from the shots, not the hours."""
    monkeypatch.setattr(rollups, "ID_MARGIN", 0)


INDIA = AnalyticsConfig(
    planned_cycle_by_die={"A": 55.0},
    calendar=PlantCalendar(
        ZoneInfo("Asia/Kolkata"), (ShiftPlan("E", time(6), 8), ShiftPlan("L", time(14), 8))
    ),
)


def _same(engine: Engine) -> None:
    """Every period and level the same from the hours as from the shots."""
    since, until = START + timedelta(minutes=95), START + timedelta(hours=HOURS)
    for by, level in (
        ("day", "machine"),
        ("shift", "line"),
        ("total", "plant"),
        ("week", "machine"),
    ):
        for config in (AnalyticsConfig(), INDIA):
            args = (engine, "p1", since, until)
            mine = kpis.kpi_table(*args, by=by, level=level, config=config)
            reference = kpis.kpi_table(*args, by=by, level=level, config=config, from_shots=True)
            assert mine == reference, (by, level)
    one = kpis.kpi_table(engine, "p1", since, until, machine="m2")
    assert one == kpis.kpi_table(engine, "p1", since, until, machine="m2", from_shots=True)


def test_kpis_from_hours_equal_kpis_from_shots(engine: Engine) -> None:
    database.upgrade(engine)
    rng = random.Random(18)
    n = _record(engine, rng, 0, (0, HOURS))
    _states(engine)
    written = rollups.keep_rollups(engine, START + timedelta(hours=40, minutes=20))
    assert written > 0
    h = t.shot_hours.c
    with engine.connect() as conn:
        assert conn.execute(select(func.max(h.hour))).scalar() is not None
        stored = conn.execute(select(func.sum(h.castings) + func.sum(h.trials))).scalar()
    assert stored and stored > 0
    _same(engine)

    # late: shots and reviews of hours made already, then the duty of the next hour
    n = _record(engine, rng, n, (3.2, 3.9))
    with engine.begin() as conn:
        late = [{"plant": "p1", "machine": "m1", "shot_number": k, "cavity": 1,
                 "decision": "NG", "reviewer": "qa", "comment": "late", "at": START}
                for k in range(1, 60)]  # fmt: skip
        conn.execute(t.reviews.delete().where(t.reviews.c.shot_number < 60))
        insert_ignore(conn, t.reviews, late)
    _same(engine)  # before the next duty: those hours are read from the shots
    rollups.keep_rollups(engine, START + timedelta(hours=41, minutes=5))
    _same(engine)

    # out of order: reviews of shots 60-69 in one transaction after that duty, and the
    # review of shot 62 in one that took its id then but commits only after the next duty
    # read the ids (a worker writes three batches at once)
    r = t.reviews.c
    with engine.begin() as conn:
        conn.execute(t.reviews.delete().where(r.shot_number.between(60, 69)))
        again = [{"plant": "p1", "machine": f"m{2 - k % 2}", "shot_number": k, "cavity": 1,
                  "decision": "NG", "reviewer": "qa", "comment": "again", "at": START}
                 for k in range(60, 70)]  # fmt: skip
        insert_ignore(conn, t.reviews, again)
        late = conn.execute(select(t.reviews).where(r.shot_number == 62)).one()._asdict()
        assert (
            conn.execute(select(t.shots).where(t.shots.c.shot_number == 62)).one().machine == "m2"
        )
        conn.execute(t.reviews.delete().where(r.id == late["id"]))
    rollups.keep_rollups(engine, START + timedelta(hours=42, minutes=5))
    _same(engine)
    with engine.begin() as conn:
        conn.execute(t.reviews.insert(), [late])  # its id is below the ids that duty read
    _same(engine)
    rollups.keep_rollups(engine, START + timedelta(hours=43, minutes=5))
    _same(engine)

    # idempotent: making every hour again changes nothing
    with engine.connect() as conn:
        before = sorted(tuple(r) for r in conn.execute(select(t.shot_hours)))
    rollups.roll_up(engine, None, START, START + timedelta(hours=41))
    with engine.connect() as conn:
        assert sorted(tuple(r) for r in conn.execute(select(t.shot_hours))) == before


def test_without_a_roll_up_the_kpis_read_the_shots(sqlite_engine: Engine) -> None:
    database.upgrade(sqlite_engine)
    _record(sqlite_engine, random.Random(1), 0, (0, 5))
    until = START + timedelta(hours=5)
    rows = kpis.kpi_table(sqlite_engine, "p1", START, until, by="total")
    assert rows == kpis.kpi_table(sqlite_engine, "p1", START, until, by="total", from_shots=True)
    assert sum(r["pq"] for r in rows) > 0


def test_the_kpis_read_the_stored_hours(sqlite_engine: Engine) -> None:
    database.upgrade(sqlite_engine)
    _record(sqlite_engine, random.Random(2), 0, (0, 6))
    rollups.keep_rollups(sqlite_engine, START + timedelta(hours=6))
    h = t.shot_hours
    with sqlite_engine.begin() as conn:  # a stored hour told wrong shows in the KPIs
        conn.execute(h.update().where(h.c.hour == START + timedelta(hours=2)).values(castings=999))
    rows = kpis.kpi_table(sqlite_engine, "p1", START, START + timedelta(hours=6), by="total")
    assert sum(r["pq"] for r in rows) > 999


def test_the_median_cycle_reads_the_stored_lists(engine: Engine) -> None:
    """The suggested planned cycle comes from the hours' cycle lists, exact to the last
    digit; an hour made before the lists were kept (NULL) is read from its shots."""
    database.upgrade(engine)
    _record(engine, random.Random(3), 0, (0, 6))
    rollups.keep_rollups(engine, START + timedelta(hours=6))
    h = t.shot_hours
    args = (engine, "p1", START, START + timedelta(hours=6))
    reference = kpis.kpi_table(*args, by="total", from_shots=True)
    early = h.c.hour < START + timedelta(hours=3)
    with engine.begin() as conn:  # as migration 0014 leaves the hours made before it
        conn.execute(h.update().where(early, h.c.machine == "m1").values(cycles=None))
    assert kpis.kpi_table(*args, by="total") == reference  # an hour half listed: no shot twice
    with engine.begin() as conn:
        conn.execute(h.update().where(early).values(cycles=None))
    assert kpis.kpi_table(*args, by="total") == reference
    with engine.begin() as conn:  # a list told wrong shows in the median
        conn.execute(h.update().values(cycles="1000.5,1000.5,1000.5,1000.5,1000.5"))
    told = kpis.kpi_table(*args, by="total")
    assert all(r["suggested_planned_cycle_s"] == 1000.5 for r in told)
    medians = {r["unit"]: r["suggested_planned_cycle_s"] for r in reference}
    assert all(40 < m < 70 for m in medians.values()) and len(medians) == 2
