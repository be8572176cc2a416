"""Learn from the review loop: a model's memory grows by the photos people confirmed good.

A part castline held (NG or REVIEW) that a person confirms as OK is a false reject: its
photo shows a normal look the memory lacks. Training from scratch would take minutes;
instead, `update_model` takes an existing model and

1. scores each new photo through the model's own graph, with the patch rows its memory
   is compared with exposed as a second output: the photo's patches are computed once,
   by the same inference path the line runs (no second feature extractor);
2. per cell of the memory, continues the coreset: the photo's patches of that cell (and
   the band around it the cell learnt from at training) are added farthest first, as
   long as they lie further from the memory than its rows typically lie from each other
   (rows nearer than that add nothing the memory does not already cover);
3. keeps the memory within `growth` of its size at training (scoring time grows with
   it): beyond that, the most redundant rows (those nearest to another row) give way;
4. writes a new model folder whose manifest says which reviewed photos were added.

A memory with more rows only ever gives a photo a lower or equal nearest-neighbour
distance, so adding good photos can only move photos towards OK, mostly those that look
like the reviewed ones; the thresholds, the usual distance per place and the head are kept
as calibrated out of fold at training (recalibrating on the reviewed photos alone would
set thresholds on a handful of hand-picked photos).

Confirmed defects teach the supervised head (`head.py`). The model folder keeps the
head's training descriptors (`head_descriptors.npz`, written by training); each defect's
descriptor comes from the graph as it stands after the good photos went in, joins the
kept ones, and the head is refitted, cross-fitted over the training folds: the REVIEW
and NG thresholds hold the false-reject targets on the training photos' probabilities
from heads that never saw them. A model trained on good photos only gets a head once
`head.MIN_DEFECTS` confirmed defects are kept (fewer are kept, waiting). A model folder
without the file (trained before it existed) lists its confirmed defects and keeps its
head.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from threadpoolctl import threadpool_limits

from castline.vision.graph import MEMORY_BANK, MEMORY_ROWS
from castline.vision.head import MIN_DEFECTS, HeadData, HeadError, has_head, refit_head, set_head
from castline.vision.memory import cell_windows, cells_of
from castline.vision.model import METADATA_KEY, InspectionModel, input_size, session
from castline.vision.patches import HW, grid_of

KEPT_PHOTOS = 200  # reviewed photos listed per manifest (the count covers all)


class UpdateError(ValueError):
    """The model cannot be updated this way; the message says why."""


@dataclass(frozen=True)
class ReviewedPhoto:
    """A photo a person confirmed, and where it came from."""

    image: np.ndarray  # uint8 RGB
    digest: str  # sha256 of the stored photo
    part: str = ""  # plant/machine/shot/cavity
    review: int | None = None  # the review's id in the store
    reviewer: str = ""
    defect_type: str | None = None  # for a confirmed defect


@dataclass(frozen=True)
class UpdateConfig:
    growth: float = 0.125  # the memory may grow by this share of its training size
    coverage: float = 0.5  # quantile of the memory's own row spacing a new row must exceed
    threads: int | None = 1  # one core: the line runs beside the update


@dataclass(frozen=True)
class Added:
    """What an update did to the memory."""

    rows_added: int
    rows_dropped: int
    rows_before: int  # per cell, the bank's width
    rows_after: int
    scores_before: list[float]
    scores_after: list[float]


def memory_of(proto: onnx.ModelProto) -> str:
    """The memory's initializer (graph.MEMORY_BANK, [cells, rows, d]), checked to be the
    single bank the graph compares its patch rows (graph.MEMORY_ROWS) with."""
    banks = [i for i in proto.graph.initializer if i.name == MEMORY_BANK]
    if len(banks) != 1 or len(banks[0].dims) != 3:
        raise UpdateError(
            "the model's graph has no single patch memory to add rows to (a model trained "
            "before 2026-12-01?): retrain it with `castline vision train`"
        )
    if not any(MEMORY_ROWS in node.output for node in proto.graph.node):
        raise UpdateError("the model's graph does not compare patches with its memory")
    return MEMORY_BANK


def _initializer(proto: onnx.ModelProto, name: str) -> np.ndarray:
    for tensor in proto.graph.initializer:
        if tensor.name == name:
            return numpy_helper.to_array(tensor)
    raise UpdateError(f"no initializer {name}")


def _replace(proto: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    for tensor in proto.graph.initializer:
        if tensor.name == name:
            tensor.CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
            return
    raise UpdateError(f"no initializer {name}")


def probe(model: InspectionModel, threads: int | None = 1) -> Any:
    """The model's graph with the patch rows it compares with the memory as an output."""
    proto = onnx.load_from_string(model.graph)
    memory_of(proto)
    proto.graph.output.append(helper.make_tensor_value_info(MEMORY_ROWS, TensorProto.FLOAT, None))
    return session(proto.SerializeToString(), threads), MEMORY_ROWS


