from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from castline.store.blobs import BlobStore


def test_content_addressed_put_get(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    digest = blobs.put(b"casting photo")
    assert digest == hashlib.sha256(b"casting photo").hexdigest()
    assert blobs.put(b"casting photo") == digest
    assert blobs.get(digest) == b"casting photo"
    assert digest in blobs
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


def test_missing_and_malformed_digests(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    with pytest.raises(KeyError, match="not in"):
        blobs.get("0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        blobs.get("../../etc/passwd")
