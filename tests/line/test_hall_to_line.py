"""The simulated hall through the line runtime: simulator -> NATS -> runtime -> cells, store."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import nats
from sqlalchemy import func, select

from castline.app import die_codes
from castline.line.runtime import LineRuntime
from castline.messaging import jetstream
from castline.messaging.broker import EmbeddedNats
from castline.settings import Settings
from castline.sim.downstream import DownstreamConfig
from castline.sim.faults import Fault
from castline.sim.fleet import FleetConfig
from castline.sim.runner import HallConfig, run_hall, views_of
from castline.store import tables as t
from castline.store.database import open_store
from castline.store.repository import Store
from castline.vision.model import InspectionModel
from castline.vision.registry import ModelRegistry

from .conftest import until


async def test_faulty_hall_every_part_decided_once(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path
) -> None:
    settings = Settings(home=tmp_path / "home", data=tmp_path / "no-data")
    engine = open_store(settings.db_url)
    fleet = FleetConfig(machines=3, seed=4)
    model = InspectionModel.load(synthetic_model)
    for die in die_codes(fleet):
        ModelRegistry(engine).register(die, "front", synthetic_model, model.manifest, activate=True)
    nc = await nats.connect(broker.url)
    await jetstream.ensure_stream(nc.jetstream())
    await nc.close()
    runtime = LineRuntime(settings, engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    line = asyncio.create_task(runtime.run(stop, ready))
    await ready.wait()
    faults = (Fault.DUPLICATE, Fault.OUT_OF_ORDER, Fault.MALFORMED)
    hall = HallConfig(
        plant="e2e",
        fleet=fleet,
        speed=120,
        duration_s=12,
        faults=faults,
        fault_rate=0.15,
        image_size=128,
    )
    report = await run_hall(hall, broker.mqtt_url, asyncio.Event())
    await asyncio.sleep(3)  # the last parts' verdicts
    stop.set()
    await line

    store = Store(engine)
    assert report.shots >= 10 and report.faults["malformed"] >= 1
    assert report.faults["duplicate"] >= 1 and report.faults["out_of_order"] >= 1
    # Malformed shot records are kept as dead letters with the reason, never dropped.
    assert store.count(t.dead_letters) >= report.faults["malformed"]
    with engine.connect() as conn:
        parts = conn.execute(
            select(func.count()).select_from(
                select(t.images.c.machine, t.images.c.shot_number).distinct().subquery()
            )
        ).scalar()
    assert parts and store.count(t.verdicts) >= parts  # every photographed part was decided
    cells = report.total
    assert cells.unknown_verdicts == 0 and report.invalid_verdicts == 0
    assert cells.missing_verdicts <= 0.2 * cells.parts  # the loaded CI machine keeps up
    assert store.count(t.truths) == report.shots
    engine.dispose()


async def test_cooling_rack_and_two_views_through_the_line(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path
) -> None:
    """The hall shuffles castings through cooling racks and shoots one die's parts from two
    views: every photo lands on its own shot (by its code) and each part has one verdict."""
    fleet = FleetConfig(machines=2, seed=5)
    two_views = die_codes(fleet)[0]
    settings = Settings(
        home=tmp_path / "home", data=tmp_path / "no-data", views_per_part={two_views: 2}
    )
    engine = open_store(settings.db_url)
    model, registry = InspectionModel.load(synthetic_model), ModelRegistry(engine)
    for die in die_codes(fleet):
        for view in ("front", "side") if die == two_views else ("front",):
            registry.register(die, view, synthetic_model, model.manifest, activate=True)
    nc = await nats.connect(broker.url)
    await jetstream.ensure_stream(nc.jetstream())
    await nc.close()
    runtime = LineRuntime(settings, engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    line = asyncio.create_task(runtime.run(stop, ready))
    await ready.wait()
    hall = HallConfig(
        plant="rack",
        fleet=fleet,
        speed=120,
        duration_s=12,
        image_size=128,
        cooling_rack=3,
        views_of=views_of(settings.views_per_part),
    )
    report = await run_hall(hall, broker.mqtt_url, asyncio.Event())
    await asyncio.sleep(3)  # the last parts' verdicts
    stop.set()
    await line

    store = Store(engine)
    cells = report.total
    assert report.images >= 5 and cells.parts >= 5
    assert cells.unknown_verdicts == 0 and report.invalid_verdicts == 0
    assert store.count(t.dead_letters) == 0  # every code named a shot
    with engine.connect() as conn:
        shots = {(r.machine, r.shot_number): r.die for r in conn.execute(select(t.shots))}
        images = conn.execute(select(t.images)).all()
        verdicts = conn.execute(select(t.verdicts.c.machine, t.verdicts.c.shot_number)).all()
    assert images and all((i.machine, i.shot_number) in shots for i in images)
    views = {(i.machine, i.shot_number, i.view) for i in images}
    assert any(shots[m, n] == two_views for m, n, v in views if v == "side")
    assert not any(v == "side" and shots[m, n] != two_views for m, n, v in views)
    assert len(verdicts) == len(set(verdicts))  # one verdict per part
    engine.dispose()


async def test_a_two_cavity_die_gives_two_verdicts_per_shot(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path
) -> None:
    """One die of the hall casts two parts per shot, each marked, photographed, decided and
    handled by the robot cell on its own; the other die casts one."""
    fleet = FleetConfig(machines=2, seed=6)
    two_cavities = die_codes(fleet)[0]
    settings = Settings(
        home=tmp_path / "home", data=tmp_path / "no-data", cavities_per_die={two_cavities: 2}
    )
    engine = open_store(settings.db_url)
    model, registry = InspectionModel.load(synthetic_model), ModelRegistry(engine)
    for die in die_codes(fleet):
        registry.register(die, "front", synthetic_model, model.manifest, activate=True)
    nc = await nats.connect(broker.url)
    await jetstream.ensure_stream(nc.jetstream())
    await nc.close()
    runtime = LineRuntime(settings, engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    line = asyncio.create_task(runtime.run(stop, ready))
    await ready.wait()
    hall = HallConfig(
        plant="cav",
        fleet=fleet,
        speed=120,
        duration_s=10,
        image_size=128,
        mark_parts=True,
        cavities_of=settings.cavities_per_die,
    )
    report = await run_hall(hall, broker.mqtt_url, asyncio.Event())
    await asyncio.sleep(3)  # the last parts' verdicts
    stop.set()
    await line

    store = Store(engine)
    with engine.connect() as conn:
        dies = {(r.machine, r.shot_number): r.die for r in conn.execute(select(t.shots))}
        verdicts = conn.execute(
            select(t.verdicts.c.machine, t.verdicts.c.shot_number, t.verdicts.c.cavity)
        ).all()
        images = conn.execute(select(t.images.c.machine, t.images.c.shot_number, t.images.c.cavity))
        photographed = {tuple(i) for i in images}
    assert store.count(t.dead_letters) == 0
    assert len(verdicts) == len(set(verdicts))  # one verdict per part
    cavities: dict[tuple[str, int], set[int]] = {}
    for machine, number, cavity in verdicts:
        cavities.setdefault((machine, number), set()).add(cavity)
    two = [shot for shot in cavities if dies.get(shot) == two_cavities]
    assert len(two) >= 3
    assert all(cavities[shot] == {1, 2} for shot in two if shot in dies)
    assert all(cavities[s] == {1} for s in cavities if s in dies and dies[s] != two_cavities)
    assert all((m, n, c) in photographed for m, n, c in verdicts if dies.get((m, n)))
    marked = store.parts_marked(f"{two[0][0]}-{two[0][1]:012d}-2")
    assert [(p.shot_number, p.cavity) for p in marked] == [(two[0][1], 2)]
    cells = report.total
    assert cells.unknown_verdicts == 0 and report.invalid_verdicts == 0
    assert cells.parts > report.shots  # the cells handled two parts for each shot of that die
    engine.dispose()


async def test_the_x_ray_posts_results_later_and_escapes_count(
    tmp_path: Path, broker: EmbeddedNats, synthetic_model: Path
) -> None:
    """The simulated X-ray tests every casting sent on, a while later in simulated time,
    naming it by its code; each result joins its part, and the NG ones (porosity no photo
    shows) count as castline's escapes."""
    fleet = FleetConfig(machines=2, seed=8)
    settings = Settings(home=tmp_path / "home", data=tmp_path / "no-data")
    engine = open_store(settings.db_url)
    model = InspectionModel.load(synthetic_model)
    for die in die_codes(fleet):
        ModelRegistry(engine).register(die, "front", synthetic_model, model.manifest, activate=True)
    nc = await nats.connect(broker.url)
    await jetstream.ensure_stream(nc.jetstream())
    await nc.close()
    runtime = LineRuntime(settings, engine, broker.url)
    stop, ready = asyncio.Event(), asyncio.Event()
    line = asyncio.create_task(runtime.run(stop, ready))
    await ready.wait()
    later = DownstreamConfig(rate=1.0, delay_s=240, hidden_rate=0.5)  # 2 s of wall time
    hall = HallConfig(
        plant="xr",
        fleet=fleet,
        speed=120,
        duration_s=12,
        image_size=128,
        mark_parts=True,
        downstream=later,
    )
    report = await run_hall(hall, broker.mqtt_url, asyncio.Event())
    store = Store(engine)
    try:
        await until(lambda: len(store.downstream_results("xr")) >= report.downstream, 20)
    finally:
        stop.set()
        await line

    results = store.downstream_results("xr")
    assert report.downstream >= 5 and len(results) == report.downstream
    assert 0 < report.downstream_ng < report.downstream
    assert store.downstream_results("xr", unmatched=True) == []  # every code named its part
    assert {r["station"] for r in results} == {later.station}
    with engine.connect() as conn:
        shots = conn.execute(select(t.shots)).all()
    cast = {(r.machine, r.shot_number): r.at for r in shots}
    trial = {(r.machine, r.shot_number): r.trial for r in shots}
    for r in results:
        assert r["tested_at"] - cast[r["machine"], r["shot_number"]] >= timedelta(seconds=240)
    # The cells sent on only parts castline passed: each NG is an escape (trials aside,
    # which are never production).
    ng = [(r["machine"], r["shot_number"]) for r in results if r["result"] == "NG"]
    escapes = store.downstream_escapes("xr")
    assert len(escapes) == len([k for k in ng if not trial[k]]) > 0
    engine.dispose()