@dataclass(frozen=True)
class Seen:
    """What the model made of each photo: its score, and its patch rows per cell window
    (the rows each cell's memory would learn from)."""

    scores: list[float]
    windows: list[list[np.ndarray]]  # [photo][cell] -> [rows, d]
    descriptors: np.ndarray  # [photo, K]: what the supervised head reads


def look(model: InspectionModel, photos: Sequence[np.ndarray], threads: int | None = 1) -> Seen:
    """Score the photos once and collect their patches per cell window."""
    runner, rows_name = probe(model, threads)
    grid = grid_of(input_size(model.manifest))
    scores, windows, descriptors = [], [], []
    for image in photos:
        score, rows, descriptor = runner.run(["score", rows_name, "descriptor"], {"image": image})
        scores.append(float(score[0]))
        windows.append(_per_cell(rows, grid, _reach(model.manifest)))
        descriptors.append(descriptor[0])
    return Seen(scores, windows, np.asarray(descriptors, dtype=np.float32))


def _reach(manifest: dict[str, Any]) -> int:
    config = manifest.get("training", {}).get("config", {})
    return int(config.get("reach", 1))


def _per_cell(columns: np.ndarray, grid: HW, reach: int) -> list[np.ndarray]:
    """[cells, d, c*c] as the graph cuts them -> per cell, the rows [n, d] of its window."""
    rows = columns.transpose(0, 2, 1)
    cells, per, dim = rows.shape
    if cells == 1:  # one memory for the whole photo: its rows are the grid's, in order
        return [rows[0]]
    c = math.isqrt(per)
    ny, nx = cells_of(grid, c)
    # Back to the patch grid (cells are row-major, their patches too), padding cut off.
    whole = rows.reshape(ny, nx, c, c, dim).transpose(0, 2, 1, 3, 4).reshape(ny * c, nx * c, dim)
    flat = whole[: grid[0], : grid[1]].reshape(grid[0] * grid[1], dim)
    return [flat[w] for w in cell_windows(grid, c, reach)]


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a [n, d] and b [m, d]."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    squared = (a64 * a64).sum(1)[:, None] - 2.0 * a64 @ b64.T + (b64 * b64).sum(1)[None, :]
    return np.sqrt(np.maximum(squared, 0.0))


def _spacing(bank: np.ndarray, quantile: float) -> float:
    """How close the coreset's rows lie to each other (this quantile of each row's
    distance to its nearest other row): a patch nearer than that to the memory is
    covered about as closely as the memory's own rows cover each other."""
    if len(bank) < 2:
        return 0.0
    apart = _distances(bank, bank)
    np.fill_diagonal(apart, np.inf)
    return float(np.quantile(apart.min(axis=1), quantile))


