"""Replay of the review loop on the real casting photographs: do false rejects and
escapes fall?

A model learns from the first N good photos of the "train" split (`train_model`, as
`castline vision train` would). The good photos of the "val" split, which training never
sees, then come down the line in their content-hash order (`--unseen-train`: first the
train split's good photos beyond the N, which training did not see either: a longer
stream). Of the first half, every photo the model holds (NG or REVIEW) is "reviewed" as
OK, a batch at a time, and each batch updates the model (`vision/update.py`: the photos
into the memory, thresholds kept), as the review loop does in the dashboard.

Then the defective "val" photos come down the line, also in content-hash order. Of their
first half, every photo the current model does not reject (passed as OK, or sent to
REVIEW) is "reviewed" as NG, a batch at a time, and each batch updates the model: the
confirmed defects teach the supervised head (`vision/head.py`: created once
`MIN_DEFECTS` are confirmed, then refitted; thresholds from its cross-fit over the
training folds). The second halves, which no update learnt from, are scored by the
trained model, after the good reviews and after the defect reviews: false-reject (NG)
and review rates of the good photos, escape (defects passed as OK) and held share of the
defective ones, with 95 % intervals. Prints one JSON line; pin it to one core
(`taskset -c 1`).

    .venv/bin/python benchmarks/bench_review_loop.py --n-train 100 --batch 20
    .venv/bin/python benchmarks/bench_review_loop.py --n-train 100 --batch 100 --unseen-train
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from castline.datasets import casting_root, images, split_of
from castline.domain.verdict import Verdict
from castline.vision.calibration import rate_interval
from castline.vision.images import read_image
from castline.vision.model import InspectionModel
from castline.vision.train import TrainConfig, train_model
from castline.vision.update import ReviewedPhoto, UpdateConfig, update_model

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def in_split(paths: list[Path], split: str) -> list[Path]:
    return [p for p in paths if split_of(p.read_bytes()) == split]


def verdicts(model: InspectionModel, photos: list[np.ndarray]) -> list[Verdict]:
    return [model.inspect(photo).verdict for photo in photos]


def rates(found: list[Verdict]) -> dict[str, object]:
    n = len(found)
    ng = sum(v is Verdict.NG for v in found)
    review = sum(v is Verdict.REVIEW for v in found)
    return {
        "n": n,
        "false_reject": ng / n,
        "false_reject_interval": rate_interval(ng, n),
        "review": review / n,
        "review_interval": rate_interval(review, n),
        "held": (ng + review) / n,
    }


def replay(
    trained: Path,
    folder: Path,
    first: list[np.ndarray],
    batch: int,
    config: UpdateConfig,
    decision: Verdict = Verdict.OK,
) -> tuple[Path, int, float]:
    """Review `first`, `batch` parts at a time, updating the model after each batch with
    any to learn: as OK the photos the model held (false rejects), as NG those it did
    not reject (escapes and defects sent to review). Returns the last model's folder,
    photos learnt and seconds spent updating."""
    learnt, spent = 0, 0.0
    source, model = trained, InspectionModel.load(trained, threads=1)
    for start in range(0, len(first), batch):
        chunk = first[start : start + batch]
        found = verdicts(model, chunk)
        if decision is Verdict.OK:
            picked = [p for p, v in zip(chunk, found, strict=True) if v is not Verdict.OK]
        else:
            picked = [p for p, v in zip(chunk, found, strict=True) if v is not Verdict.NG]
        if not picked:
            continue
        reviewed = [
            ReviewedPhoto(
                p,
                hashlib.sha256(p.tobytes()).hexdigest(),
                review=start + i,
                defect_type=None if decision is Verdict.OK else "defect",
            )
            for i, p in enumerate(picked)
        ]
        good, defects = (reviewed, []) if decision is Verdict.OK else ([], reviewed)
        began = time.perf_counter()
        out = folder / f"{decision.value.lower()}{start}"
        model = update_model(source, out, good, defects, config=config)
        source = out
        spent += time.perf_counter() - began
        learnt += len(picked)
    return source, learnt, spent


def defect_rates(found: list[Verdict]) -> dict[str, object]:
    n = len(found)
    passed = sum(v is Verdict.OK for v in found)
    held = sum(v is not Verdict.NG for v in found)
    return {
        "n": n,
        "escape": passed / n,
        "escape_interval": rate_interval(passed, n),
        "not_rejected": held / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20, help="parts between two updates")
    parser.add_argument("--growth", type=float, default=UpdateConfig().growth)
    parser.add_argument("--coverage", type=float, default=UpdateConfig().coverage)
    parser.add_argument(
        "--model", type=Path, help="the trained model's folder: used if there, else trained into it"
    )
    parser.add_argument(
        "--unseen-train",
        action="store_true",
        help="the stream also has the train split's good photos beyond --n-train",
    )
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    root = casting_root(args.data)
    if root is None:
        sys.exit(f"no casting photographs under {args.data}")
    train_split = in_split(images(root / "ok_front"), "train")
    train = train_split[: args.n_train]
    unseen = in_split(images(root / "ok_front"), "val")
    if args.unseen_train:  # the train split's photos the model was not given come first
        unseen = train_split[args.n_train :] + unseen
    val_ok = [read_image(p) for p in unseen]
    val_ng = [read_image(p) for p in in_split(images(root / "def_front"), "val")]
    half, bad_half = len(val_ok) // 2, len(val_ng) // 2
    first, second = val_ok[:half], val_ok[half:]
    bad_first, bad_second = val_ng[:bad_half], val_ng[bad_half:]
    folder = Path(tempfile.mkdtemp(prefix="review-loop-"))
    try:
        trained = args.model or folder / "trained"
        began = time.perf_counter()
        if not (trained / "manifest.json").is_file():
            train_model(train, trained, progress=False, config=TrainConfig(threads=1))
        trained_s = time.perf_counter() - began
        config = UpdateConfig(growth=args.growth, coverage=args.coverage)
        good_done, learnt, update_s = replay(trained, folder, first, args.batch, config)
        bad_done, confirmed, defect_s = replay(
            good_done, folder, bad_first, args.batch, config, Verdict.NG
        )
        stages = {"trained": trained, "after_good_reviews": good_done}
        stages["after_defect_reviews"] = bad_done
        models = {name: InspectionModel.load(path, threads=1) for name, path in stages.items()}
        good_rates = {name: rates(verdicts(m, second)) for name, m in models.items()}
        bad_rates = {name: defect_rates(verdicts(m, bad_second)) for name, m in models.items()}
        last = models["after_defect_reviews"].manifest
        memory = last.get("training", {}).get("memory_rows")
        head = last.get("learnt_from_reviews", {}).get("head")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(
        json.dumps(
            {
                "n_train": len(train),
                "batch": args.batch,
                "growth": args.growth,
                "coverage": args.coverage,
                "reviewed_as_ok": learnt,
                "reviewed_as_ng": confirmed,
                "stream": "train beyond n_train + val" if args.unseen_train else "val",
                "first_half": len(first),
                "defects_first_half": len(bad_first),
                "good_second_half": good_rates,
                "defective_second_half": bad_rates,
                "memory_rows_after": memory,
                "head_after": head,
                "train_s": round(trained_s, 1),
                "update_s_total": round(update_s, 2),
                "defect_update_s_total": round(defect_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
