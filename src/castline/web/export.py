"""Reviewed castings become training data: their photos, sorted into OK/ and NG/ folders.

A person's confirmation is the label. `labels.csv` beside the folders keeps the defect
type, the reviewer and the time of each label, so a retraining run can say what it used.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, and_, select
from tqdm import tqdm

from castline.store import tables as t
from castline.store.blobs import BlobStore

SUFFIX = {"image/jpeg": ".jpeg", "image/png": ".png"}


@dataclass(frozen=True, slots=True)
class ExportResult:
    ok: int
    ng: int
    missing: int  # reviewed photos whose blob is gone from the store


def export_reviews(
    engine: Engine, blobs: BlobStore, target: Path, plants: list[str] | None = None
) -> ExportResult:
    r, i = t.reviews, t.images
    query = (
        select(r.c.plant, r.c.machine, r.c.shot_number, r.c.decision, r.c.defect_type,
               r.c.reviewer, r.c.at, i.c.view, i.c.blob, i.c.content_type)
        .join(i, and_(i.c.plant == r.c.plant, i.c.machine == r.c.machine,
                      i.c.shot_number == r.c.shot_number))
        .order_by(r.c.at, r.c.id, i.c.view)
    )  # fmt: skip
    if plants:
        query = query.where(r.c.plant.in_(plants))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    counts = {"OK": 0, "NG": 0}
    missing = 0
    target.mkdir(parents=True, exist_ok=True)
    with (target / "labels.csv").open("w", newline="") as out:
        labels = csv.writer(out)
        labels.writerow(["file", "decision", "defect_type", "reviewer", "reviewed_at", "blob"])
        for row in tqdm(rows, desc="export reviewed images", unit="image", disable=not rows):
            if row.blob not in blobs:
                missing += 1
                continue
            folder = target / row.decision
            folder.mkdir(exist_ok=True)
            name = f"{row.plant}_{row.machine}_{row.shot_number}_{row.view}"
            path = folder / (name + SUFFIX.get(row.content_type, ".bin"))
            shutil.copyfile(blobs.path(row.blob), path)
            counts[row.decision] += 1
            labels.writerow([
                path.relative_to(target).as_posix(), row.decision, row.defect_type or "",
                row.reviewer, row.at.isoformat(), row.blob,
            ])  # fmt: skip
    return ExportResult(counts["OK"], counts["NG"], missing)
