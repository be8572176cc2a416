"""Read PyTorch `.pth` weight files with numpy alone, through a restricted unpickler.

A `.pth` file is pickled Python: loading it with the plain `pickle` module would run
whatever code it names. `SafeUnpickler` admits only the handful of globals a state_dict
needs (OrderedDict, the tensor rebuild function, storage types) and refuses everything
else, so a tampered weight file raises `UnsafeWeights` instead of running code.

Both layouts torch writes are read: the zip archive (torch >= 1.6) and the older
sequential file (magic number, pickles, then the raw storages one after another).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Storage class name -> numpy dtype of its elements.
STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class UnsafeWeights(pickle.UnpicklingError):
    """The weight file names something a state_dict never needs: refused, not run."""


@dataclass(frozen=True)
class _StorageRef:
    """A flat storage named by key in the file; its bytes are read after the pickle."""

    key: str
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self, storages: dict[str, np.ndarray]) -> np.ndarray:
        """A tensor is a strided view into a flat storage; copy it out as a plain array."""
        flat = storages[self.storage.key]
        if not self.size:
            return np.array(flat[self.offset], dtype=flat.dtype)
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.size,
            strides=tuple(s * flat.itemsize for s in self.stride),
        )
        return np.array(view, copy=True)


class _StorageType:
    """Stands in for `torch.FloatStorage` & co.: only its dtype matters here."""

    def __init__(self, name: str) -> None:
        self.dtype = STORAGE_DTYPES[name]


def _rebuild_tensor(
    storage: _StorageRef, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _ordered_dict(*args: Any) -> OrderedDict[str, Any]:
    return OrderedDict(*args)


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals of a tensor state_dict."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return _ordered_dict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeWeights(
            f"weight file refers to {module}.{name}, which a state_dict never needs: "
            "refusing to load it (the file may be tampered with; use the packaged weights)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeWeights(f"unexpected persistent id {pid!r} in weight file")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise UnsafeWeights(f"storage of unknown type {storage_type!r} in weight file")
        return _StorageRef(key, storage_type.dtype)


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Arrays of a `.pth` state_dict by parameter name, read without torch."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    return _load_legacy(path.read_bytes())


def _tensors(obj: Any) -> dict[str, _TensorRef]:
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UnsafeWeights(f"weight file holds a {type(obj).__name__}, not a state_dict")
    return {str(k): v for k, v in obj.items() if isinstance(v, _TensorRef)}


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        pkl = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
        if pkl is None:
            raise UnsafeWeights(f"{path.name}: zip archive without data.pkl is no torch file")
        prefix = pkl[: -len("data.pkl")]
        tensors = _tensors(SafeUnpickler(io.BytesIO(archive.read(pkl))).load())
        storages = {
            ref.storage.key: np.frombuffer(
                archive.read(f"{prefix}data/{ref.storage.key}"), dtype=ref.storage.dtype
            )
            for ref in tensors.values()
        }
    return {name: ref.materialise(storages) for name, ref in tensors.items()}


def _load_legacy(data: bytes) -> dict[str, np.ndarray]:
    stream = io.BytesIO(data)
    if SafeUnpickler(stream).load() != _LEGACY_MAGIC:
        raise UnsafeWeights("not a torch weight file (neither zip nor legacy magic number)")
    SafeUnpickler(stream).load()  # protocol version
    SafeUnpickler(stream).load()  # system info
    tensors = _tensors(SafeUnpickler(stream).load())
    dtypes = {ref.storage.key: ref.storage.dtype for ref in tensors.values()}
    storages: dict[str, np.ndarray] = {}
    for key in SafeUnpickler(stream).load():  # storage keys, in the order their bytes follow
        dtype = dtypes.get(str(key), np.dtype("u1"))
        count = int.from_bytes(stream.read(8), "little")
        storages[str(key)] = np.frombuffer(stream.read(count * dtype.itemsize), dtype=dtype)
    return {name: ref.materialise(storages) for name, ref in tensors.items()}
