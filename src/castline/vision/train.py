"""Training: learn the normal look of a part from good photos, calibrate out of fold.

Every good photo given is used; none is set aside unless the user asks (`holdout`).

1. Deduplicate photos by content; a photo found among both good and defective ones is
   a labelling conflict and is dropped from both.
2. `holdout` good photos (chosen by content hash) may be kept back: the final model
   scores them for the user's own check, nothing learns from them.
3. The other good photos are dealt into `folds` folds by content hash; their patch
   descriptors are extracted once.
4. Out of fold: per fold, a memory of the other folds scores the fold's photos (and the
   fold's defect photos). The distance maps give the usual distance per place, the
   scores the thresholds and, with labelled defects, the head's descriptors. No photo is
   ever scored by a memory that learnt it, yet every photo calibrates.
5. The final memory learns from all photos; the final graph carries the usual distance,
   the head and the thresholds.

Every score on the way comes from the same ONNX graph the line runs (with a fold's
memory in place of the final one), cut in two (stages.py): each photo passes the
backbone once, and each memory scores what that pass kept.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from scipy import ndimage
from tqdm import tqdm

from castline.vision.align import Alignment, choose, input_shape, thumbnail
from castline.vision.augment import Copies, Placement, copies, copies_for
from castline.vision.backbone import INPUT_MEAN, INPUT_STD, EfficientNetLite
from castline.vision.calibration import (
    Calibration,
    calibrate,
    grown,
    rate_interval,
    threshold_for_frr,
)
from castline.vision.graph import (
    IMAGE_INPUT,
    STRIDES,
    Head,
    inspection_graph,
    preprocess,
)
from castline.vision.graph_builder import FLOAT, GraphBuilder
from castline.vision.head import fit_head, keep_training_descriptors
from castline.vision.images import photo_size, read_image
from castline.vision.memory import (
    PatchMemory,
    Projection,
    Scorer,
    cell_windows,
    cells_of,
    greedy_coreset,
)
from castline.vision.metrics import auroc
from castline.vision.model import FORMAT_VERSION, METADATA_KEY, ONNX_FILE, InspectionModel, session
from castline.vision.part import PartRegion, find_part
from castline.vision.patches import HW, grid_of
from castline.vision.quantize import quantised_for
from castline.vision.register import Registration, fit, spread, thumb
from castline.vision.stages import Seen, Stage, Stages, patch_rows

NATIVE_SIZE = {"lite0": 224, "lite1": 240}  # the resolution each backbone was trained at
# Lite1 in int8: ahead of Lite0 on every part type measured, within 12 ms (docs/vision.md).
DEFAULT_BACKBONE = "lite1"
CALIBRATION_FILE = "calibration.json"
MIN_PHOTOS = 10  # fewer good photos cannot both teach and calibrate
PCA_PHOTOS = 48  # photos whose patches find the descriptor's main directions
MAPS = ["distances"]  # what the first pass over the folds reads from a memory's graph
SCORES = ["anomaly", "descriptor", "peak"]  # and the second


@dataclass(frozen=True)
class TrainConfig:
    input_size: int | None = None  # None: the backbone's native resolution
    bank_images: int | None = None  # at most this many good photos (quick models); None: all
    holdout: int = 0  # good photos kept back for the user's own check
    folds: int = 5  # out-of-fold calibration: each fold is scored by the others' memory
    # Turned and shifted copies of each photo for the memory (augment.py); None: as many
    # as make about 800 views where the part looks like itself turned, else none.
    placements_per_image: int | None = None
    placement: Placement = field(default_factory=Placement)
    # The patch grid is cut into cells of `cell` x `cell` patches, each with its own memory
    # learnt from its patches and `reach` patches around; 0: one memory for the whole
    # photo; None: cells of `auto_cell` where the photos line up well enough (align.py).
    cell: int | None = None
    auto_cell: int = 4
    reach: int = 1
    memory_rows: int = 1024  # per cell
    whole_rows: int = 2048  # one memory for the whole photo
    dims: int = 96  # descriptor dimensions the memory keeps (PCA); 0: all
    max_rows: int = 600_000  # patch rows the coresets choose from, all cells together
    whole_max_rows: int = 60_000  # the same for one memory (its coreset is one long loop)
    # Mirrored photo around the input, px (a multiple of 16): edge patches are described
    # from real-looking surroundings, so the whole photo can count.
    border: int = 16
    strides: tuple[int, ...] = STRIDES  # feature maps of the patch descriptor
    usual: str = "max"  # what the maps are divided by, per place: "max" or "mean" (train.py)
    sigma: float = 1.0  # smoothing of the distances for the score, in patches
    heat_sigma: float = 0.5  # and for the heat map (memory.Scorer)
    margin: float = 0.0  # share of each side left out of the image score
    # Only the part and `part_margin` (share of the side) around it count, where the part
    # sits in the same place in every photo (part.py); False: the whole photo counts.
    part_mask: bool = True
    part_margin: float = 0.02
    # Move each photo onto the good photos' typical placement inside the graph before
    # scoring (register.py); only with a per-cell memory, where placement matters.
    register: bool = False
    top_patches: int = 10  # the image score is the mean of the map's highest patches
    # The backbone's convolutions in int8, activation ranges from the training photos
    # (quantize.py): a third faster, as accurate; the model file carries the int8 backbone.
    quantize: bool = True
    target_frr: float = 0.02
    review_frr: float = 0.05
    target_escape: float | None = None
    head_images: int = 400  # defect photos at most, for the supervised head
    seed: int = 0
    threads: int | None = None


@dataclass(frozen=True)
class Photo:
    path: Path
    digest: str


@dataclass
class Photos:
    """Good and defective photos after deduplication, with the role of each."""

    good: list[Photo]  # memory and out-of-fold calibration
    holdout: list[Photo]  # kept back on request: scored by the final model only
    unused: list[Photo]  # beyond `bank_images`
    defective: list[Photo]
    conflicts: int
    duplicates: int


def _unique(paths: Iterable[Path]) -> tuple[dict[str, Photo], int]:
    photos: dict[str, Photo] = {}
    duplicates = 0
    for path in sorted(Path(p) for p in paths):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in photos:
            duplicates += 1
        else:
            photos[digest] = Photo(path, digest)
    return photos, duplicates


def gather(
    good_paths: Sequence[Path], defect_paths: Sequence[Path] | None, config: TrainConfig
) -> Photos:
    good, dup_good = _unique(good_paths)
    bad, dup_bad = _unique(defect_paths or [])
    conflicts = set(good) & set(bad)
    for digest in conflicts:
        del good[digest], bad[digest]
    # Sorted by digest: a reproducible, content-determined but unbiased order.
    ordered = [p for _, p in sorted(good.items())]
    holdout, rest = ordered[: config.holdout], ordered[config.holdout :]
    cap = len(rest) if config.bank_images is None else config.bank_images
    defective = [p for _, p in sorted(bad.items())][: config.head_images]
    return Photos(
        good=rest[:cap],
        holdout=holdout,
        unused=rest[cap:],
        defective=defective,
        conflicts=len(conflicts),
        duplicates=dup_good + dup_bad,
    )


def _bar(items: Sequence[Any], desc: str, progress: bool) -> Iterable[Any]:
    return tqdm(items, desc=desc, unit="img", disable=not progress, leave=False)


@dataclass
class Pools:
    """Per cell and per photo, the (reduced) patch descriptors that photo shows there."""

    rows: list[list[np.ndarray]]  # [cell][photo] -> [n, d]
    cell: int  # side of a cell in patches (the grid for one memory)
    projection: Projection | None
    size: int  # rows per cell in the memory

    def by_fold(self, fold: np.ndarray, seed: int) -> FoldRows:
        """Per fold and cell, a coreset of `size` rows from the fold's photos."""
        rows = []
        for f in range(int(fold.max()) + 1):
            members = np.flatnonzero(fold == f)
            cells = [np.concatenate([per_photo[i] for i in members]) for per_photo in self.rows]
            rows.append([r[greedy_coreset(r, self.size, seed=seed)] for r in cells])
        return FoldRows(rows, self.cell, self.projection, self.size, seed)