def grow_cell(bank: np.ndarray, candidates: np.ndarray, limit: int, quantile: float) -> np.ndarray:
    """Indices of `candidates` to add to `bank`, farthest first, while they lie further
    from the memory (and from those added before them) than its own spacing."""
    if not len(candidates) or limit <= 0:
        return np.empty(0, dtype=np.int64)
    spacing = _spacing(bank, quantile)
    nearest = _distances(candidates, bank).min(axis=1)
    chosen: list[int] = []
    while len(chosen) < limit:
        i = int(np.argmax(nearest))
        if nearest[i] <= spacing:
            break
        chosen.append(i)
        np.minimum(nearest, _distances(candidates, candidates[i : i + 1])[:, 0], out=nearest)
    return np.asarray(chosen, dtype=np.int64)


def thin(rows: np.ndarray, keep: int, protected: int) -> np.ndarray:
    """At most `keep` rows: the most redundant of the first `len(rows) - protected` (the
    nearest to a row that stays) give way; the last `protected` rows, just learnt, stay."""
    excess = len(rows) - keep
    if excess <= 0:
        return rows
    apart = _distances(rows, rows)
    np.fill_diagonal(apart, np.inf)
    partner = apart.argmin(axis=1)
    gone = np.zeros(len(rows), dtype=bool)
    old = len(rows) - protected
    for i in np.argsort(apart.min(axis=1)).tolist():
        if excess == 0:
            break
        if i < old and not gone[partner[i]]:
            gone[i] = True
            excess -= 1
    return rows[~gone][:keep] if excess == 0 else rows[~gone][-keep:]


def grown_bank(
    bank: np.ndarray, windows: list[list[np.ndarray]], config: UpdateConfig, base_rows: int
) -> tuple[np.ndarray, int, int]:
    """The memory with the photos' new rows; returns it, rows added and rows dropped."""
    cells = bank.shape[0]
    cap = max(bank.shape[1], round(base_rows * (1 + config.growth)))
    per_cell, added, dropped = [], 0, 0
    for cell in range(cells):
        own = np.unique(bank[cell], axis=0)  # a cell with few rows repeats some: once is enough
        candidates = np.concatenate([photo[cell] for photo in windows])
        # New rows per update: at most the growth allowed over the training size.
        chosen = grow_cell(own, candidates, max(1, cap - base_rows), config.coverage)
        rows = np.concatenate([own, candidates[chosen]]) if len(chosen) else own
        kept = thin(rows, cap, len(chosen))
        added += len(chosen)
        dropped += len(rows) - len(kept)
        per_cell.append(kept)
    width = max(len(rows) for rows in per_cell)
    # All cells share one bank width; repeating a row never changes a nearest distance.
    stacked = np.stack([rows[np.resize(np.arange(len(rows)), width)] for rows in per_cell])
    return stacked.astype(np.float32), added, dropped


def set_memory(proto: onnx.ModelProto, bank: np.ndarray) -> None:
    """`bank` [cells, rows, d] as the graph's memory (the graph derives the rest)."""
    _replace(proto, memory_of(proto), bank)


def _with_manifest(proto: onnx.ModelProto, manifest: dict[str, Any]) -> bytes:
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            entry.value = json.dumps(manifest, sort_keys=True)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def update_model(
    source: Path | str,
    out: Path | str,
    good: Sequence[ReviewedPhoto],
    defects: Sequence[ReviewedPhoto] = (),
    *,
    version: str | None = None,
    last_review: int | None = None,
    config: UpdateConfig | None = None,
) -> InspectionModel:
    """A new model folder at `out`: the model at `source` with the reviewed good photos
    in its memory and the confirmed defects in its head (module docstring)."""
    config = config or UpdateConfig()
    if not good and not defects:
        raise UpdateError("no reviewed photos to learn from")
    # Distances between memory rows are matrix products: on one core, as the photos are
    # scored, so the update never takes the cores the line inspects on.
    with threadpool_limits(limits=config.threads):
        return _update(Path(source), Path(out), good, defects, version, last_review, config)


