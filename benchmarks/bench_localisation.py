"""Where are the defects? Pixel AUROC and PRO on photos with pasted defects and masks.

Part types: the real impeller photos (good photos of the shared set) and three synthetic
ones drawn here: a flat plate (colour camera, photos of varying size and aspect ratio),
an elongated bar (3:1 photos) and a sand-cast textured surface filling the frame.
Defects: scratches, dents, pores (blobs), missing material and cracks, at three sizes;
half of them touch the part's border or the photo's edge. The model learns from good
photos only (`--n-train` per type), as a user trains it; defects never reach training.

    taskset -c 1 .venv/bin/python benchmarks/bench_localisation.py [--n-train 200]

Pixel AUROC: every pixel of the good and defective test photos (every 2nd each way).
PRO: mean overlap of each defect region with the map above a threshold, averaged over
thresholds up to a 30 % false-positive rate of normal pixels, normalised to 0-1.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from bench_vision import add_settings, with_settings  # the benchmarks' folder is on the path
from castline.datasets import casting_root, images, split_of
from castline.vision.images import read_image
from castline.vision.metrics import auroc
from castline.vision.train import DEFAULT_BACKBONE, TrainConfig, train_model

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SIZES = {"small": 0.025, "medium": 0.05, "large": 0.1}  # defect extent, share of the side
KINDS = ("scratch", "dent", "pore", "missing", "crack")
STEP = 2  # pixel subsampling for the metrics


@dataclass
class Sample:
    image: np.ndarray
    part: np.ndarray  # bool: where the part is (for placing border defects)


def _texture(rng: np.random.Generator, h: int, w: int, scale: float, amount: float) -> np.ndarray:
    return ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), scale) * amount * scale


def flat_plate(rng: np.random.Generator) -> Sample:
    """A plate with two holes on a dark belt; colour camera, size and aspect ratio vary."""
    h, w = [(240, 320), (300, 400), (270, 360), (256, 384)][int(rng.integers(4))]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx = h / 2 + rng.normal(0, 2), w / 2 + rng.normal(0, 2)
    ph, pw = 0.32 * h, 0.36 * w
    part = (np.abs(yy - cy) < ph) & (np.abs(xx - cx) < pw)
    for dx in (-0.5, 0.5):
        part &= np.hypot(yy - cy, xx - (cx + dx * pw)) > 0.12 * h
    grey = np.where(part, 165 + 0.05 * (xx - cx), 45) + _texture(rng, h, w, 1.5, 3)
    tint = np.array([0.95, 1.0, 1.08])  # a bluish aluminium on a neutral belt
    image = np.clip(grey[:, :, None] * tint, 0, 255)
    return Sample(image.astype(np.uint8), part)


def elongated_bar(rng: np.random.Generator) -> Sample:
    """A long bar with ribs across a 3:1 photo."""
    h, w = 160, 480
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy = h / 2 + rng.normal(0, 1.5)
    part = (np.abs(yy - cy) < 0.28 * h) & (xx > 0.04 * w) & (xx < 0.96 * w)
    ribs = (np.abs(((xx - 0.04 * w) % 60) - 30) < 4) & part
    grey = np.where(part, 150.0, 90.0) - 35 * ribs + _texture(rng, h, w, 2.0, 2.5)
    image = np.clip(grey, 0, 255).astype(np.uint8)
    return Sample(np.repeat(image[:, :, None], 3, axis=2), part)


def textured(rng: np.random.Generator) -> Sample:
    """Sand-cast surface filling the frame: the photo's edge is the only border."""
    h = w = 256
    grey = 128 + _texture(rng, h, w, 1.0, 9) + _texture(rng, h, w, 4.0, 3)
    image = np.clip(grey, 0, 255).astype(np.uint8)
    return Sample(np.repeat(image[:, :, None], 3, axis=2), np.ones((h, w), bool))


def _place(rng: np.random.Generator, sample: Sample, border: bool) -> tuple[float, float]:
    h, w = sample.part.shape
    if border:
        outline = sample.part & ~ndimage.binary_erosion(sample.part, iterations=2)
        edge = np.zeros_like(sample.part)
        edge[:3, :], edge[-3:, :], edge[:, :3], edge[:, -3:] = True, True, True, True
        candidates = np.argwhere(outline | (edge & sample.part))
    else:
        inner = ndimage.binary_erosion(sample.part, iterations=int(0.12 * min(h, w)))
        candidates = np.argwhere(inner if inner.any() else sample.part)
    y, x = candidates[int(rng.integers(len(candidates)))]
    return float(y), float(x)


