"""Two methods on the same test photos: is one ahead, or are they level?

A few hundred test photos decide an image AUROC to about a hundredth and an escape rate
to one photo, so a difference in the third decimal can be chance. The paired bootstrap
draws the test photos again with replacement, the same draw for both methods, and
recomputes each figure's difference: its 95 % interval says ahead (above zero for a
figure where higher is better), behind, or level (it holds zero).

Pixel AUROC is drawn by photo, not by pixel (a defect's pixels are not independent):
each method's pixels are counted once into ordered pairs between photos, and a draw
only weighs the photos by how often it drew them, so it costs a product of a matrix
the size of the test set rather than a sort of millions of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

from castline.vision.metrics import auroc, escape_at_frr

HIGHER_IS_BETTER = {"auroc": True, "escape": False, "pixel": True}


class PixelPairs:
    """One method's heat-map pixels of the test photos as counts of ordered pairs: for
    each photo with defect pixels and each photo with normal ones, how many (defect,
    normal) pixel pairs the map orders right (ties count half, as in `metrics.auroc`).
    The pixel AUROC of any weighting of the photos is then two small products."""

    def __init__(self, maps: list[np.ndarray], masks: list[np.ndarray]) -> None:
        self.defect = np.array([int(k.sum()) for k in masks], dtype=np.float64)
        self.normal = np.array([int((~k).sum()) for k in masks], dtype=np.float64)
        owner = np.repeat(np.arange(len(maps)), self.defect.astype(int))
        defects = np.concatenate([m[k] for m, k in zip(maps, masks, strict=True)])
        self.pairs = np.zeros((len(maps), len(maps)))  # [defect photo, normal photo]
        for j, (heat, mask) in enumerate(zip(maps, masks, strict=True)):
            normal = np.sort(heat[~mask])
            below = np.searchsorted(normal, defects, "left")
            tied = np.searchsorted(normal, defects, "right") - below
            self.pairs[:, j] = np.bincount(owner, below + tied / 2, len(maps))

    def auroc(self, weight_of_photo: np.ndarray) -> float:
        w = weight_of_photo
        return float(w @ self.pairs @ w / ((w @ self.defect) * (w @ self.normal)))


@dataclass(frozen=True)
class Answers:
    """What one method said about the test photos."""

    scores: np.ndarray  # [photos] image scores
    pixels: PixelPairs | None  # heat maps of the photos that count for pixel AUROC


@dataclass(frozen=True)
class TestSet:
    """Which test photos are good, defective (real or pasted) and counted for pixels."""

    good: np.ndarray  # [photos] bool
    real: np.ndarray  # [photos] bool: defective, no mask (the plant's own defects)
    pasted: np.ndarray  # [photos] bool: defective with a mask
    pixel: np.ndarray  # [photos] bool: its pixels count for pixel AUROC

    def figures(self, answers: Answers, drawn: np.ndarray) -> dict[str, float]:
        """Each figure on the photos `drawn` (indices, repeats allowed)."""
        count = np.bincount(drawn, minlength=len(self.good))
        scores = answers.scores
        out = {}
        for name, defect in (("real", self.real), ("pasted", self.pasted)):
            if defect.any():
                good, bad = np.repeat(scores, count * self.good), np.repeat(scores, count * defect)
                out[f"auroc_{name}"] = auroc(good, bad)
                out[f"escape_{name}"] = escape_at_frr(good, bad)
        if answers.pixels is not None:
            out["pixel_auroc"] = answers.pixels.auroc(count[self.pixel].astype(np.float64))
        return out


def better(key: str) -> float:
    """+1 where a higher figure is better, -1 where lower is (escape)."""
    return 1.0 if HIGHER_IS_BETTER[key.split("_")[0]] else -1.0


def paired_intervals(
    tests: TestSet, ours: Answers, theirs: Answers, draws: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """Per figure: (our figure - theirs, and the 95 % interval of that difference),
    signed so that a positive difference is ours being better. Good, real-defect and
    pasted-defect photos are drawn each among their own kind: every draw has all kinds
    in their numbers, as the test set has."""
    kinds = [np.flatnonzero(k) for k in (tests.good, tests.real, tests.pasted) if k.any()]
    everyone = np.concatenate(kinds)
    keys = list(tests.figures(ours, everyone))

    def difference(*drawn: np.ndarray) -> np.ndarray:
        photos = np.concatenate(drawn)
        a, b = tests.figures(ours, photos), tests.figures(theirs, photos)
        return np.array([better(k) * (a[k] - b[k]) for k in keys]) + 0.0  # no "-0.0"

    point = difference(everyone)
    drawn = bootstrap(
        kinds, difference, vectorized=False, n_resamples=draws, method="percentile",
        random_state=np.random.default_rng(seed),
    )  # fmt: skip
    low, high = drawn.confidence_interval
    return {k: (float(point[i]), float(low[i]), float(high[i])) for i, k in enumerate(keys)}


def verdict(low: float, high: float) -> str:
    """Ahead, behind or level, from the interval of a difference signed as better-is-positive."""
    if low > 0:
        return "ahead"
    if high < 0:
        return "behind"
    return "level"
