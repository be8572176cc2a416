"""A trained inspection model: one ONNX session that turns a photo into a verdict.

The artifact is a folder with `manifest.json` and `model.onnx`; the ONNX file also
carries the manifest in its metadata, so the file alone loads too. Arrays live in the
ONNX initializers: no pickle anywhere. `inspect` is safe to call from several threads
(ONNX Runtime sessions are).

`Inspection.heatmap` is float32 and image-sized (same height and width as the photo
given to `inspect`), in anomaly-score units (distance to the nearest normal patch),
zero in the edge band that does not count (`TrainConfig.margin`);
`regions` are the connected areas at or above the manifest's region threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from castline.domain.verdict import Region, Verdict
from castline.vision.graph import VERDICT_CODES
from castline.vision.images import as_rgb, decode_image
from castline.vision.patches import GRID_STRIDE, HW
from castline.vision.regions import find_regions

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
ONNX_FILE = "model.onnx"
METADATA_KEY = "castline.manifest"
REGION_PEAK_SHARE = 0.9  # hottest area shown for held parts: within 10 % of the peak


class ModelError(ValueError):
    """A model artifact that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Inspection:
    score: float
    verdict: Verdict
    heatmap: np.ndarray = field(repr=False)
    regions: list[Region]
    anomaly: float


def input_size(manifest: dict[str, Any]) -> HW:
    """The model input's (height, width) in pixels, as the manifest gives it."""
    height, width = manifest["input_size"]
    return int(height), int(width)


def session(model: bytes, threads: int | None = None, arena: bool = True) -> ort.InferenceSession:
    """A CPU session; `threads` bounds intra-op threads (1 for a one-core worker).
    Without the `arena`, buffers go back at once instead of staying with the session:
    training runs several sessions side by side and would keep each one's peak."""
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = arena
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class InspectionModel:
    """Loaded model: manifest plus the decision graph."""

    def __init__(self, graph: bytes, manifest: dict[str, Any], *, threads: int | None = None):
        self.graph = graph
        self.manifest = manifest
        self._session = session(graph, threads)
        self.region_threshold = float(manifest["thresholds"]["region"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def thresholds(self) -> tuple[float, float]:
        t = self.manifest["thresholds"]
        return float(t["review"]), float(t["ng"])

    # -- loading and saving -------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str, *, threads: int | None = None) -> InspectionModel:
        """Load a model folder (manifest.json + model.onnx) or a single model ONNX file."""
        path = Path(path)
        if path.is_dir():
            manifest_path = path / MANIFEST_FILE
            if not manifest_path.is_file():
                raise ModelError(
                    f"{path} has no {MANIFEST_FILE}: train one with `castline vision train`"
                )
            manifest = json.loads(manifest_path.read_text())
            graph = (path / manifest.get("onnx", ONNX_FILE)).read_bytes()
        elif path.is_file():
            graph = path.read_bytes()
            proto = onnx.load_from_string(graph)
            meta = {p.key: p.value for p in proto.metadata_props}
            if METADATA_KEY not in meta:
                raise ModelError(f"{path} is an ONNX file without a castline manifest")
            manifest = json.loads(meta[METADATA_KEY])
        else:
            raise ModelError(f"no model at {path}: train one with `castline vision train`")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelError(
                f"{path} has model format {manifest['format_version']}; this castline reads "
                f"up to {FORMAT_VERSION}: upgrade castline"
            )
        return cls(graph, manifest, threads=threads)

    def save(self, folder: Path | str) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ONNX_FILE).write_bytes(self.graph)
        (folder / MANIFEST_FILE).write_text(json.dumps(self.manifest, indent=2, sort_keys=True))
        return folder

    # -- inspecting ---------------------------------------------------------------------

    def run(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """All graph outputs for one photo (score, anomaly, verdict, heatmap, descriptor)."""
        names = [o.name for o in self._session.get_outputs()]
        values = self._session.run(names, {"image": as_rgb(image)})
        return dict(zip(names, values, strict=True))

    def inspect(self, image: np.ndarray) -> Inspection:
        """Verdict, score, heat map and defect regions of one uint8 RGB photo (any size)."""
        out = self.run(image)
        heatmap = out["heatmap"].astype(np.float32, copy=False)
        verdict = Verdict(VERDICT_CODES[int(out["verdict"][0])])
        threshold = self.region_threshold
        if verdict is not Verdict.OK and heatmap.size:
            # A held part always shows where to look, even when the supervised head
            # decided on a map whose peak stays under the region threshold.
            threshold = min(threshold, REGION_PEAK_SHARE * float(heatmap.max()))
        return Inspection(
            score=float(out["score"][0]),
            verdict=verdict,
            heatmap=heatmap,
            regions=find_regions(heatmap, threshold, min_area_px=self._patch_px(heatmap) / 4),
            anomaly=float(out["anomaly"][0]),
        )

    def _patch_px(self, heatmap: np.ndarray) -> float:
        """One patch of the model's grid in the photo's pixels: the heat map's resolution."""
        size = self.manifest.get("input_size", heatmap.shape)
        high, wide = (size, size) if isinstance(size, int) else size
        scale = max(heatmap.shape[0] / high, heatmap.shape[1] / wide)
        return float((GRID_STRIDE * scale) ** 2)

    def inspect_bytes(self, data: bytes) -> Inspection:
        return self.inspect(decode_image(data))
