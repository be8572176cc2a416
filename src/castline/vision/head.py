"""A supervised head for when labelled defect photos exist.

Logistic regression on the graph's image descriptor (anomaly statistics + pooled patch
features). It is fitted with scikit-learn at training time only; the graph carries its
coefficients as a plain MatMul + Add + Sigmoid, standardisation folded in, so inspecting
needs no scikit-learn.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from castline.vision.graph import Head


def fit_head(good: np.ndarray, defective: np.ndarray, *, strength: float = 0.1) -> Head:
    """Fit on descriptors [n, K] of good and defective photos; `strength` is sklearn's C."""
    x = np.concatenate([good, defective]).astype(np.float64)
    y = np.concatenate([np.zeros(len(good)), np.ones(len(defective))])
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-6] = 1.0
    fit = LogisticRegression(C=strength, class_weight="balanced", max_iter=2000)
    fit.fit((x - mean) / std, y)
    weights = fit.coef_[0] / std
    bias = float(fit.intercept_[0] - np.sum(mean * weights))
    return Head(weights.astype(np.float32), bias)
