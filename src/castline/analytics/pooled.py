"""Predictive quality for any die, a new one included: one model over all dies.

A die's set-points are its own (one runs its moving half at 120 °C, another at 207 °C),
so raw readings do not carry from die to die; how far a shot is from its die's usual
level does. Each reading is turned into a robust z-score against the die's own running
median and spread over its previous shots (no labels needed, so a die never seen
before is scored from its own first shots on). One gradient-boosted model learns
P(NG | z-scores) from every die with labels.

A reading outside its physical range, or a zero where a sensor drops out, is not a
process deviation: it is flagged per shot (`out_of_window`) and scored as the die's
usual level, so a sensor dropout can never look like scrap by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from castline.domain.units import BY_NAME, NAMES

WINDOW = 500  # shots of a die's own history that define its usual level
MIN_SHOTS = 30  # before this many, a die's shots count as at their usual level
Z_CAP = 50.0
DROP_OUT_AT_ZERO = (  # a zero here is a sensor that dropped out, not a reading
    "intensification_pressure_bar",
    "slow_shot_velocity_mps",
    "fast_shot_velocity_mps",
    "biscuit_thickness_mm",
)


def readings(frame: pd.DataFrame) -> list[str]:
    """The standard parameters this frame has values for."""
    return [n for n in NAMES if n in frame and frame[n].notna().any()]


def out_of_window(x: pd.DataFrame) -> pd.DataFrame:
    """Readings that are no measurement: missing, outside the physical range, a dropout."""
    flags = x.isna()
    for name in x.columns:
        if name in BY_NAME:
            flags[name] |= (x[name] < BY_NAME[name].low) | (x[name] > BY_NAME[name].high)
        if name in DROP_OUT_AT_ZERO:
            flags[name] |= x[name] <= 0
    return flags


def relative(frame: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Robust z-scores against each die's level before the shot, and the flagged readings.

    `frame` must be in time order. Only earlier shots of the same die count, so a score
    never looks ahead, and a die's first `MIN_SHOTS` shots score 0 (at the usual level).
    """
    if not frame.index.is_unique:
        raise ValueError("shots must have a unique index (reset it after a concat)")
    x = frame[names].astype(float)
    flags = out_of_window(x)
    x = x.mask(flags)
    z = pd.DataFrame(0.0, index=frame.index, columns=names)
    for _, rows in x.groupby(frame["die"], sort=False):
        level = rows.rolling(WINDOW, min_periods=MIN_SHOTS).median().shift(1)
        spread = (rows - level).abs().rolling(WINDOW, min_periods=MIN_SHOTS).median().shift(1)
        scores = (rows - level) / (1.4826 * spread).clip(lower=1e-3)
        z.loc[rows.index] = scores.clip(-Z_CAP, Z_CAP).fillna(0.0)
    return z, flags


def with_window_counts(z: pd.DataFrame) -> pd.DataFrame:
    """The z-scores and what a process-window rule reads from them."""
    return z.assign(beyond_3sd=(z.abs() > 3).sum(axis=1), largest_z=z.abs().max(axis=1))


@dataclass(slots=True)
class ShotRisk:
    risk: np.ndarray  # P(NG) per shot
    out_of_window: pd.DataFrame  # bool per shot and reading
    rule: np.ndarray  # the process-window rule: readings beyond 3 SD, then the largest |z|


@dataclass(slots=True)
class PooledModel:
    names: list[str]
    model: HistGradientBoostingClassifier
    dies: tuple[str, ...]
    base_rate: float

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, quick: bool = False) -> PooledModel:
        """Learn from labelled shots of any number of dies (`die`, `at`, `ng`, readings)."""
        frame = frame.sort_values("at", kind="stable").reset_index(drop=True)
        names = readings(frame)
        z, flags = relative(frame, names)
        z = with_window_counts(z)
        # A shot with a reading that is no measurement teaches nothing, and kept it would
        # teach "usual level exactly" means whatever its label was (a dropout on NG shots
        # would become a sign of NG). Readings most shots lack do not count against it.
        trusted = ~flags.loc[:, flags.mean() < 0.5].any(axis=1)
        used = ~frame["trial"].astype(bool) & frame["ng"].notna() & trusted
        # Shallow trees, large leaves: what holds on a die it has not seen (measured
        # leave-one-die-out on KAMP; deeper trees learn the training dies' quirks).
        model = HistGradientBoostingClassifier(
            max_iter=50 if quick else 100,
            learning_rate=0.1 if quick else 0.05,
            max_depth=3,
            min_samples_leaf=min(200, max(20, int(used.sum()) // 50)),
            l2_regularization=1.0,
            random_state=0,
        )
        model.fit(z[used], frame.loc[used, "ng"].astype(int))
        dies = tuple(sorted(frame["die"].astype(str).unique()))
        return cls(names, model, dies, float(frame.loc[used, "ng"].mean()))

    def score(self, frame: pd.DataFrame) -> ShotRisk:
        """Risk of each shot of `frame` (time order, its dies' history included)."""
        x = frame.reindex(columns=[*self.names, "die"])
        z, flags = relative(x, self.names)
        features = with_window_counts(z)
        return ShotRisk(
            risk=np.asarray(self.model.predict_proba(features)[:, 1]),
            out_of_window=flags,
            rule=(features["beyond_3sd"] + features["largest_z"] / (2 * Z_CAP)).to_numpy(),
        )


def risk_table(frame: pd.DataFrame, scored: ShotRisk) -> pd.DataFrame:
    """Per-shot risk for export (CSV, API): key, time, risk and the flagged readings."""
    flagged = scored.out_of_window.apply(
        lambda row: ";".join(c for c in row.index if row[c]), axis=1
    )
    return pd.DataFrame(
        {
            "die": frame["die"].astype(str).to_numpy(),
            "machine": frame["machine"].to_numpy(),
            "shot_number": frame["shot_number"].to_numpy(),
            "at": frame["at"].to_numpy(),
            "risk": scored.risk.round(5),
            "out_of_window": flagged.to_numpy(),
        }
    )