@dataclass
class FoldRows:
    """Per fold and cell, the rows a coreset of the fold's own patches keeps.

    The memory of several folds is a coreset of their coresets: each fold's farthest
    points are in its own coreset, so the union covers what the folds' patches cover
    (k-centre coresets compose), at a fraction of the cost of choosing from every patch
    again for each of the memories training needs (fold, smaller and final).
    """

    rows: list[list[np.ndarray]]  # [fold][cell] -> [m, d]
    cell: int
    projection: Projection | None
    size: int
    seed: int

    def memory(self, folds: Iterable[int]) -> PatchMemory:
        """Per cell, a coreset of `size` rows from the rows the `folds` kept."""
        chosen_folds = list(folds)
        banks = []
        for c in range(len(self.rows[0])):
            rows = np.concatenate([self.rows[f][c] for f in chosen_folds])
            chosen = greedy_coreset(rows, self.size, seed=self.seed)
            # Cells with fewer rows repeat some: a duplicate never changes the nearest distance.
            banks.append(rows[np.resize(chosen, self.size)])
        return PatchMemory(np.stack(banks), self.cell, self.projection)


def input_shape_for(photos: list[Photo], side: int, config: TrainConfig) -> HW:
    """The model input: about `side` x `side` pixels shaped like the photos (align.py);
    square where the photos are registered onto a template (register.py is square)."""
    if config.register:
        return side, side
    return input_shape([photo_size(p.path) for p in photos], side)


