"""Two methods on the same test photos: is one ahead, or are they level?

A few hundred test photos decide an image AUROC to about a hundredth and an escape rate
to one photo, so a difference in the third decimal can be chance. The paired bootstrap
draws the test photos again with replacement, the same draw for both methods, and
recomputes each figure's difference: its 95 % interval says ahead (above zero for a
figure where higher is better), behind, or level (it holds zero).

Pixel AUROC is drawn by photo, not by pixel (a defect's pixels are not independent):
each method's pixels are sorted once, and a draw only weighs them by how often their
photo was drawn, so a draw costs two bincounts rather than a sort of millions of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

from castline.vision.metrics import auroc, escape_at_frr

HIGHER_IS_BETTER = {"auroc": True, "escape": False, "pixel": True}


class PixelRanks:
    """One method's heat-map pixels of the test photos, sorted once; the pixel AUROC of
    any weighting of the photos, ties counted half as in `metrics.auroc`."""

    def __init__(self, maps: list[np.ndarray], masks: list[np.ndarray]) -> None:
        values = np.concatenate([m.ravel() for m in maps]).astype(np.float64)
        defect = np.concatenate([m.ravel() for m in masks]).astype(bool)
        photo = np.repeat(np.arange(len(maps)), [m.size for m in maps])
        order = values.argsort(kind="stable")
        _, self.level = np.unique(values[order], return_inverse=True)  # tie groups, ascending
        self.defect, self.photo = defect[order], photo[order]
        self.levels = int(self.level.max()) + 1

    def auroc(self, weight_of_photo: np.ndarray) -> float:
        weight = weight_of_photo[self.photo]
        normal = np.bincount(self.level, weight * ~self.defect, self.levels)
        defect = np.bincount(self.level, weight * self.defect, self.levels)
        below = np.cumsum(normal) - normal  # normal weight strictly below each level
        return float((defect * (below + normal / 2)).sum() / (defect.sum() * normal.sum()))


@dataclass(frozen=True)
class Answers:
    """What one method said about the test photos."""

    scores: np.ndarray  # [photos] image scores
    pixels: PixelRanks | None  # heat maps of the photos that count for pixel AUROC


@dataclass(frozen=True)
class TestSet:
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
        return np.array([better(k) * (a[k] - b[k]) for k in keys])

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
