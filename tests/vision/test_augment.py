"""Copies of good photos (augment.py): turned only where the part looks like itself."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from castline.vision.align import thumbnail
from castline.vision.augment import (
    AUTO_VIEWS,
    TURN_STEP,
    Placement,
    copies,
    copies_for,
    similarity,
    turns_of,
)

from .conftest import placed
from .synthetic import part


def rings(count: int) -> list[np.ndarray]:
    """Thumbnails of the round test part as a cell places it (any angle, a little off)."""
    return [thumbnail(part(seed, **placed(seed))) for seed in range(count)]  # type: ignore[arg-type]


def bars(count: int) -> list[np.ndarray]:
    """A ribbed bar across a 3:1 photo, lit from the left: it has no turn but a full one,
    and even turned by 180 degrees its light comes from the wrong side."""
    thumbs = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:160, 0:480].astype(np.float64)
        bar = (np.abs(yy - 80 - rng.normal(0, 1.5)) < 45) & (xx > 20) & (xx < 440)
        ribs = (np.abs(((xx - 20) % 60) - 30) < 4) & bar
        grey = np.where(bar, 150.0 - 0.08 * xx, 90.0) - 35 * ribs
        grey += ndimage.gaussian_filter(rng.normal(0, 1, grey.shape), 2.0) * 5
        photo = np.clip(grey, 0, 255).astype(np.uint8)
        thumbs.append(thumbnail(np.repeat(photo[:, :, None], 3, axis=2), (160, 480)))
    return thumbs


def plates(count: int) -> list[np.ndarray]:
    """A plate with two holes, the same turned by 180 degrees but for its light, which
    falls from the left; cameras of four sizes."""
    thumbs = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        h, w = [(240, 320), (300, 400), (270, 360), (256, 384)][seed % 4]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        cy, cx = h / 2 + rng.normal(0, 2), w / 2 + rng.normal(0, 2)
        plate = (np.abs(yy - cy) < 0.32 * h) & (np.abs(xx - cx) < 0.36 * w)
        for dx in (-0.18 * w, 0.18 * w):
            plate &= np.hypot(yy - cy, xx - cx - dx) > 0.12 * h
        grey = np.where(plate, 165 + 0.05 * (xx - cx), 45)
        grey += ndimage.gaussian_filter(rng.normal(0, 1, grey.shape), 1.5) * 4.5
        photo = np.clip(grey, 0, 255).astype(np.uint8)
        thumbs.append(thumbnail(np.repeat(photo[:, :, None], 3, axis=2), (208, 272)))
    return thumbs


def surfaces(count: int) -> list[np.ndarray]:
    """A sand-cast surface filling the photo: no part to turn."""
    thumbs = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        grey = 128 + ndimage.gaussian_filter(rng.normal(0, 1, (128, 128)), 1.0) * 9
        photo = np.clip(grey, 0, 255).astype(np.uint8)
        thumbs.append(thumbnail(np.repeat(photo[:, :, None], 3, axis=2)))
    return thumbs


def test_a_round_part_looks_like_itself_at_every_turn() -> None:
    assert turns_of(rings(40)) == tuple(np.arange(0.0, 360.0, TURN_STEP))


def test_a_bar_and_a_surface_have_no_turn() -> None:
    assert turns_of(bars(30)) == (0.0,)
    assert turns_of(surfaces(30)) == (0.0,)


def test_a_turn_must_look_more_alike_than_most_photos_not_merely_some() -> None:
    """The plate turned by 180 degrees is as like its mean as some of its photos are
    (its light alone differs); copies so turned hurt it (docs/vision.md): no turn."""
    thumbs = plates(100)
    mean = np.mean(thumbs, axis=0)
    alike = [similarity(t, mean) for t in thumbs]
    turned = similarity(ndimage.rotate(mean, 180, reshape=False, mode="reflect"), mean)
    assert np.percentile(alike, 10) < turned
    assert turns_of(thumbs) == (0.0,)
    # The manifest keeps what the choice was made on.
    measured = copies_for(thumbs, None, Placement()).as_dict()["likeness"]
    assert isinstance(measured, dict)
    assert measured["turned"]["180"] == pytest.approx(turned, abs=1e-4)
    assert measured["photos_9_in_10"] > measured["turned"]["180"]


def test_few_photos_of_a_round_part_get_copies_up_to_the_views_wanted() -> None:
    given = rings(40)
    auto = copies_for(given, None, Placement())
    assert auto.per_photo == AUTO_VIEWS // 40 - 1  # 40 photos and their copies: 800 views
    assert len(auto.placement.turns) == 360 / TURN_STEP
    assert auto.as_dict()["turns_deg"] == "any"
    # Enough photos of their own: no copies, however round the part.
    assert copies_for(given * 30, None, Placement()).per_photo == 0


def test_a_part_without_turns_gets_no_copies_unless_asked() -> None:
    assert copies_for(bars(30), None, Placement()).per_photo == 0
    asked = copies_for(bars(30), 3, Placement())
    assert (asked.per_photo, asked.placement.turns, asked.how) == (3, (0.0,), "asked")


def test_copies_turn_by_the_parts_turns() -> None:
    """A copy of a photo turned by 90 degrees (and no more) is the photo turned by 90."""
    photo = part(0)
    rng = np.random.default_rng(0)
    placement = Placement(max_rotation=0.0, max_shift=0.0, turns=(90.0,))
    original, copy = copies(photo, 1, placement, rng)
    assert original is photo
    expected = np.rot90(photo).astype(float)
    inner = (slice(8, -8), slice(8, -8))  # the turn's resampling touches the border
    assert np.abs(copy[inner].astype(float) - expected[inner]).mean() < 1.0