@dataclass(frozen=True)
class Layout:
    """Where the part lies in the photos, how the memory is arranged around it, and the
    copies it learns from."""

    aligned: Alignment
    part: PartRegion
    registration: Registration | None  # None: photos are scored where they lie
    shifts: np.ndarray  # [n, 2] each photo's shift onto the template, input px
    copies: Copies


def arrangement(photos: list[Photo], size: HW, config: TrainConfig) -> Layout:
    """Per-cell or whole-photo memory (as configured, or measured on the photos), the
    registration (per-cell memory, when asked) with each photo's shift, where the part
    lies (only where it sits in one place: the per-cell memory) and its copies."""
    grid = grid_of(size)
    needed = (
        config.cell is None
        or (config.cell != 0 and config.part_mask)
        or config.placements_per_image is None
    )
    thumbs = [thumbnail(read_image(p.path), size) for p in photos] if needed else []
    copies = copies_for(thumbs, config.placements_per_image, config.placement)
    if config.cell is not None:
        aligned = Alignment(float("nan"), float("nan"), config.cell)
    else:
        aligned = choose(thumbs, config.auto_cell, config.reach, grid)
    registration, shifts = None, np.zeros((0, 2), dtype=np.int64)
    if aligned.cell and config.register:
        side = size[0]  # registration keeps the input square (input_shape_for)
        registration, shifts = fit(_input_thumbs(photos, size, config.threads), side)
        if thumbs:  # the part's region is found in the template's frame
            thumbs = [_moved_thumb(t, s, side) for t, s in zip(thumbs, shifts, strict=True)]
    part = PartRegion(None, 1.0, float("nan"), config.part_margin)  # everywhere
    if aligned.cell and config.part_mask:
        part = find_part(thumbs, grid, size, config.part_margin)
    return Layout(aligned, part, registration, shifts, copies)


def _input_thumbs(photos: list[Photo], size: HW, threads: int | None) -> list[np.ndarray]:
    """The grey thumbnails the graph registers with (register.thumb of the input)."""
    g = GraphBuilder()
    x, _ = preprocess(g, size)
    g.rename(thumb(g, x), "thumb")
    graph = g.model([IMAGE_INPUT], [("thumb", FLOAT, [1, 1, "t", "t"])], "castline-thumb")
    small = session(graph.SerializeToString(), threads, arena=False)
    return [small.run(["thumb"], {"image": read_image(p.path)})[0][0, 0] for p in photos]


def _moved_thumb(image: np.ndarray, shift: np.ndarray, size: int) -> np.ndarray:
    """A 64 px thumbnail (align.thumbnail) moved onto the template, as the graph moves
    the input: for the part's region in the template's frame."""
    dy, dx = (round(float(v) * image.shape[0] / size) for v in shift)
    reach = max(abs(dy), abs(dx))
    if not reach:
        return image
    padded = np.pad(image, reach, mode="reflect")
    return padded[
        reach + dy : reach + dy + image.shape[0], reach + dx : reach + dx + image.shape[1]
    ]


def blank_memory(
    net: EfficientNetLite, size: HW, cell_side: int, config: TrainConfig
) -> PatchMemory:
    """One zero row per cell: a graph to cut before any memory is learnt."""
    grid = grid_of(size)
    cell = cell_side or max(grid)  # one memory: a single cell over the whole grid
    ny, nx = cells_of(grid, cell)
    dim = sum(net.channels_at(s) for s in config.strides)
    return PatchMemory(np.zeros((ny * nx, 1, dim), np.float32), cell)


