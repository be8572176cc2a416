"""Weight files are read safely and the network is built as the weights expect."""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from castline.vision.backbone import (
    INPUT_MEAN,
    INPUT_STD,
    EfficientNetLite,
    blocks_of,
    same_pads,
    weight_file,
)
from castline.vision.graph_builder import FLOAT, GraphBuilder
from castline.vision.weights import UnsafeWeights, load_state_dict

from .make_backbone_reference import CASES, FIXTURE, STRIDES, Case, normalised, sha256

# Each map may differ from torch's by this share of its largest |value|. Measured: 2e-6
# (float32 sums in another order, BatchNorm folded); padding on the wrong side, BatchNorm
# epsilon 1e-5, no residual or no ReLU6 cap: 0.2 to 2; one weight moved by 1 % of its
# tensor's largest |value|: 3e-4 to 7e-3, unless its channel is clipped to 0 on this input.
REL_TOL = 1e-4


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


def test_packaged_weights_load_as_arrays() -> None:
    state = load_state_dict(weight_file("lite0"))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_conv_stem.weight"].dtype == np.float32
    assert all(isinstance(v, np.ndarray) for v in state.values())


def test_a_malicious_legacy_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(_Boom(), protocol=2))
    with pytest.raises(UnsafeWeights, match="refusing"):
        load_state_dict(path)


def test_a_malicious_zip_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": _Boom()}, protocol=2))
    with pytest.raises(UnsafeWeights, match="refusing"):
        load_state_dict(path)


def test_a_zip_state_dict_is_read_without_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-made file in torch's zip layout: the pickle names storages by key."""
    # Stand-in modules so the pickler can name torch's globals; removed after the test.
    fake_torch, fake_utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("never called: only pickled by name")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__ = "FloatStorage"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    fake_torch.FloatStorage = FloatStorage  # type: ignore[attr-defined]
    fake_utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "torch._utils", fake_utils)
    storage = object()

    class Tensor:
        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            # storage, offset, size, stride: a transposed 3x2 view of 6 floats
            return (_rebuild_tensor_v2, (storage, 0, (3, 2), (1, 3), False, None))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            return ("storage", FloatStorage, "0", "cpu", 6) if obj is storage else None

    payload = io.BytesIO()
    Pickler(payload, protocol=2).dump({"layer.weight": Tensor()})
    data = np.arange(6, dtype=np.float32)
    path = tmp_path / "tiny.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tiny/data.pkl", payload.getvalue())
        archive.writestr("tiny/data/0", data.tobytes())
    state = load_state_dict(path)
    np.testing.assert_array_equal(state["layer.weight"], data.reshape(2, 3).T)


def test_block_structure_and_same_padding() -> None:
    blocks = blocks_of(load_state_dict(weight_file("lite0")))
    assert len(blocks) == 16
    assert [b.stride for b in blocks if b.stride == 2] == [2, 2, 2, 2]
    assert not blocks[0].expand and all(b.expand for b in blocks[1:])
    assert same_pads(224, 3, 2) == (0, 1)  # TensorFlow pads the extra pixel after
    assert same_pads(225, 3, 2) == (1, 1)
    assert same_pads(28, 5, 1) == (2, 2)


def _taps(
    name: str, size: int, x: np.ndarray, strides: tuple[int, ...] = (8, 16)
) -> list[np.ndarray]:
    """castline's backbone as an ONNX graph, run on `x`: the feature maps at `strides`."""
    net = EfficientNetLite.load(name)
    g = GraphBuilder()
    taps = net.build(g, "x", (size, size), strides)
    outs = [g.rename(t, f"f{s}") for t, s in zip(taps, strides, strict=True)]
    graph = helper.make_graph(
        g.nodes,
        "taps",
        [helper.make_tensor_value_info("x", FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(o, FLOAT, None) for o in outs],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(session.run(None, {"x": x}))


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """Torch reference features saved by make_backbone_reference.py (no torch needed here)."""
    with np.load(FIXTURE, allow_pickle=False) as data:
        return dict(data)


def _input(reference: dict[str, np.ndarray], case: Case) -> np.ndarray:
    mean, std = (float(v) for v in reference["input_mean_std"])
    assert (mean, std) == (INPUT_MEAN, INPUT_STD), "castline's normalisation changed"
    return normalised(reference[f"{case.key}_image"], mean, std)


def _worst_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """Largest |difference| over all maps, each relative to its map's largest |value|."""
    errors = []
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        errors.append(float(np.abs(g - w).max() / np.abs(w).max()))
    return max(errors)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.key)
def test_features_match_the_saved_torch_reference(
    case: Case, reference: dict[str, np.ndarray]
) -> None:
    assert str(reference[f"{case.key}_weights_sha256"]) == sha256(weight_file(case.backbone)), (
        "the packaged weights differ from those the reference was made with: regenerate it"
    )
    assert tuple(int(s) for s in reference["strides"]) == STRIDES
    got = _taps(case.backbone, case.size, _input(reference, case), STRIDES)
    want = [reference[f"{case.key}_f{s}"] for s in STRIDES]
    assert _worst_error(got, want) < REL_TOL


def test_stride_taps_have_the_expected_shapes() -> None:
    x = np.zeros((1, 3, 96, 96), np.float32)
    f8, f16 = _taps("lite1", 96, x)
    assert f8.shape == (1, 40, 12, 12)
    assert f16.shape == (1, 112, 6, 6)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.key)
def test_features_match_torch_itself_when_torch_is_there(
    case: Case, reference: dict[str, np.ndarray]
) -> None:
    """With torch installed: the live torch model agrees with castline and with the fixture."""
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from .make_backbone_reference import reference_features

    x = _input(reference, case)
    live = reference_features(case.backbone, x)
    saved = [reference[f"{case.key}_f{s}"] for s in STRIDES]
    assert _worst_error(saved, live) < REL_TOL, "the fixture is stale: regenerate it"
    assert _worst_error(_taps(case.backbone, case.size, x, STRIDES), live) < REL_TOL
