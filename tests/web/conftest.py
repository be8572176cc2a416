"""A small plant on a real store: two plants, three machines, parts with photos and
verdicts, alarms, models, dead letters, and a user with an API key for every role."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from sqlalchemy import Engine, insert

from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.verdict import PartVerdict, Region, Verdict
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.blobs import BlobStore
from castline.store.repository import PhotoRecord, Store
from castline.web.app import create_app
from castline.web.auth import Role, add_user, ensure_admin, new_api_key

NOW = datetime.now(UTC).replace(microsecond=0)
# The test plant keeps a zone where NOW is about noon: its "today" (shots, yield, KPIs) then
# holds the seeded parts for the whole run, whatever hour the run starts at.
NOON_OFFSET = (12 - NOW.hour + 12) % 24 - 12  # hours east of UTC, -12..11
PLANT_ZONE = f"Etc/GMT{-NOON_OFFSET:+d}" if NOON_OFFSET else "Etc/GMT"  # Etc signs are reversed
PASSWORD = "correct horse battery"
ROLES = ("viewer", "operator", "engineer", "admin")


def photo(seed: int, defect: bool = False) -> bytes:
    """A grey disc like the impeller photographs, with a dark blob for a defect."""
    image = Image.new("RGB", (120, 120), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 110, 110), fill=(150 + seed % 40,) * 3)
    if defect:
        draw.ellipse((60, 30, 75, 45), fill=(20, 20, 20))
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


@dataclass
class Plant:
    """What the seeded plant holds, for tests to refer to."""

    engine: Engine
    settings: Settings
    keys: dict[str, str]  # user name -> API key
    alarm_p1: int
    alarm_p2: int
    models: dict[str, int]  # version -> id
    image_p1: str
    image_p2: str


def seed(engine: Engine, settings: Settings) -> Plant:
    ensure_admin(engine, settings.home)  # what `castline web` and `castline up` do first
    store = Store(engine)
    blobs = BlobStore(settings.blobs)
    for plant, machine in (("p1", "m1"), ("p1", "m2"), ("p2", "m9")):
        store.ensure_machine(plant, Machine(machine, name=machine.upper()))
        store.record_state(plant, machine, MachineState.RUNNING, NOW - timedelta(hours=1), "D1")
    store.ensure_die("D1", "impeller", 1000, "m1", "p1")
    digests = {}
    for plant, machine, number, verdict in (
        ("p1", "m1", 1, Verdict.OK),
        ("p1", "m1", 2, Verdict.REVIEW),
        ("p1", "m1", 3, Verdict.NG),
        ("p2", "m9", 1, Verdict.REVIEW),
    ):
        key = PartKey(plant, machine, number)
        at = NOW - timedelta(minutes=10 - number)
        params = {"melt_temp_c": 660.0 + number, "die_temp_fixed_c": 210.0}
        store.record_shots([Shot(key, "D1", at, params)])
        digest = blobs.put(photo(number + 10 * (plant == "p2"), verdict is Verdict.NG))
        digests[key] = digest
        told = PartVerdict(
            verdict,
            at + timedelta(seconds=1),
            reason="",
            score=0.2 * number,
            model_version="v2",
            latency_ms=41.0,
            regions=(Region(x=60, y=30, w=15, h=15, area_px=180, score=0.9),),
            timings={"inspect": 30.0},
        )
        store.record_part(key, told, PhotoRecord("front", at, digest, "image/jpeg"))
    store.record_dead_letter("castline/v1/p1/m1/shot", "payload is not JSON", b"{oops", NOW)
    store.record_dead_letter("castline/v1/p2/m9/shot", "shot_number: negative", b"{}", NOW)
    alarm_ids = []
    with engine.begin() as conn:
        for plant, machine in (("p1", "m1"), ("p2", "m9")):
            result = conn.execute(
                insert(t.alarms).values(
                    plant=plant, machine=machine, die="D1", subject="melt_temp_c",
                    rule="nelson1", severity="warning", message="melt temperature beyond 3 sigma",
                    dedup_key=f"{plant}/{machine}/melt", raised_at=NOW, last_seen_at=NOW, count=1,
                )
            )  # fmt: skip
            alarm_ids.append(int(result.inserted_primary_key[0]))
        models = {}
        for age, version in ((2, "v1"), (1, "v2"), (0, "v3")):
            result = conn.execute(
                insert(t.models).values(
                    die="D1", view="front", version=version, path=f"models/{version}",
                    manifest={}, metrics={"auroc": 0.9 + age / 100}, active=version == "v2",
                    created_at=NOW - timedelta(days=age),
                )
            )  # fmt: skip
            models[version] = int(result.inserted_primary_key[0])
        for age, version in ((2, "v1"), (1, "v2")):  # v1 was active, then v2 replaced it
            conn.execute(
                insert(t.model_activations).values(
                    die="D1", view="front", version=version, activated_at=NOW - timedelta(days=age)
                )
            )
    keys = {}
    for role in ROLES:
        if role != "admin":
            add_user(engine, role, PASSWORD, Role.of(role))
        keys[role] = new_api_key(engine, role)
    add_user(engine, "op1", PASSWORD, Role.OPERATOR, ["p1"])
    add_user(engine, "admin_user", PASSWORD, Role.ADMIN)
    keys["op1"] = new_api_key(engine, "op1")
    return Plant(
        engine, settings, keys, alarm_ids[0], alarm_ids[1], models,
        digests[PartKey("p1", "m1", 1)], digests[PartKey("p2", "m9", 1)],
    )  # fmt: skip


def settings_in(home: Path) -> Settings:
    return Settings(
        home=home, secret_key="test-secret-not-for-production", plant_timezone=PLANT_ZONE
    )


@pytest.fixture(scope="session")
def seeded_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Plant]:
    """Seed once (password hashing is slow on purpose), copy for each test."""
    home = tmp_path_factory.mktemp("seeded")
    settings = settings_in(home)
    engine = database.open_store(settings.db_url)
    seeded = seed(engine, settings)
    engine.dispose()  # checkpoints the WAL: the database is one file to copy
    return home, seeded


@pytest.fixture
def plant(seeded_home: tuple[Path, Plant], tmp_path: Path) -> Iterator[tuple[FastAPI, Plant]]:
    """The seeded plant on its own copy of the SQLite store, with its app."""
    template, seeded = seeded_home
    home = tmp_path / "home"
    shutil.copytree(template, home)
    settings = settings_in(home)
    engine = database.open_store(settings.db_url)
    yield create_app(settings, engine), replace(seeded, engine=engine, settings=settings)
    engine.dispose()


@pytest.fixture
def client(plant: tuple[FastAPI, Plant]) -> Iterator[TestClient]:
    with TestClient(plant[0]) as test_client:
        yield test_client


def as_user(plant: Plant, name: str) -> dict[str, str]:
    return {"X-API-Key": plant.keys[name]}


@dataclass
class Server:
    url: str
    app: FastAPI
    plant: Plant


@pytest.fixture
def server(plant: tuple[FastAPI, Plant]) -> Iterator[Server]:
    """The app served by uvicorn on a free loopback port, in a thread."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        plant[0], host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(200):
        if running.started:
            break
        time.sleep(0.05)
    assert running.started, "uvicorn did not start"
    yield Server(f"http://127.0.0.1:{port}", plant[0], plant[1])
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def seeded_on_both(engine: Engine, tmp_path: Path) -> tuple[FastAPI, Plant]:
    """The seeded plant on SQLite and on PostgreSQL (the `engine` fixture), with its app."""
    database.upgrade(engine)
    settings = settings_in(tmp_path)
    seeded = seed(engine, settings)
    return create_app(settings, engine), seeded