def add_defect(
    rng: np.random.Generator, sample: Sample, kind: str, size: str, border: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The photo with one defect pasted in, and its mask."""
    image = sample.image.astype(np.float64)
    h, w = sample.part.shape
    extent = SIZES[size] * max(h, w)
    cy, cx = _place(rng, sample, border)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind in ("scratch", "crack"):
        steps = max(4, int(extent))
        angle = rng.uniform(0, np.pi)
        turn = 0.35 if kind == "crack" else 0.02
        ys, xs = [cy], [cx]
        for _ in range(steps):
            angle += rng.normal(0, turn)
            ys.append(ys[-1] + np.sin(angle))
            xs.append(xs[-1] + np.cos(angle))
        line = np.zeros((h, w), bool)
        iy, ix = (
            np.clip(np.round(ys), 0, h - 1).astype(int),
            np.clip(np.round(xs), 0, w - 1).astype(int),
        )
        line[iy, ix] = True
        mask = ndimage.binary_dilation(line, iterations=1 if kind == "crack" else 2)
        change = -70.0 if kind == "crack" else 55.0 * rng.choice([-1, 1])
        alpha = ndimage.gaussian_filter(mask.astype(float), 0.7)
        image += (alpha * change)[:, :, None]
    elif kind == "dent":
        a, b = extent * rng.uniform(0.6, 1.0), extent * rng.uniform(0.4, 0.8)
        r = np.hypot((yy - cy) / a, (xx - cx) / b)
        shade = np.exp(-2 * r**2) * 60 * rng.choice([-1, 1])
        mask = r < 0.8
        image += (shade * (xx - cx) / max(b, 1) * sample.part)[:, :, None]
    elif kind == "pore":
        wobble = 1 + 0.25 * _texture(rng, h, w, 3, 1)
        mask = np.hypot((yy - cy), (xx - cx)) < 0.5 * extent * wobble
        alpha = ndimage.gaussian_filter(mask.astype(float), 0.8)
        image = image * (1 - 0.75 * alpha[:, :, None])
    else:  # missing material: the part's look replaced by what lies beyond it
        mask = (np.hypot(yy - cy, xx - cx) < 0.7 * extent) & sample.part
        outside = image[~sample.part].mean(axis=0) if (~sample.part).any() else np.full(3, 30.0)
        image[mask] = outside
    mask &= sample.part
    return np.clip(image, 0, 255).astype(np.uint8), mask


def pro_score(maps: list[np.ndarray], masks: list[np.ndarray], max_fpr: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to `max_fpr`, normalised to 0-1."""
    normal = np.concatenate([m[~k] for m, k in zip(maps, masks, strict=True)])
    thresholds = np.quantile(normal, np.linspace(1 - max_fpr, 1.0, 31))
    regions = []
    for heat, mask in zip(maps, masks, strict=True):
        labels, count = ndimage.label(mask)
        regions += [heat[labels == i] for i in range(1, count + 1)]
    if not regions:
        return float("nan")
    fprs, pros = [], []
    for t in thresholds:
        fprs.append(float(np.mean(normal >= t)))
        pros.append(float(np.mean([np.mean(r >= t) for r in regions])))
    order = np.argsort(fprs)
    area = np.trapezoid(np.asarray(pros)[order], np.asarray(fprs)[order])
    return float(area / max_fpr)


@dataclass
class PartType:
    name: str
    good: Callable[[int], Sample]


IMPELLER_RADIUS = 0.40  # of the photo's side: the disc every impeller photo's casting covers


def real_impellers(paths: list[Path]) -> Callable[[int], Sample]:
    """The real photos; the part is the impeller's disc (centred, its rim at 0.40-0.45 of
    the side), not the scratched table in the corners: a scratch there is no defect."""

    def make(i: int) -> Sample:
        image = read_image(paths[i % len(paths)])
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        disc = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) <= IMPELLER_RADIUS * min(h, w)
        return Sample(image, disc)

    return make


def synthetic(draw: Callable[[np.random.Generator], Sample]) -> Callable[[int], Sample]:
    return lambda i: draw(np.random.default_rng(i))


