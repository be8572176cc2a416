"""Fault injection and the camera: broken messages really are broken; photographs come
from the holdout split only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from castline.datasets import images_in_split
from castline.messaging.schema import InvalidMessage, ShotMessage, decode
from castline.messaging.topics import Kind, topic
from castline.sim.camera import Camera
from castline.sim.faults import MALFORMED_KINDS, Fault, break_payload, parse_faults, strike
from castline.sim.rules import Truth

SHOT = ShotMessage(
    plant="p1",
    machine="m1",
    shot_number=7,
    die="8412-1",
    ts=datetime(2026, 1, 1, tzinfo=UTC),
    params={"melt_temp_c": 700.0},
)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_kind_of_malformed_shot_is_rejected_by_the_schema(kind: str) -> None:
    name = topic("p1", "m1", Kind.SHOT)
    decode(name, SHOT.to_json())  # the original is valid
    with pytest.raises(InvalidMessage):
        decode(name, break_payload(SHOT.to_json(), kind))


def test_faults_strike_at_their_rate_and_unknown_faults_are_named() -> None:
    rng = np.random.default_rng(0)
    faults = parse_faults(["late", "duplicate"])
    hits = [strike(faults, 0.2, rng) for _ in range(5000)]
    late = sum(Fault.LATE in h for h in hits) / 5000
    assert 0.17 < late < 0.23
    assert not any(strike(faults, 0.0, rng) for _ in range(100))
    with pytest.raises(ValueError, match="camera_stop"):
        parse_faults(["lightning"])


def test_synthetic_camera_shows_the_defect_the_rules_chose() -> None:
    camera = Camera(None, size=96)
    assert not camera.real
    rng = np.random.default_rng(0)
    good = camera.photo(Truth(False), rng)
    bad = camera.photo(Truth(True, "flash", "worn die"), rng)
    assert good[:2] == bad[:2] == b"\xff\xd8" and good != bad
    assert set(camera._rendered) == {None, "flash"}


def test_real_camera_uses_only_holdout_photographs(casting_data: Path) -> None:
    camera = Camera(casting_data.parents[1])
    assert camera.real
    rng = np.random.default_rng(0)
    holdout_ok = {p.read_bytes() for p in images_in_split(casting_data / "ok_front", "holdout")}
    holdout_def = {p.read_bytes() for p in images_in_split(casting_data / "def_front", "holdout")}
    for _ in range(50):
        assert camera.photo(Truth(False), rng) in holdout_ok
        assert camera.photo(Truth(True, None, "KAMP passorfail"), rng) in holdout_def
    every_ok = len(list((casting_data / "ok_front").iterdir()))
    assert 0.1 * every_ok < len(camera.good) < 0.3 * every_ok