def extract_pools(
    look: Stage,
    size: HW,
    photos: list[Photo],
    layout: Layout,
    config: TrainConfig,
    progress: bool,
) -> tuple[Pools, list[Seen]]:
    """Patch descriptors of every photo (and its placed copies), per cell, reduced; and
    what the photo stage `look` gave for each photo itself, for scoring it later."""
    grid = grid_of(size)
    cell_side, placing = layout.aligned.cell, layout.copies
    cell = cell_side or max(grid)
    windows = cell_windows(grid, cell, config.reach if cell_side else 0)
    max_rows = config.max_rows if cell_side else config.whole_max_rows
    rng = np.random.default_rng(config.seed)
    # Keep a random share of each view's rows so the pools never exceed max_rows:
    # memory stays flat however many photos there are.
    views = len(photos) * (1 + placing.per_photo)
    per_cell = -(-max_rows // (len(windows) * views))
    raw: list[list[np.ndarray]] = [[] for _ in windows]
    projection: Projection | None = None
    seen: list[Seen] = []
    for index, photo in enumerate(_bar(photos, "patches", progress)):
        image = read_image(photo.path)
        kept: list[list[np.ndarray]] = [[] for _ in windows]
        for placed in copies(image, placing.per_photo, placing.placement, rng):
            values = look({IMAGE_INPUT.name: placed})
            if placed is image:
                seen.append(values)
            patches = patch_rows(values)
            for rows, window in zip(kept, windows, strict=True):
                if len(window) > per_cell:
                    window = rng.choice(window, per_cell, replace=False)
                rows.append(patches[window])
        for pool, rows in zip(raw, kept, strict=True):
            pool.append(np.concatenate(rows))
        if index + 1 == min(PCA_PHOTOS, len(photos)) and 0 < config.dims < patches.shape[1]:
            # The main directions among the first photos' patches; from then on every
            # photo's rows are kept reduced (a third of the memory).
            sample = np.concatenate([rows for pool in raw for rows in pool])
            projection = Projection.fit(sample, config.dims)
            raw = [[projection(rows) for rows in pool] for pool in raw]
        elif projection is not None:
            for pool in raw:
                pool[-1] = projection(pool[-1])
    size_rows = config.memory_rows if cell_side else config.whole_rows
    return Pools(raw, cell, projection, size_rows), seen


def looked_at(look: Stage, photos: list[Photo], progress: bool) -> list[Seen]:
    """What the photo stage gives for each photo."""
    return [look({IMAGE_INPUT.name: read_image(p.path)}) for p in _bar(photos, "look", progress)]


def _outputs(
    model: InspectionModel, photos: list[Photo], desc: str, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """score, anomaly and descriptor of each photo through the model's graph."""
    scores, anomalies, descriptors = [], [], []
    for photo in _bar(photos, desc, progress):
        out = model.run(read_image(photo.path))
        scores.append(float(out["score"][0]))
        anomalies.append(float(out["anomaly"][0]))
        descriptors.append(out["descriptor"][0])
    dim = descriptors[0].shape[0] if descriptors else 0
    return (
        np.asarray(scores),
        np.asarray(anomalies),
        np.asarray(descriptors).reshape(len(photos), dim),
    )


def usual_distance(maps: np.ndarray, how: str = "max") -> np.ndarray:
    """Per place, how far good photos scored out of fold lie from the memory there.

    "max": the largest distance any of them showed (smoothed over about a patch): a place
    where good parts sometimes differ a lot (a scratched table, glare) tolerates that
    much, and a defect must go beyond the worst good photo seen there. "mean": their mean.
    """
    usual = ndimage.gaussian_filter(maps.max(axis=0), 1.0) if how == "max" else maps.mean(axis=0)
    # Where good photos happen to match the memory almost exactly, do not divide by ~0.
    return np.maximum(usual, 0.1 * float(np.median(usual))).astype(np.float32)


def fold_of(count: int, folds: int) -> np.ndarray:
    """Fold of each of `count` photos (in digest order): dealt round-robin."""
    return np.arange(count) % folds


@dataclass
class OutOfFold:
    """Each good photo's scores from the memory of the folds it is not in."""

    fold: np.ndarray  # per good photo
    anomaly: np.ndarray
    descriptors: np.ndarray
    peak: np.ndarray  # the heat map's highest value
    bad_fold: np.ndarray  # per defect photo
    bad_anomaly: np.ndarray
    bad_descriptors: np.ndarray
    usual: np.ndarray
    smaller: Smaller | None = None  # the same photos scored by smaller memories


@dataclass
class Smaller:
    """Out-of-fold scores from memories one fold smaller: how scores fall as memory grows."""

    anomaly: np.ndarray
    descriptors: np.ndarray
    bad_anomaly: np.ndarray
    bad_descriptors: np.ndarray
    sizes: tuple[float, float, float]  # photos in the fold memories, the smaller, the final


def _graph_builder(
    net: EfficientNetLite,
    size: HW,
    border: int,
    strides: tuple[int, ...],
    registration: Registration | None = None,
) -> Any:  # a closure; typed loosely to keep the call sites short
    def build(
        memory: PatchMemory,
        scorer: Scorer,
        head: Head | None = None,
        thresholds: tuple[float, float] = (float("inf"), float("inf")),
    ) -> onnx.ModelProto:
        return inspection_graph(
            net,
            size,
            memory,
            scorer=scorer,
            thresholds=thresholds,
            head=head,
            border=border,
            strides=strides,
            register=registration,
        )

    return build


@dataclass
class Looks:
    """What the photo stage gave for each good and each defect photo (in `Photos` order)."""

    good: list[Seen]
    defective: list[Seen]


def out_of_fold(
    build: Any,
    stages: Stages,
    kept: FoldRows,
    looks: Looks,
    folds: int,
    config: TrainConfig,
    plain: Scorer,
    progress: bool,
) -> OutOfFold:
    """Two passes over the folds: distance maps (-> usual distance), then scores."""
    fold = fold_of(len(looks.good), folds)
    bad_fold = fold_of(len(looks.defective), folds)
    memories = [kept.memory(g for g in range(folds) if g != f) for f in range(folds)]
    maps: list[np.ndarray] = [np.empty(0)] * len(looks.good)
    for f, memory in enumerate(memories):
        stage = stages.memory(build(memory, plain), MAPS)
        for i in _bar(np.flatnonzero(fold == f).tolist(), "usual", progress):
            maps[i] = stage(looks.good[i])[MAPS[0]]
    stacked = np.asarray(maps)
    anomaly, descriptors = np.zeros(len(looks.good)), [np.empty(0)] * len(looks.good)
    peak = np.zeros(len(looks.good))
    bad_anomaly = np.zeros(len(looks.defective))
    bad_descriptors = [np.empty(0)] * len(looks.defective)
    # A fold's own maps never set the usual distance it is scored against: with "max"
    # its photos would otherwise meet their own worst place.
    usuals = [usual_distance(stacked[fold != f], config.usual) for f in range(folds)]
    for f, memory in enumerate(memories):
        stage = stages.memory(build(memory, replace(plain, usual=usuals[f])), SCORES)
        _score_fold(stage, looks.good, fold == f, anomaly, descriptors, progress, peak)
        _score_fold(stage, looks.defective, bad_fold == f, bad_anomaly, bad_descriptors, progress)
    # The final model divides by the folds' mean: a maximum over all photos would sit
    # higher than the ones calibration used, and new photos would score lower than the
    # thresholds assume.
    usual = np.mean(usuals, axis=0).astype(np.float32)
    smaller = None
    if folds >= 3:
        scorers = [replace(plain, usual=u) for u in usuals]
        smaller = _smaller(build, stages, kept, looks, (fold, bad_fold), scorers, progress)
    return OutOfFold(
        fold,
        anomaly,
        np.asarray(descriptors),
        peak,
        bad_fold,
        bad_anomaly,
        np.asarray(bad_descriptors),
        usual,
        smaller,
    )


def _smaller(
    build: Any,
    stages: Stages,
    kept: FoldRows,
    looks: Looks,
    folds_of: tuple[np.ndarray, np.ndarray],
    scorers: list[Scorer],
    progress: bool,
) -> Smaller:
    """Each fold scored again by a memory without the next fold as well (same usual
    distance): with the fold memories and the final one, three memory sizes."""
    fold, bad_fold = folds_of
    folds = len(scorers)
    anomaly, descriptors = np.zeros(len(looks.good)), [np.empty(0)] * len(looks.good)
    bad_anomaly = np.zeros(len(looks.defective))
    bad_descriptors = [np.empty(0)] * len(looks.defective)
    small = []
    for f in range(folds):
        members = np.flatnonzero((fold != f) & (fold != (f + 1) % folds))
        small.append(len(members))
        without = (f, (f + 1) % folds)
        memory = kept.memory(g for g in range(folds) if g not in without)
        stage = stages.memory(build(memory, scorers[f]), SCORES)
        _score_fold(stage, looks.good, fold == f, anomaly, descriptors, progress)
        _score_fold(stage, looks.defective, bad_fold == f, bad_anomaly, bad_descriptors, progress)
    near = float(np.mean([np.sum(fold != f) for f in range(folds)]))
    sizes = (near, float(np.mean(small)), float(len(fold)))
    return Smaller(
        anomaly, np.asarray(descriptors), bad_anomaly, np.asarray(bad_descriptors), sizes
    )


def _score_fold(
    stage: Stage,
    group: list[Seen],
    chosen: np.ndarray,
    anomaly: np.ndarray,
    descriptors: list[np.ndarray],
    progress: bool,
    peak: np.ndarray | None = None,
) -> None:
    """Score the photos of `group` where `chosen`, into `anomaly` and `descriptors` (and
    their heat maps' peaks into `peak`)."""
    for i in _bar(np.flatnonzero(chosen).tolist(), "out of fold", progress):
        out = stage(group[i])
        anomaly[i] = float(out["anomaly"][0])
        descriptors[i] = out["descriptor"][0]
        if peak is not None:
            peak[i] = float(out["peak"][0])


def cross_fitted_head(oof: OutOfFold, folds: int) -> tuple[Head, np.ndarray, np.ndarray]:
    """The head on all descriptors, and each photo's probability from a head fitted
    without its fold (so the thresholds are set on probabilities the head never saw)."""
    good_p, bad_p = cross_fitted(oof, folds, oof.descriptors, oof.bad_descriptors)
    return fit_head(oof.descriptors, oof.bad_descriptors), good_p, bad_p


def cross_fitted(
    oof: OutOfFold, folds: int, good: np.ndarray, bad: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the descriptors `good` and `bad` (one row per photo, in the order
    of `oof`) from heads fitted on the out-of-fold descriptors without their fold."""
    good_p = np.zeros(len(oof.fold))
    bad_p = np.zeros(len(oof.bad_fold))
    for f in range(folds):
        inside, bad_inside = oof.fold != f, oof.bad_fold != f
        if not bad_inside.any():
            continue
        head = fit_head(oof.descriptors[inside], oof.bad_descriptors[bad_inside])
        good_p[~inside] = head.probability(good[~inside])
        bad_p[~bad_inside] = head.probability(bad[~bad_inside])
    return good_p, bad_p


def _data_hash(photos: Photos) -> str:
    digests = sorted(p.digest for p in [*photos.good, *photos.defective])
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def _rates(calibration: Calibration, good: np.ndarray) -> dict[str, Any]:
    """False-reject and review rates with 95 % intervals."""
    n = len(good)
    rejected = int(np.sum(good >= calibration.ng))
    reviewed = int(np.sum((good >= calibration.review) & (good < calibration.ng)))
    return {
        "false_reject_rate_interval": rate_interval(rejected, n),
        "review_rate_interval": rate_interval(reviewed, n),
    }


def train_model(
    good_paths: Sequence[Path],
    out: Path | str,
    *,
    defect_paths: Sequence[Path] | None = None,
    backbone: str = DEFAULT_BACKBONE,
    progress: bool = True,
    config: TrainConfig | None = None,
) -> InspectionModel:
    """Train, calibrate out of fold and save a model folder at `out`; returns the model."""
    config = config or TrainConfig()
    clock = _Stopwatch()
    photos = gather(good_paths, defect_paths, config)
    folds = _folds(photos, config)
    net = EfficientNetLite.load(backbone)
    size = input_shape_for(photos.good, config.input_size or NATIVE_SIZE[backbone], config)
    _check_config(config)
    if config.quantize:  # int8 convolutions from here on, for every score (quantize.py)
        net = quantised_for(net, size, config.border, config.strides, [p.path for p in photos.good])
    layout = arrangement(photos.good, size, config)
    build = _graph_builder(net, size, config.border, config.strides, layout.registration)
    plain = Scorer(
        config.sigma, config.margin, part=layout.part.weights, top=config.top_patches,
        heat_sigma=config.heat_sigma,
    )  # fmt: skip
    graph = build(blank_memory(net, size, layout.aligned.cell, config), plain)
    stages, pools, looks = _look(graph, size, photos, layout, config, progress)
    clock.lap("patches_s")
    kept = pools.by_fold(fold_of(len(photos.good), folds), config.seed)
    del pools
    clock.lap("fold_coresets_s")
    oof = out_of_fold(build, stages, kept, looks, folds, config, plain, progress)
    del looks
    clock.lap("out_of_fold_s")
    memory = kept.memory(range(folds))
    del kept
    clock.lap("memory_s")

    fit = _fit(oof, photos, folds, config)
    thresholds = (fit.calibration.review, fit.calibration.ng)
    final = build(memory, replace(plain, usual=oof.usual), fit.head, thresholds)
    metrics: dict[str, Any] = {"out_of_fold": _out_of_fold_metrics(fit, oof, folds)}
    clock.lap("calibration_s")

    manifest = _manifest(backbone, size, config, photos, folds, memory, layout, fit, metrics)
    entry = final.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(manifest, sort_keys=True)
    model = InspectionModel(final.SerializeToString(), manifest, threads=config.threads)
    holdout = _outputs(model, photos.holdout, "holdout", progress)[0]
    if len(holdout):
        metrics["holdout"] = _holdout_metrics(fit.calibration, holdout)
    metrics["train_seconds"] = clock.total()
    metrics["timings"] = clock.laps
    # The holdout figures and times reach manifest.json, not the graph's copy of it.
    folder = model.save(out)
    keep_training_descriptors(folder, oof)  # what a review-loop head refit starts from
    records = _records(photos, oof, fit.good_scores, fit.bad_scores, holdout)
    (folder / CALIBRATION_FILE).write_text(json.dumps({"images": records}, indent=1))
    return model


def _look(
    graph: onnx.ModelProto,
    size: HW,
    photos: Photos,
    layout: Layout,
    config: TrainConfig,
    progress: bool,
) -> tuple[Stages, Pools, Looks]:
    """Each photo through the photo stage once (cut from `graph`, any memory's): the
    memory's pools, and what each good and defect photo showed, for every memory to score."""
    stages = Stages.of(graph, [*MAPS, *SCORES], config.threads)
    look = stages.photo(graph)
    pools, good = extract_pools(look, size, photos.good, layout, config, progress)
    return stages, pools, Looks(good, looked_at(look, photos.defective, progress))


class _Stopwatch:
    """Seconds of each step of training, and of all of it."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """The time since the last lap (since the start for the first)."""
        spent = time.perf_counter() - self.started - sum(self.laps.values())
        self.laps[name] = round(spent, 2)

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 2)


def _folds(photos: Photos, config: TrainConfig) -> int:
    """How many folds calibrate out of fold: as asked, unless too few photos for it."""
    if len(photos.good) < MIN_PHOTOS:
        raise ValueError(
            f"{len(photos.good)} good photos to learn from: give at least {MIN_PHOTOS} "
            "(a few hundred for a sharp model)"
        )
    folds = min(config.folds, len(photos.good) // 2)
    if folds < 2:
        raise ValueError(f"need at least 2 folds to calibrate out of fold, got {config.folds}")
    return folds


def _check_config(config: TrainConfig) -> None:
    if config.placements_per_image is not None and config.placements_per_image < 0:
        raise ValueError(f"copies of a photo cannot be {config.placements_per_image}")
    if config.usual not in ("max", "mean"):
        raise ValueError(f"usual must be max or mean, got {config.usual!r}")
    if config.border % max(config.strides):
        raise ValueError(f"border must be a multiple of {max(config.strides)} px")


@dataclass(frozen=True)
class _Fit:
    """The decision learnt out of fold: the head (with defect photos), the scores the
    thresholds were set on, the thresholds."""

    head: Head | None
    good_scores: np.ndarray  # out of fold, per photo
    bad_scores: np.ndarray
    calibration: Calibration
    region: float  # heat-map level of a defect region (out-of-fold peaks of good photos)
    calibrated: np.ndarray  # the good scores as the final memory would give them (sorted)


def _fit(oof: OutOfFold, photos: Photos, folds: int, config: TrainConfig) -> _Fit:
    head = None
    good_scores, bad_scores = oof.anomaly, oof.bad_anomaly
    small = oof.smaller
    small_good, small_bad = (small.anomaly, small.bad_anomaly) if small else (None, None)
    if len(photos.defective) >= folds:
        head, good_scores, bad_scores = cross_fitted_head(oof, folds)
        if small is not None:
            small_good, small_bad = cross_fitted(
                oof, folds, small.descriptors, small.bad_descriptors
            )
    good, bad = good_scores, bad_scores
    if small is not None and small_good is not None and small_bad is not None:
        # Calibrate on the scores the final, larger memory would give (calibration.grown).
        good = grown(good_scores, small_good, small.sizes)
        if len(bad_scores):
            bad = grown(bad_scores, small_bad, small.sizes)
    calibration = calibrate(
        good,
        bad,
        target_frr=config.target_frr,
        review_frr=config.review_frr,
        target_escape=config.target_escape,
    )
    # A region is drawn where the heat map reaches what 2 % of good photos reach
    # anywhere out of fold: an unsmoothed map peaks above the score it came with. (The
    # final, larger memory peaks a little lower: it errs towards fewer regions.)
    region = threshold_for_frr(oof.peak, config.target_frr)
    return _Fit(head, good_scores, bad_scores, calibration, region, good)


def _out_of_fold_metrics(fit: _Fit, oof: OutOfFold, folds: int) -> dict[str, Any]:
    good, bad = fit.good_scores, fit.bad_scores
    metrics = (
        fit.calibration.as_dict()
        | _rates(fit.calibration, fit.calibrated)
        | {"n_ok": len(good), "n_ng": len(bad), "folds": folds}
    )
    if len(bad):
        metrics["image_auroc"] = auroc(good, bad)
        metrics["image_auroc_good_only"] = auroc(oof.anomaly, oof.bad_anomaly)
    return metrics


def _holdout_metrics(calibration: Calibration, holdout: np.ndarray) -> dict[str, Any]:
    """How the final model treats the good photos nothing learnt from."""
    return {
        "n_ok": len(holdout),
        "false_reject_rate": float(np.mean(holdout >= calibration.ng)),
        "review_rate": float(np.mean((holdout >= calibration.review) & (holdout < calibration.ng))),
    } | _rates(calibration, holdout)


def _manifest(
    backbone: str,
    size: HW,
    config: TrainConfig,
    photos: Photos,
    folds: int,
    memory: PatchMemory,
    layout: Layout,
    fit: _Fit,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """What the model folder says of itself: inputs, thresholds, how it was trained."""
    created = datetime.now(UTC)
    data_hash = _data_hash(photos)
    calibration = fit.calibration
    return {
        "format_version": FORMAT_VERSION,
        "version": f"{backbone}-{created:%Y%m%dT%H%M%S}-{data_hash[:6]}",
        "created": created.isoformat(),
        "backbone": backbone,
        "input_size": list(size),  # height, width: shaped like the training photos
        "preprocessing": {
            "channels": "RGB",
            "resize": "letterbox: bilinear, as large as fits the input, padded by the edge",
            "border_px": config.border,
            "mean": INPUT_MEAN,
            "std": INPUT_STD,
        },
        "strides": list(config.strides),
        "score": "head" if fit.head is not None else "anomaly",
        "thresholds": {"review": calibration.review, "ng": calibration.ng, "region": fit.region},
        "heatmap": f"image-sized, distance to the nearest normal patch / {config.usual} "
        "distance of good photos there (out of fold)",
        "training": {
            "data_sha256": data_hash,
            "photos": _usage(photos, folds),
            "duplicates_dropped": photos.duplicates,
            "conflicts_dropped": photos.conflicts,
            "memory_rows": int(memory.bank.shape[1]),
            "memory_cells": int(memory.bank.shape[0]),
            "alignment": layout.aligned.as_dict() | {"chosen": config.cell is None},
            "part": layout.part.as_dict() | {"asked": config.part_mask},
            "registration": spread(layout.shifts, size[0]) if layout.registration else None,
            "copies": layout.copies.as_dict(),
            "config": asdict(config),
        },
        "metrics": metrics,
        "onnx": ONNX_FILE,
    }


def _usage(photos: Photos, folds: int) -> dict[str, Any]:
    """How each kind of photo was used (the per-photo list is in calibration.json)."""
    return {
        "good_given": len(photos.good) + len(photos.holdout) + len(photos.unused),
        "memory_and_calibration": len(photos.good),
        "folds": folds,
        "holdout": len(photos.holdout),
        "unused_over_bank_images": len(photos.unused),
        "defective_calibration_and_head": len(photos.defective),
        "how": "every good photo is in the final memory; its calibration score comes from "
        "the memory of the other folds",
    }


def _records(
    photos: Photos,
    oof: OutOfFold,
    good_scores: np.ndarray,
    bad_scores: np.ndarray,
    holdout: np.ndarray,
) -> list[dict[str, Any]]:
    """One line per photo: its name, role, fold and the score it was calibrated with."""
    records = []
    for label, role, group, folds, scores in (
        ("OK", "memory+calibration", photos.good, oof.fold, good_scores),
        ("NG", "calibration", photos.defective, oof.bad_fold, bad_scores),
        ("OK", "holdout", photos.holdout, None, holdout),
    ):
        for i, photo in enumerate(group):
            records.append(
                {
                    "sha256": photo.digest,
                    "name": photo.path.name,
                    "label": label,
                    "role": role,
                    "fold": int(folds[i]) if folds is not None else None,
                    "score": float(scores[i]),
                }
            )
    records += [
        {"sha256": p.digest, "name": p.path.name, "label": "OK", "role": "unused", "fold": None}
        for p in photos.unused
    ]
    return records
