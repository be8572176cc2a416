"""Predictive quality: P(NG | process parameters) per die, validated by time.

A gradient-boosted tree model (scikit-learn HistGradientBoostingClassifier) per die,
trained on earlier shots and judged on later ones, never shuffled. It is retrained
at start (seconds), so no model file, and no pickle, is ever loaded.

Bad input is not truth: readings outside their physical range, a zero where a sensor
dropped out (cast pressure 0, plunger speed 0) and values far outside what the die's
training shots show (a mold temperature of 1449 °C) become "not measured" (NaN),
which the model handles as missing. Trial shots are left out: they are scrap by
definition and would teach the model nothing about the process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sqlalchemy import Engine

from castline.analytics import alarms, queries
from castline.analytics.importer import frame_of
from castline.analytics.mapping import Mapping
from castline.domain.units import BY_NAME, NAMES

DROP_OUT_AT_ZERO = (
    "intensification_pressure_bar",
    "slow_shot_velocity_mps",
    "fast_shot_velocity_mps",
    "biscuit_thickness_mm",
    "physical_strength",
)
ALARM_RATE = 0.05


def load_export(path: Path, mapping: Mapping) -> pd.DataFrame:
    """An MES export as analytics shots: parameters, numeric extras, `ng`, `trial`, `at`."""
    raw = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    frame, _ = frame_of(raw, mapping)
    extra = pd.DataFrame(list(frame["extra"]), index=frame.index)
    numeric = extra.select_dtypes("number").drop(columns=["id"], errors="ignore")
    frame = pd.concat([frame.drop(columns=["extra"]), numeric], axis=1)
    frame["ng"] = frame["defective"].astype(float)
    return frame.sort_values("at", kind="stable").reset_index(drop=True)


def feature_names(frame: pd.DataFrame) -> list[str]:
    skip = {"shot_number", "counter", "defective", "ng", "trial", "die", "machine", "at", "state"}
    return [
        c
        for c in frame.columns
        if c not in skip and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().any()
    ]


@dataclass(slots=True)
class Cleaner:
    """Turns bad readings into NaN; fences learnt from the training shots."""

    low: dict[str, float]
    high: dict[str, float]

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: list[str]) -> Cleaner:
        low, high = {}, {}
        for name in features:
            q01, q99 = frame[name].quantile([0.01, 0.99])
            spread = max(q99 - q01, 1e-9)
            low[name], high[name] = q01 - 3 * spread, q99 + 3 * spread
        return cls(low, high)

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        x = frame[list(self.low)].astype(float).copy()
        for name in x.columns:
            bad = (x[name] < self.low[name]) | (x[name] > self.high[name])
            if name in BY_NAME:
                p = BY_NAME[name]
                bad |= (x[name] < p.low) | (x[name] > p.high)
            if name in DROP_OUT_AT_ZERO:
                bad |= x[name] <= 0
            x.loc[bad, name] = np.nan
        return x


@dataclass(slots=True)
class QualityModel:
    die: str
    cleaner: Cleaner
    model: HistGradientBoostingClassifier
    base_rate: float

    @classmethod
    def fit(cls, die: str, train: pd.DataFrame, *, quick: bool = False) -> QualityModel:
        train = train[~train["trial"].astype(bool) & train["ng"].notna()]
        features = feature_names(train)
        cleaner = Cleaner.fit(train, features)
        model = HistGradientBoostingClassifier(
            max_iter=60 if quick else 300,
            learning_rate=0.1 if quick else 0.05,
            l2_regularization=1.0,
            random_state=0,
        )
        model.fit(cleaner.apply(train), train["ng"].astype(int))
        return cls(die, cleaner, model, float(train["ng"].mean()))

    def risk(self, frame: pd.DataFrame) -> np.ndarray:
        x = frame.reindex(columns=list(self.cleaner.low))
        return np.asarray(self.model.predict_proba(self.cleaner.apply(x))[:, 1])


def precision_at(y: np.ndarray, score: np.ndarray, rate: float = ALARM_RATE) -> float:
    """Share of NG among the `rate` riskiest parts: what an alarm at that rate finds."""
    k = max(1, math.ceil(rate * y.size))
    top = np.argsort(-score, kind="stable")[:k]
    return float(y[top].mean())


def first_rise(rolling: np.ndarray, threshold: float) -> np.ndarray:
    """Indices where a rolling figure crosses up through the threshold."""
    above = rolling >= threshold
    return np.flatnonzero(above & ~np.concatenate(([False], above[:-1])))


def lead_times(
    risk: np.ndarray, ng: np.ndarray, base_rate: float, window: int = 50, factor: float = 2.0
) -> dict[str, Any]:
    """How many shots the risk alarm comes before the inspection results show the rise.

    Both alarms fire when their rolling mean over `window` shots reaches `factor` x the
    training NG rate: the predicted risk of the shots made, and the NG rate found by
    inspection. For each rise seen by inspection, the lead is the distance back to the
    latest risk alarm that is still on (or was on within `window` shots).
    """
    threshold = factor * base_rate
    roll_risk = pd.Series(risk).rolling(window, min_periods=window).mean().to_numpy()
    roll_ng = pd.Series(ng).rolling(window, min_periods=window).mean().to_numpy()
    risk_up = first_rise(np.nan_to_num(roll_risk), threshold)
    seen_up = first_rise(np.nan_to_num(roll_ng), threshold)
    leads = []
    for onset in seen_up:
        earlier = risk_up[(risk_up <= onset) & (risk_up >= onset - 4 * window)]
        leads.append(int(onset - earlier[-1]) if earlier.size else None)
    caught = [d for d in leads if d is not None]
    return {
        "threshold": threshold,
        "rises_seen_by_inspection": len(seen_up),
        "preceded_by_risk_alarm": len(caught),  # at the same shot or earlier
        "risk_alarm_strictly_first": sum(d > 0 for d in caught),
        "median_lead_shots": float(np.median(caught)) if caught else None,
        "risk_alarms": len(risk_up),
    }


def evaluate(model: QualityModel, test: pd.DataFrame) -> dict[str, Any]:
    """ROC AUC and precision at a 5 % alarm rate on later shots of the same die."""
    test = test[~test["trial"].astype(bool) & test["ng"].notna()]
    y = test["ng"].to_numpy(dtype=int)
    score = model.risk(test)
    auc = float(roc_auc_score(y, score)) if 0 < y.sum() < y.size else None
    return {
        "die": model.die,
        "train_ng_rate": model.base_rate,
        "test_shots": int(y.size),
        "test_ng": int(y.sum()),
        "roc_auc": auc,
        "precision_at_5pct": precision_at(y, score),
        "lift_at_5pct": precision_at(y, score) / max(y.mean(), 1e-12),
        **lead_times(score, y.astype(float), model.base_rate),
    }


def time_split(folder: Path, mapping: Mapping, *, quick: bool = False) -> list[dict[str, Any]]:
    """Train on `train_group_<die>.csv`, test on `test_group_<die>.csv`, per die."""
    results = []
    for train_path in sorted(folder.glob("train_group_*.csv")):
        die = train_path.stem.removeprefix("train_group_")
        test_path = folder / f"test_group_{die}.csv"
        if not test_path.exists():
            continue
        model = QualityModel.fit(die, load_export(train_path, mapping), quick=quick)
        results.append(evaluate(model, load_export(test_path, mapping)))
    if not results:
        raise FileNotFoundError(
            f"no train_group_*.csv with a matching test_group_*.csv in {folder}; "
            "point --data at the KAMP process folder"
        )
    return results


def standard_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Shots read from the store carry the standard parameters only."""
    return frame[[n for n in NAMES if n in frame and frame[n].notna().any()] + ["ng", "trial"]]


