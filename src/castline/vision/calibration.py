"""Thresholds from scores: a false-reject budget on good parts, an escape budget on bad.

The NG threshold is the score that rejects about `target_frr` of good validation parts.
Where labelled defects exist, a target escape rate (NG parts passed) may lower it. The
REVIEW band sits below NG: good parts scoring there go to a person, not the chute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Calibration:
    review: float
    ng: float
    false_reject_rate: float  # good parts at or above NG, on the calibration images
    review_rate: float  # good parts in the REVIEW band
    escape_rate: float | None  # NG parts below NG (passed or reviewed), where known

    def as_dict(self) -> dict[str, float | None]:
        return {
            "review": self.review,
            "ng": self.ng,
            "false_reject_rate": self.false_reject_rate,
            "review_rate": self.review_rate,
            "escape_rate": self.escape_rate,
        }


def threshold_for_frr(good: np.ndarray, frr: float) -> float:
    """Smallest threshold that rejects at most `frr` of `good` (score >= threshold is NG)."""
    good = np.sort(np.asarray(good, dtype=np.float64))
    if len(good) == 0:
        raise ValueError("no good calibration images: give more good photos (--ok or GOOD_DIR)")
    allowed = int(np.floor(frr * len(good)))  # how many good parts may be rejected
    if allowed == 0:
        return float(np.nextafter(good[-1], np.inf))
    return float(np.nextafter(good[-allowed - 1], np.inf))


def rate_interval(count: int, total: int, z: float = 1.96) -> list[float]:
    """95 % Wilson interval of a rate `count / total`: where the rate on new photos may lie."""
    if total <= 0:
        return [0.0, 1.0]
    p = count / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def escape_rate(defective: np.ndarray, ng: float) -> float:
    """Share of defective parts that the NG threshold does not reject."""
    defective = np.asarray(defective)
    return float(np.mean(defective < ng)) if len(defective) else float("nan")


def calibrate(
    good: np.ndarray,
    defective: np.ndarray | None = None,
    *,
    target_frr: float = 0.02,
    review_frr: float = 0.05,
    target_escape: float | None = None,
) -> Calibration:
    """Thresholds for a false-reject target, optionally tightened for an escape target."""
    if not 0 <= target_frr <= review_frr < 1:
        raise ValueError(f"need 0 <= target_frr ({target_frr}) <= review_frr ({review_frr}) < 1")
    good = np.asarray(good, dtype=np.float64)
    ng = threshold_for_frr(good, target_frr)
    review = threshold_for_frr(good, review_frr)
    has_defects = defective is not None and len(defective) > 0
    if target_escape is not None and has_defects:
        assert defective is not None
        # Highest threshold that still lets at most `target_escape` of the defects through.
        bad = np.sort(np.asarray(defective, dtype=np.float64))
        passed = int(np.floor(target_escape * len(bad)))
        ng = min(ng, float(bad[passed]))
        review = min(review, ng)
    return Calibration(
        review=review,
        ng=ng,
        false_reject_rate=float(np.mean(good >= ng)),
        review_rate=float(np.mean((good >= review) & (good < ng))),
        escape_rate=escape_rate(defective, ng) if has_defects and defective is not None else None,
    )


def grown(near: np.ndarray, far: np.ndarray, sizes: tuple[float, float, float]) -> np.ndarray:
    """Scores as a memory of `sizes[2]` photos would give them, sorted.

    `near` and `far` score the same photos with memories of `sizes[0]` and `sizes[1]`
    photos (sizes[1] < sizes[0] < sizes[2]). Nearest-neighbour distances fall about as a
    power of the number of photos, so each quantile is carried on along its power law
    (a straight line in log score vs log memory size): the out-of-fold scores, set by
    memories smaller than the final one, would otherwise sit higher than the scores new
    photos get. A quantile that is not positive at both sizes is kept as it is.
    """
    n_near, n_far, n_final = sizes
    if not n_far < n_near <= n_final:
        raise ValueError(f"need memory sizes far < near <= final, got {sizes}")
    step = np.log(n_final / n_near) / np.log(n_near / n_far)
    near = np.sort(np.asarray(near, dtype=np.float64))
    far = np.sort(np.asarray(far, dtype=np.float64))
    positive = (near > 0) & (far > 0)
    ratio = np.divide(near, far, out=np.ones_like(near), where=positive)
    return np.sort(near * ratio**step)