def _update(
    source: Path,
    out: Path,
    good: Sequence[ReviewedPhoto],
    defects: Sequence[ReviewedPhoto],
    version: str | None,
    last_review: int | None,
    config: UpdateConfig,
) -> InspectionModel:
    parent = InspectionModel.load(source, threads=config.threads)
    data = _head_data(source)
    if not good and data is None:
        raise UpdateError(_NO_HEAD_DATA)
    proto = onnx.load_from_string(parent.graph)
    seen = look(parent, [p.image for p in good], config.threads) if good else None
    created = datetime.now(UTC)
    manifest = _manifest(parent, created, version, good, defects, seen.scores if seen else [])
    learnt = manifest["learnt_from_reviews"]
    if last_review is not None:  # reviews read up to here, also those that added nothing
        learnt["last_review"] = last_review
    manifest["training"] = dict(parent.manifest.get("training", {}))
    learnt["trained_rows"] = _trained_rows(parent.manifest, _bank(proto).shape[1])
    added = _learn_good(proto, seen, config, learnt["trained_rows"]) if seen else None
    if added is not None:
        manifest["training"]["memory_rows"] = added.rows_after
    if data is not None:
        described = seen.descriptors if seen else np.empty((0, data.good.shape[1]))
        data = _learn_defects(proto, manifest, data, described, defects, config.threads)
    model = InspectionModel(_with_manifest(proto, manifest), manifest, threads=config.threads)
    if added is not None:
        after = [float(model.run(p.image)["score"][0]) for p in good]
        learnt["memory"] = asdict(replace(added, scores_after=after))
    model.manifest = manifest  # the figures measured after the graph was written
    _save(model, source, out, data)
    return model


_NO_HEAD_DATA = (
    "the model folder has no head_descriptors.npz (trained before castline kept what a "
    "head refit needs): confirmed defects cannot teach it; retrain it with "
    "`castline vision train GOOD_DIR --defects DIR`"
)


def _head_data(source: Path) -> HeadData | None:
    try:
        return HeadData.load(source) if source.is_dir() else None
    except HeadError as exc:
        raise UpdateError(str(exc)) from None


def _bank(proto: onnx.ModelProto) -> np.ndarray:
    """The memory [cells, rows, d] the graph compares patches with."""
    return _initializer(proto, memory_of(proto))


def _learn_good(proto: onnx.ModelProto, seen: Seen, config: UpdateConfig, base_rows: int) -> Added:
    """The reviewed good photos' new rows into the graph's memory."""
    bank = _bank(proto)
    new_bank, added, dropped = grown_bank(bank, seen.windows, config, base_rows)
    set_memory(proto, new_bank)
    return Added(added, dropped, int(bank.shape[1]), int(new_bank.shape[1]), seen.scores, [])


def _learn_defects(
    proto: onnx.ModelProto,
    manifest: dict[str, Any],
    data: HeadData,
    good: np.ndarray,
    defects: Sequence[ReviewedPhoto],
    threads: int | None,
) -> HeadData:
    """Confirmed defects (and good photos) into the head data; the head refitted, or
    created once `MIN_DEFECTS` wait, with thresholds from its cross-fit."""
    learnt = manifest["learnt_from_reviews"]
    if defects:
        # Described by the graph as it now is (its memory grown by this update's photos).
        current = InspectionModel(proto.SerializeToString(), manifest, threads=threads)
        found = np.asarray([current.run(p.image)["descriptor"][0] for p in defects])
        data = data.with_confirmed(found, good)
    else:
        data = data.with_confirmed(np.empty((0, data.good.shape[1])), good)
    headed = has_head(proto)
    if not defects:
        learnt["defects_note"] = "no confirmed defects: the head is kept"
        learnt["head_update"] = "kept"
        return data
    if not headed and len(data.bad) < MIN_DEFECTS:
        learnt["defects_note"] = (
            f"{len(data.bad)} confirmed defects kept; a first head needs {MIN_DEFECTS}: "
            "the score stays the anomaly score"
        )
        learnt["head_update"] = "pending"
        return data
    asked = manifest["training"].get("config", {})
    try:
        refit = refit_head(
            data,
            target_frr=float(asked.get("target_frr", 0.02)),
            review_frr=float(asked.get("review_frr", 0.05)),
            target_escape=asked.get("target_escape"),
        )
        set_head(proto, refit.head, (refit.calibration.review, refit.calibration.ng))
    except HeadError as exc:
        raise UpdateError(str(exc)) from None
    manifest["thresholds"] = manifest["thresholds"] | {
        "review": refit.calibration.review,
        "ng": refit.calibration.ng,
    }
    manifest["score"] = "head"
    learnt["head"] = refit.as_dict() | {"created": not headed}
    learnt["thresholds"] = "set for the head refitted on confirmed defects (head.refit_head)"
    learnt["defects_note"] = "created the supervised head" if not headed else "refitted the head"
    learnt["head_update"] = "refitted" if headed else "created"
    return data


