"""A supervised head for when labelled defect photos exist.

Logistic regression on the graph's image descriptor (anomaly statistics + pooled patch
features). It is fitted with scikit-learn at training time (and when the review loop
refits it); the graph carries its coefficients as a plain MatMul + Add + Sigmoid,
standardisation folded in, so inspecting needs no scikit-learn.

What a later refit needs is kept in the model folder (`HEAD_DATA_FILE`, plain numpy
arrays, no pickle): the out-of-fold descriptors of the training photos with their folds,
the descriptors of the same photos from memories one fold smaller (for `grown`), and
the descriptors of photos people confirmed since. A refit is cross-fitted over the same
folds, so its thresholds are set on probabilities of heads that never saw the photo,
exactly as at training (`refit_head`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx
from onnx import helper, numpy_helper
from sklearn.linear_model import LogisticRegression

from castline.vision.calibration import Calibration, calibrate, grown, rate_interval
from castline.vision.graph import Head
from castline.vision.metrics import auroc

HEAD_DATA_FILE = "head_descriptors.npz"
MAX_GOOD = 4096  # training photos' descriptors kept (evenly thinned beyond)
MAX_REVIEWED_GOOD = 1024  # descriptors of photos confirmed good (the newest kept)
MAX_DEFECTS = 2048  # defect descriptors (the newest kept)
# Confirmed defects before a model without a head gets one: two per fold of a 5-fold
# model, so each fold's head learns from at least 8 and the escape figure of the
# cross-fit rests on 10 photos, not on one or two.
MIN_DEFECTS = 10


class HeadError(ValueError):
    """The head cannot be refitted or placed in this graph; the message says why."""


def fit_head(good: np.ndarray, defective: np.ndarray, *, strength: float = 0.1) -> Head:
    """Fit on descriptors [n, K] of good and defective photos; `strength` is sklearn's C."""
    x = np.concatenate([good, defective]).astype(np.float64)
    y = np.concatenate([np.zeros(len(good)), np.ones(len(defective))])
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-6] = 1.0
    fit = LogisticRegression(C=strength, class_weight="balanced", max_iter=2000)
    fit.fit((x - mean) / std, y)
    weights = fit.coef_[0] / std
    bias = float(fit.intercept_[0] - np.sum(mean * weights))
    return Head(weights.astype(np.float32), bias)


# -- what a refit starts from -----------------------------------------------------------


class _Smaller(Protocol):
    @property
    def descriptors(self) -> np.ndarray: ...
    @property
    def sizes(self) -> tuple[float, float, float]: ...


class _OutOfFold(Protocol):
    """What `train.OutOfFold` holds (a protocol: head.py is imported by train.py)."""

    @property
    def fold(self) -> np.ndarray: ...
    @property
    def descriptors(self) -> np.ndarray: ...
    @property
    def bad_fold(self) -> np.ndarray: ...
    @property
    def bad_descriptors(self) -> np.ndarray: ...
    @property
    def smaller(self) -> _Smaller | None: ...


@dataclass(frozen=True)
class HeadData:
    """Descriptors [n, K] a head is (re)fitted and calibrated from."""

    good: np.ndarray  # training good photos, out of fold: calibrate and fit
    good_fold: np.ndarray
    bad: np.ndarray  # training defects (out of fold), then confirmed ones
    bad_fold: np.ndarray
    bad_confirmed: np.ndarray  # bool per defect: confirmed by a person after training
    reviewed_good: np.ndarray  # photos confirmed good after training: fit and calibrate
    good_smaller: np.ndarray | None = None  # `good` from memories one fold smaller
    sizes: np.ndarray | None = None  # photos in those memories (calibration.grown)

    @property
    def folds(self) -> int:
        return int(self.good_fold.max()) + 1 if len(self.good_fold) else 0

    @classmethod
    def from_training(cls, oof: _OutOfFold) -> HeadData:
        keep = _thinned(len(oof.fold), MAX_GOOD)
        dim = oof.descriptors.shape[1] if oof.descriptors.ndim == 2 else 0
        bad = oof.bad_descriptors.reshape(-1, dim)[-MAX_DEFECTS:]
        smaller = oof.smaller
        return cls(
            good=oof.descriptors[keep].astype(np.float32),
            good_fold=oof.fold[keep].astype(np.int64),
            bad=bad.astype(np.float32),
            bad_fold=oof.bad_fold[-MAX_DEFECTS:].astype(np.int64),
            bad_confirmed=np.zeros(len(bad), dtype=bool),
            reviewed_good=np.zeros((0, dim), dtype=np.float32),
            good_smaller=None if smaller is None else smaller.descriptors[keep].astype(np.float32),
            sizes=None if smaller is None else np.asarray(smaller.sizes, dtype=np.float64),
        )

    def with_confirmed(self, defects: np.ndarray, good: np.ndarray) -> HeadData:
        """These descriptors of confirmed defects and confirmed good photos added; a
        defect joins the folds round-robin, after those there (so every fold keeps some)."""
        dim = self.good.shape[1]
        defects, good = defects.reshape(-1, dim), good.reshape(-1, dim)
        start = len(self.bad_fold)
        folds = np.arange(start, start + len(defects)) % max(self.folds, 1)
        return HeadData(
            good=self.good,
            good_fold=self.good_fold,
            bad=np.concatenate([self.bad, defects]).astype(np.float32)[-MAX_DEFECTS:],
            bad_fold=np.concatenate([self.bad_fold, folds])[-MAX_DEFECTS:],
            bad_confirmed=np.concatenate([self.bad_confirmed, np.ones(len(defects), bool)])[
                -MAX_DEFECTS:
            ],
            reviewed_good=np.concatenate([self.reviewed_good, good]).astype(np.float32)[
                -MAX_REVIEWED_GOOD:
            ],
            good_smaller=self.good_smaller,
            sizes=self.sizes,
        )

    def save(self, folder: Path) -> Path:
        arrays = {
            name: value
            for name, value in vars(self).items()
            if value is not None  # the smaller-memory pair exists from 3 folds on
        }
        path = folder / HEAD_DATA_FILE
        with path.open("wb") as out:
            np.savez_compressed(out, **arrays)
        return path

    @classmethod
    def load(cls, folder: Path) -> HeadData | None:
        """The folder's head data; None where the model was trained without it."""
        path = folder / HEAD_DATA_FILE
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as found:
                arrays = {name: found[name] for name in found.files}
            data = cls(**arrays)
        except (OSError, ValueError, TypeError) as exc:
            raise HeadError(f"{path} is not usable ({exc}): retrain the model") from None
        data.check()
        return data

    def check(self) -> None:
        dim = self.good.shape[1] if self.good.ndim == 2 else -1
        shapes_agree = (
            dim > 0
            and len(self.good) == len(self.good_fold)
            and self.bad.shape[1:] == (dim,)
            and len(self.bad) == len(self.bad_fold) == len(self.bad_confirmed)
            and self.reviewed_good.shape[1:] == (dim,)
            and (self.good_smaller is None or self.good_smaller.shape == self.good.shape)
        )
        if not shapes_agree or self.folds < 2:
            raise HeadError(f"{HEAD_DATA_FILE}: its arrays do not agree: retrain the model")


