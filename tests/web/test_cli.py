"""`castline user ...` and `castline review export` on a real store."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from typer.testing import CliRunner

from castline.cli import app
from castline.domain.shot import PartKey
from castline.domain.verdict import Verdict
from castline.store.repository import Store
from castline.web.auth import user_by_key

from .conftest import Plant

runner = CliRunner()


def env(plant: Plant) -> dict[str, str]:
    return {"CASTLINE_HOME": str(plant.settings.home)}


def test_user_add_and_key(plant: tuple[FastAPI, Plant]) -> None:
    seeded = plant[1]
    added = runner.invoke(
        app,
        [
            "user",
            "add",
            "maint",
            "--role",
            "engineer",
            "--plant",
            "p2",
            "--password",
            "0123456789x",
        ],
        env=env(seeded),
    )
    assert added.exit_code == 0, added.output
    assert "maint added as engineer for p2" in added.output
    again = runner.invoke(
        app, ["user", "add", "maint", "--password", "0123456789x"], env=env(seeded)
    )
    assert again.exit_code == 2 and "exists already" in again.output
    key = runner.invoke(app, ["user", "key", "maint", "--name", "cmms"], env=env(seeded))
    assert key.exit_code == 0, key.output
    who = user_by_key(seeded.engine, key.output.strip())
    assert who is not None and (who.username, who.plants) == ("maint", ("p2",))
    revoked = runner.invoke(app, ["user", "revoke", "maint"], env=env(seeded))
    assert revoked.exit_code == 0 and "1 key(s) of maint revoked" in revoked.output
    assert user_by_key(seeded.engine, key.output.strip()) is None
    listing = runner.invoke(app, ["user", "list"], env=env(seeded))
    assert "maint" in listing.output and "plants=p2 keys=0" in listing.output
    unknown = runner.invoke(app, ["user", "key", "nobody"], env=env(seeded))
    assert unknown.exit_code == 2 and "castline user add" in unknown.output


def test_review_export_sorts_reviewed_photos_into_ok_and_ng(
    plant: tuple[FastAPI, Plant], tmp_path: Path
) -> None:
    seeded = plant[1]
    store = Store(seeded.engine)
    now = datetime.now(UTC)
    store.record_review(PartKey("p1", "m1", 2), Verdict.OK, "operator", now)
    store.record_review(PartKey("p1", "m1", 3), Verdict.NG, "operator", now, "flash")
    store.record_review(PartKey("p2", "m9", 1), Verdict.NG, "operator", now, "crack")
    target = tmp_path / "labels"
    done = runner.invoke(app, ["review", "export", str(target), "--plant", "p1"], env=env(seeded))
    assert done.exit_code == 0, done.output
    assert "1 OK and 1 NG images" in done.output
    assert [p.name for p in (target / "OK").iterdir()] == ["p1_m1_2_front.jpeg"]
    assert [p.name for p in (target / "NG").iterdir()] == ["p1_m1_3_front.jpeg"]
    assert (target / "NG" / "p1_m1_3_front.jpeg").read_bytes()[:2] == b"\xff\xd8"
    with (target / "labels.csv").open() as labels:
        rows = list(csv.DictReader(labels))
    assert [(r["file"], r["decision"], r["defect_type"]) for r in rows] == [
        ("OK/p1_m1_2_front.jpeg", "OK", ""),
        ("NG/p1_m1_3_front.jpeg", "NG", "flash"),
    ]