def _trained_rows(manifest: dict[str, Any], width: int) -> int:
    """Rows per cell the memory had at training: what `growth` is measured from."""
    trained = manifest.get("learnt_from_reviews", {}).get("trained_rows")
    if trained is None:
        trained = manifest.get("training", {}).get("memory_rows", width)
    return int(trained)


def _manifest(
    parent: InspectionModel,
    created: datetime,
    version: str | None,
    good: Sequence[ReviewedPhoto],
    defects: Sequence[ReviewedPhoto],
    scores: list[float],
) -> dict[str, Any]:
    """The parent's manifest, with the new version and what the reviews added."""
    before = parent.manifest.get("learnt_from_reviews", {})
    root = str(before.get("root", parent.version))
    reviews = [p.review for p in [*good, *defects] if p.review is not None]
    learnt = {
        "parent": parent.version,
        "root": root,
        "updated": created.isoformat(),
        "thresholds": "kept from the parent",
        "good_added": len(good),
        "good_total": int(before.get("good_total", 0)) + len(good),
        "defects_added": len(defects),
        "defects_total": int(before.get("defects_total", 0)) + len(defects),
        "last_review": max(reviews, default=before.get("last_review")),
        "photos": [_listed(p, s) for p, s in zip(good, scores, strict=True)][:KEPT_PHOTOS],
        "defects_confirmed": [_listed(p, None) for p in defects][:KEPT_PHOTOS],
        "defects_note": _NO_HEAD_DATA + "; they are listed here" if defects else "",
        # what became of the head: kept, pending (too few defects), created, refitted;
        # listed: defects only listed, the folder has nothing to refit from
        "head_update": "listed" if defects else "kept",
    }
    if "head" in before:  # the last refit's figures stay until the next one
        learnt["head"] = before["head"]
    return parent.manifest | {
        "version": version or f"{root}.u{created:%Y%m%dT%H%M%S}",
        "created": created.isoformat(),
        "learnt_from_reviews": learnt,
    }


def _listed(photo: ReviewedPhoto, score: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"sha256": photo.digest, "part": photo.part, "review": photo.review}
    entry |= {"reviewer": photo.reviewer, "score_before": score}
    if photo.defect_type:
        entry["defect_type"] = photo.defect_type
    return entry


def _save(model: InspectionModel, source: Path, out: Path, data: HeadData | None) -> None:
    """Write the folder next to its final place, then move it there in one step: a
    half-written model is never found, and of two processes updating at once one wins."""
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save(partial)
    if data is not None:
        data.save(partial)
    calibration = source / "calibration.json" if source.is_dir() else None
    if calibration is not None and calibration.is_file():
        shutil.copy2(calibration, partial / calibration.name)  # the training photos' audit
    try:
        partial.rename(out)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        raise UpdateError(f"{out} exists already: another process made this version") from None