def watch_scrap_risk(
    engine: Engine,
    plant: str,
    die: str,
    train_until: datetime,
    until: datetime | None = None,
    *,
    window: int = 50,
    factor: float = 2.0,
    raise_alarms: bool = True,
) -> dict[str, Any]:
    """Train on a die's shots before `train_until`, score the ones after, and raise a
    `scrap_risk` alarm where the rolling predicted risk reaches `factor` x the NG rate
    of training: the warning comes from the process data, before inspection piles up."""
    shots = queries.shots(engine, plant, die=die, until=until)
    train = standard_features(shots[shots["at"] < pd.Timestamp(train_until)])
    later = shots[shots["at"] >= pd.Timestamp(train_until)]
    later = later[~later["trial"].astype(bool)].reset_index(drop=True)
    if train["ng"].notna().sum() < 100 or later.empty:
        raise ValueError(
            f"die {die}: need 100 shots with a known outcome before {train_until.isoformat()} "
            "and shots after it; import history or choose another split"
        )
    model = QualityModel.fit(die, train)
    risk = model.risk(later)
    rolling = pd.Series(risk).rolling(window, min_periods=window).mean().to_numpy()
    threshold = factor * model.base_rate
    rises = first_rise(np.nan_to_num(rolling), threshold)
    raised = []
    for i in rises:
        shot = later.iloc[int(i)]
        usual = model.base_rate
        message = (
            f"die {die} on {shot['machine']}: predicted scrap risk {rolling[i]:.1%} over the "
            f"last {window} shots, {rolling[i] / usual:.1f}x the usual {usual:.1%}"
        )
        if raise_alarms:
            alarm_id, _ = alarms.raise_alarm(
                engine,
                plant,
                str(shot["machine"]),
                die,
                "scrap_risk",
                "scrap_risk",
                message,
                at=shot["at"].to_pydatetime(),
            )
            raised.append(alarm_id)
    return {
        "die": die,
        "train_ng_rate": model.base_rate,
        "shots_scored": len(later),
        "threshold": threshold,
        "rises": [later["at"].iloc[int(i)].isoformat() for i in rises],
        "alarms": raised,
    }