def run_type(part: PartType, args: argparse.Namespace, tmp: Path, offset: int) -> None:
    folder = tmp / part.name
    folder.mkdir()
    paths = []
    for i in range(args.n_train):
        paths.append(folder / f"good_{i:04d}.png")
        Image.fromarray(part.good(i).image).save(paths[-1])
    started = time.perf_counter()
    config = TrainConfig(part_mask=not args.no_part_mask, register=args.register)
    config = with_settings(config, args)
    model = train_model(
        paths, tmp / f"{part.name}-model", backbone=args.backbone, progress=False, config=config
    )
    seconds = time.perf_counter() - started
    rng = np.random.default_rng(7)
    maps, truths, groups, scores_ok, scores_ng = [], [], [], [], []
    for i in range(args.n_test):
        result = model.inspect(part.good(offset + i).image)
        scores_ok.append(result.score)
        maps.append(result.heatmap[::STEP, ::STEP])
        truths.append(np.zeros(maps[-1].shape, bool))
        groups.append(("good", "", ""))
    for i in range(args.n_defects):
        kind, size = KINDS[i % len(KINDS)], list(SIZES)[(i // len(KINDS)) % len(SIZES)]
        border = bool(i % 2)
        image, mask = add_defect(rng, part.good(offset + args.n_test + i), kind, size, border)
        if not mask.any():
            continue
        result = model.inspect(image)
        scores_ng.append(result.score)
        maps.append(result.heatmap[::STEP, ::STEP])
        truths.append(mask[::STEP, ::STEP])
        groups.append((kind, size, "border" if border else "inside"))
    normal = np.concatenate([m[~t] for m, t in zip(maps, truths, strict=True)])

    def pixel_auroc(keep: Callable[[tuple[str, str, str]], bool]) -> float:
        chosen = [m[t] for m, t, g in zip(maps, truths, groups, strict=True) if keep(g)]
        return auroc(normal, np.concatenate(chosen)) if chosen else float("nan")

    def pro(keep: Callable[[tuple[str, str, str]], bool]) -> float:
        chosen = [
            (m, t)
            for m, t, g in zip(maps, truths, groups, strict=True)
            if keep(g) or g[0] == "good"
        ]
        return pro_score([m for m, _ in chosen], [t for _, t in chosen])

    Group = tuple[str, str, str]

    def is_kind(kind: str) -> Callable[[Group], bool]:
        return lambda g: g[0] == kind

    def is_size(size: str) -> Callable[[Group], bool]:
        return lambda g: g[1] == size

    def is_place(place: str) -> Callable[[Group], bool]:
        return lambda g: g[2] == place

    def defective(g: Group) -> bool:
        return g[0] != "good"

    image_auroc = auroc(np.asarray(scores_ok), np.asarray(scores_ng))
    line = (
        f"[{part.name}] image AUROC {image_auroc:.4f}; pixel AUROC all "
        f"{pixel_auroc(defective):.4f}, border {pixel_auroc(is_place('border')):.4f}, "
        f"inside {pixel_auroc(is_place('inside')):.4f}; "
    )
    line += ", ".join(f"{s} {pixel_auroc(is_size(s)):.4f}" for s in SIZES)
    line += f"; PRO all {pro(defective):.3f}, border {pro(is_place('border')):.3f}, "
    line += f"inside {pro(is_place('inside')):.3f}; "
    line += ", ".join(f"{k} {pixel_auroc(is_kind(k)):.3f}" for k in KINDS)
    line += f"; memory {model.manifest['training']['alignment']['memory']}, "
    line += f"part share {model.manifest['training']['part']['share_of_photo']}, "
    line += f"registration {model.manifest['training']['registration']}, "
    line += f"copies {model.manifest['training']['copies']['per_photo']} a photo, "
    line += f"training {seconds:.1f} s"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=["lite0", "lite1"])
    parser.add_argument("--n-test", type=int, default=60, help="good test photos per type")
    parser.add_argument("--n-defects", type=int, default=150, help="defect photos per type")
    parser.add_argument("--no-part-mask", action="store_true", help="the whole photo counts")
    parser.add_argument("--register", action="store_true", help="photos moved onto a template")
    add_settings(parser)
    parser.add_argument("--types", nargs="+", default=["impeller", "flat", "elongated", "textured"])
    args = parser.parse_args()
    types = {
        "flat": PartType("flat", synthetic(flat_plate)),
        "elongated": PartType("elongated", synthetic(elongated_bar)),
        "textured": PartType("textured", synthetic(textured)),
    }
    root = casting_root(Path(os.environ.get("CASTLINE_DATA", DATA)))
    if root is not None:
        good = images(root / "ok_front")
        train = [p for p in good if split_of(p.read_bytes()) == "train"][: args.n_train]
        test = [p for p in good if split_of(p.read_bytes()) == "val"]
        photos = train + test
        types["impeller"] = PartType("impeller", real_impellers(photos))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.types:
            if name not in types:
                print(f"[{name}] skipped: no photos")
                continue
            run_type(
                types[name], args, Path(tmp), offset=args.n_train if name == "impeller" else 10_000
            )


if __name__ == "__main__":
    main()
