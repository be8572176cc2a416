"""Detection metrics: ROC AUC and the escape rate at a false-reject budget."""

from __future__ import annotations

import numpy as np

from castline.vision.calibration import escape_rate, threshold_for_frr


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    pos = np.asarray(positives, dtype=np.float64).ravel()
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    scores = np.concatenate([neg, pos])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(average, counts)
    pos_ranks = ranks[len(neg) :].sum()
    return float((pos_ranks - len(pos) * (len(pos) + 1) / 2) / (len(neg) * len(pos)))


def escape_at_frr(ok: np.ndarray, ng: np.ndarray, frr: float = 0.02) -> float:
    """Share of NG parts passed when the threshold rejects `frr` of the OK parts."""
    return escape_rate(ng, threshold_for_frr(ok, frr))