def _thinned(count: int, most: int) -> np.ndarray:
    """At most `most` indices of `count`, evenly spread (folds are dealt round-robin, so
    each fold keeps its share)."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, most).round().astype(np.int64))


def keep_training_descriptors(folder: Path, oof: _OutOfFold) -> Path:
    """Write what a later refit needs into the model folder (called by training)."""
    return HeadData.from_training(oof).save(folder)


# -- refit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refit:
    """A head refitted on kept and confirmed descriptors, with its thresholds."""

    head: Head
    calibration: Calibration
    good: int  # training photos the thresholds were set on
    reviewed_good: int
    defects: int
    confirmed_defects: int
    auroc: float  # cross-fitted, training good vs all defects
    false_reject_interval: list[float]
    review_interval: list[float]

    def as_dict(self) -> dict[str, object]:
        return {
            "good": self.good,
            "reviewed_good": self.reviewed_good,
            "defects": self.defects,
            "confirmed_defects": self.confirmed_defects,
            "image_auroc": self.auroc,
            "calibration": self.calibration.as_dict(),
            "false_reject_rate_interval": self.false_reject_interval,
            "review_rate_interval": self.review_interval,
            "how": "cross-fitted over the training folds: each good photo's probability "
            "(training photos and those confirmed good since) comes from a head fitted "
            "without its fold; thresholds from those probabilities (the training photos' "
            "carried to the final memory's size where the smaller memories were kept)",
        }


def refit_head(
    data: HeadData, *, target_frr: float, review_frr: float, target_escape: float | None
) -> Refit:
    """The head on all descriptors; thresholds for the false-reject targets on the
    cross-fitted probabilities of the good photos: the training ones and those people
    confirmed good since (each scored by a head fitted without its fold)."""
    if len(data.bad) < data.folds:
        raise HeadError(f"{len(data.bad)} defects: a head needs at least {data.folds}")
    reviewed_fold = np.arange(len(data.reviewed_good)) % data.folds
    good_p = np.zeros(len(data.good))
    small_p = np.zeros(len(data.good))
    reviewed_p = np.zeros(len(data.reviewed_good))
    bad_p = np.zeros(len(data.bad))
    for f in range(data.folds):
        inside, bad_inside = data.good_fold != f, data.bad_fold != f
        if not bad_inside.any():
            raise HeadError(f"fold {f} alone holds every defect: confirm more defects")
        reviewed_inside = reviewed_fold != f
        good = np.concatenate([data.good[inside], data.reviewed_good[reviewed_inside]])
        head = fit_head(good, data.bad[bad_inside])
        good_p[~inside] = head.probability(data.good[~inside])
        if data.good_smaller is not None:
            small_p[~inside] = head.probability(data.good_smaller[~inside])
        reviewed_p[~reviewed_inside] = head.probability(data.reviewed_good[~reviewed_inside])
        bad_p[~bad_inside] = head.probability(data.bad[~bad_inside])
    trained = good_p
    if data.good_smaller is not None and data.sizes is not None:
        sizes = (float(data.sizes[0]), float(data.sizes[1]), float(data.sizes[2]))
        trained = grown(good_p, small_p, sizes)  # as the final, larger memory would score them
    # The photos confirmed good were chosen because castline held them, the hardest good
    # looks: among the calibration photos they can only raise the thresholds (fewer false
    # rejects, a few more defects to review), never make the target look met when it is not.
    good = np.concatenate([trained, reviewed_p])
    calibration = calibrate(
        good, bad_p, target_frr=target_frr, review_frr=review_frr, target_escape=target_escape
    )
    final = fit_head(np.concatenate([data.good, data.reviewed_good]), data.bad)
    rejected = int(np.sum(good >= calibration.ng))
    reviewed = int(np.sum((good >= calibration.review) & (good < calibration.ng)))
    return Refit(
        head=final,
        calibration=calibration,
        good=len(data.good),
        reviewed_good=len(data.reviewed_good),
        defects=len(data.bad),
        confirmed_defects=int(data.bad_confirmed.sum()),
        auroc=auroc(good, bad_p),
        false_reject_interval=rate_interval(rejected, len(good)),
        review_interval=rate_interval(reviewed, len(good)),
    )


# -- the head in the graph --------------------------------------------------------------


def has_head(proto: onnx.ModelProto) -> bool:
    return any(i.name.startswith("head_w_") for i in proto.graph.initializer)


def set_head(proto: onnx.ModelProto, head: Head, thresholds: tuple[float, float]) -> None:
    """The graph's head (inserted where it has none) and its REVIEW and NG thresholds."""
    if has_head(proto):
        _replace(proto, "head_w_", head.weights[:, None])
        _replace(proto, "head_b_", np.asarray([head.bias]))
    else:
        _insert_head(proto, head)
    for name, value in zip(_threshold_names(proto), thresholds, strict=True):
        _replace(proto, name, np.asarray([value]), exact=True)


