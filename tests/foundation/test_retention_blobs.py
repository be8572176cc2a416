"""Retention takes the photos and heat maps of the parts it drops (those no part left
refers to) and keeps the KPIs' hourly counts; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from castline.domain.shot import PartKey, Shot
from castline.store import database, partitions
from castline.store import tables as t
from castline.store.blobs import BlobStore
from castline.store.repository import Store, insert_ignore

NOW = datetime.now(UTC).replace(microsecond=0)


def _part(engine: Engine, blobs: BlobStore, n: int, at: datetime, photo: bytes) -> list[str]:
    """A shot with a verdict, its heat map and a photo with its own heat map; the digests."""
    Store(engine).record_shots([Shot(PartKey("p1", "m1", n), "d1", at, {})])
    image, view_map, part_map = blobs.put(photo), blobs.put(b"map %d" % n), blobs.put(b"pm %d" % n)
    key = {"plant": "p1", "machine": "m1", "shot_number": n, "cavity": 1}
    with engine.begin() as conn:
        insert_ignore(
            conn,
            t.verdicts,
            [
                key
                | {
                    "verdict": "OK",
                    "reason": "",
                    "decided_at": at,
                    "heatmap": part_map,
                    "regions": [],
                    "timings": {},
                }
            ],
        )
        insert_ignore(
            conn,
            t.images,
            [
                key
                | {
                    "view": "top",
                    "at": at,
                    "blob": image,
                    "content_type": "image/png",
                    "heatmap": view_map,
                }
            ],
        )
    return [image, view_map, part_map]  # fmt: skip


def test_retention_removes_the_blobs_of_dropped_parts(engine: Engine, tmp_path: Path) -> None:
    database.upgrade(engine)
    blobs = BlobStore(tmp_path / "blobs")
    old = NOW - timedelta(days=400)
    partitions.ensure_partitions(engine, now=old, ahead=0)
    gone = _part(engine, blobs, 1, old, b"photo one")
    shared = _part(engine, blobs, 2, old, b"the same photo")[0]
    kept = _part(engine, blobs, 3, NOW, b"the same photo")  # same bytes: one file, still used
    counts = partitions.keep_history(engine, 1, 100, now=NOW, blobs=blobs)
    assert counts["shots"] == 2
    assert counts["blobs"] == 5  # part 1's three files, part 2's two maps
    assert all(d not in blobs for d in gone)
    assert shared in blobs and all(d in blobs for d in kept)
    with engine.connect() as conn:  # the hourly counts of the dropped shots stay
        hours = conn.execute(select(func.sum(t.shot_hours.c.castings))).scalar()
    assert hours == 2  # the two old shots; NOW's hour is still open


def test_retention_without_the_blob_store_leaves_files(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    database.upgrade(sqlite_engine)
    blobs = BlobStore(tmp_path / "blobs")
    digests = _part(sqlite_engine, blobs, 1, NOW - timedelta(days=400), b"photo")
    assert partitions.drop_history(sqlite_engine, NOW)["blobs"] == 0
    assert all(d in blobs for d in digests)
