"""Shared fixtures: real databases, real brokers, real data.

Services come from this machine. In CI (CI=true) a missing service fails the test run;
on a developer's machine the tests that need it skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from castline.store import database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "CASTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATA = Path(os.environ.get("CASTLINE_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))


def missing(what: str) -> None:
    """A service or data set a test needs is not there: fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} (CI must provide it)")
    pytest.skip(what)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = database.connect(f"sqlite:///{tmp_path / 'castline.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"castline_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        missing(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = database.connect(url)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on both databases castline supports."""
    fixture = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(fixture)


@pytest.fixture
def casting_data() -> Path:
    """The real casting photographs (../shared/data/casting/train)."""
    root = DATA / "casting" / "train"
    if not (root / "ok_front").is_dir():
        missing(f"casting photographs not found under {root} (set CASTLINE_DATA)")
    return root


@pytest.fixture
def kamp_data() -> Path:
    """The real KAMP die-casting telemetry (../shared/data/kamp)."""
    root = DATA / "kamp"
    if not (root / "process").is_dir():
        missing(f"KAMP telemetry not found under {root} (set CASTLINE_DATA)")
    return root