def _replace(proto: onnx.ModelProto, name: str, value: np.ndarray, exact: bool = False) -> None:
    found = [
        t for t in proto.graph.initializer if (t.name == name if exact else t.name.startswith(name))
    ]
    if len(found) != 1:
        raise HeadError(f"the model's graph has no single {name.rstrip('_')} to set")
    found[0].CopyFrom(numpy_helper.from_array(value.astype(np.float32), found[0].name))


def _threshold_names(proto: onnx.ModelProto) -> tuple[str, str]:
    """The REVIEW and NG thresholds the verdict compares the score with."""
    names = {i.name for i in proto.graph.initializer}
    compared = [
        n.input[1]
        for n in proto.graph.node
        if n.op_type == "GreaterOrEqual" and n.input[1] in names
    ]
    review = [n for n in compared if n.startswith("review_")]
    ng = [n for n in compared if n.startswith("ng_")]
    if len(review) != 1 or len(ng) != 1:
        raise HeadError("the model's graph has no single REVIEW and NG threshold")
    return review[0], ng[0]


def _insert_head(proto: onnx.ModelProto, head: Head) -> None:
    """A model trained on good photos only decides on its anomaly score: the head goes
    between the descriptor and what read the score (its output, the thresholds, the
    quarantine test), as `graph.Head.build` places it at training."""
    # Copies: the graph's node list is rebuilt below.
    nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in proto.graph.node]
    exposed = {n.output[0]: n.input[0] for n in nodes if n.op_type == "Identity"}
    if "score" not in exposed or "descriptor" not in exposed:
        raise HeadError("the model's graph exposes no score and descriptor to place a head on")
    score, descriptor = exposed["score"], exposed["descriptor"]
    review, ng = _threshold_names(proto)
    proto.graph.initializer.extend(
        [
            numpy_helper.from_array(head.weights[:, None].astype(np.float32), "head_w_learnt"),
            numpy_helper.from_array(np.asarray([head.bias], np.float32), "head_b_learnt"),
            numpy_helper.from_array(np.asarray([1], np.int64), "head_shape_learnt"),
        ]
    )
    added = [
        helper.make_node("MatMul", [descriptor, "head_w_learnt"], ["head_logit_learnt"]),
        helper.make_node("Add", ["head_logit_learnt", "head_b_learnt"], ["head_sum_learnt"]),
        helper.make_node("Sigmoid", ["head_sum_learnt"], ["head_p_learnt"]),
        helper.make_node("Reshape", ["head_p_learnt", "head_shape_learnt"], ["probability_learnt"]),
    ]
    readers = 0
    for node in nodes:
        reads_score = (
            (node.op_type == "Identity" and list(node.output) == ["score"])
            or (node.op_type == "GreaterOrEqual" and node.input[1] in (review, ng))
            or node.op_type == "IsNaN"
        )
        if reads_score and node.input[0] == score:
            node.input[0] = "probability_learnt"
            readers += 1
    if readers != 4:
        raise HeadError("the model's graph does not read its score as castline builds it")
    made = next(i for i, n in enumerate(nodes) if descriptor in n.output)
    del proto.graph.node[:]
    proto.graph.node.extend([*nodes[: made + 1], *added, *nodes[made + 1 :]])
