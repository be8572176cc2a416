"""Predictive quality: P(NG | process parameters), validated by time and by unseen die.

One model for every die (`analytics.pooled`: readings relative to each die's own
level), trained on earlier shots and judged on later ones, never shuffled; and judged
on each die in turn as if it were new (leave one die out), beside a process-window
rule. It is retrained when asked (seconds), so no model file, and no pickle, is loaded.

Bad input is not truth: a reading outside its physical range or a sensor dropout is
flagged out of window per shot and scored as the die's usual level, never as
"missing", which a model would learn to read as NG. Trial shots are left out: they
are scrap by definition and teach nothing about the process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sqlalchemy import Engine

from castline.analytics import alarms, queries
from castline.analytics.importer import frame_of
from castline.analytics.mapping import Mapping
from castline.analytics.pooled import PooledModel, ShotRisk, risk_table
from castline.domain.units import NAMES

ALARM_RATE = 0.05
BOOTSTRAP = 300  # resamples behind an interval of ROC AUC
RECENT_NG_SHOTS = 500  # inspected shots that say what NG rate is usual right now


def load_export(path: Path, mapping: Mapping) -> pd.DataFrame:
    """An MES export as analytics shots: parameters, numeric extras, `ng`, `trial`, `at`."""
    raw = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    frame, _ = frame_of(raw, mapping)
    extra = pd.DataFrame(list(frame["extra"]), index=frame.index)
    numeric = extra.select_dtypes("number").drop(columns=["id"], errors="ignore")
    frame = pd.concat([frame.drop(columns=["extra"]), numeric], axis=1)
    frame["ng"] = frame["defective"].astype(float)
    return frame.sort_values("at", kind="stable").reset_index(drop=True)


@dataclass(slots=True)
class QualityModel:
    """P(NG) of one die's shots: the pooled model learnt from that die's shots alone."""

    die: str
    pooled: PooledModel

    @property
    def base_rate(self) -> float:
        return self.pooled.base_rate

    @classmethod
    def fit(cls, die: str, train: pd.DataFrame, *, quick: bool = False) -> QualityModel:
        return cls(die, PooledModel.fit(_of_die(train, die), quick=quick))

    def risk(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pooled.score(_of_die(frame, self.die)).risk


def _of_die(frame: pd.DataFrame, die: str) -> pd.DataFrame:
    frame = frame if "die" in frame else frame.assign(die=die)
    return frame.reset_index(drop=True)


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


def auc_interval(y: np.ndarray, score: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """A 95 % bootstrap interval of ROC AUC (shots resampled with replacement)."""
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, y.size, y.size)
        if 0 < y[pick].sum() < y.size:
            aucs.append(roc_auc_score(y[pick], score[pick]))
    low, high = np.quantile(aucs, [0.025, 0.975])
    return float(low), float(high)


def judged(y: np.ndarray, score: np.ndarray, base_rate: float) -> dict[str, Any]:
    """ROC AUC with its interval, precision at a 5 % alarm rate, and the alarm's lead."""
    both = 0 < y.sum() < y.size
    return {
        "test_shots": int(y.size),
        "test_ng": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, score)) if both else None,
        "roc_auc_95": auc_interval(y, score) if both else None,
        "precision_at_5pct": precision_at(y, score),
        "lift_at_5pct": precision_at(y, score) / max(y.mean(), 1e-12),
        **lead_times(score, y.astype(float), base_rate),
    }


def evaluate(model: QualityModel, test: pd.DataFrame) -> dict[str, Any]:
    """Judged on later shots of the same die."""
    test = test[~test["trial"].astype(bool) & test["ng"].notna()]
    y = test["ng"].to_numpy(dtype=int)
    return {
        "die": model.die,
        "train_ng_rate": model.base_rate,
        **judged(y, model.risk(test), model.base_rate),
    }


Split = dict[str, tuple[pd.DataFrame, pd.DataFrame]]  # die -> (earlier shots, later shots)


def kamp_split(folder: Path, mapping: Mapping) -> Split:
    """`train_group_<die>.csv` (earlier) and `test_group_<die>.csv` (later), per die."""
    split = {
        p.stem.removeprefix("train_group_"): (
            load_export(p, mapping),
            load_export(p.with_name(p.name.replace("train_", "test_")), mapping),
        )
        for p in sorted(folder.glob("train_group_*.csv"))
        if p.with_name(p.name.replace("train_", "test_")).exists()
    }
    if not split:
        raise FileNotFoundError(
            f"no train_group_*.csv with a matching test_group_*.csv in {folder}; "
            "point --data at the KAMP process folder"
        )
    return split


def time_split(folder: Path, mapping: Mapping, *, quick: bool = False) -> list[dict[str, Any]]:
    """One model from every die's earlier shots, judged on each die's later shots."""
    split = kamp_split(folder, mapping)
    model = PooledModel.fit(pd.concat([earlier for earlier, _ in split.values()]), quick=quick)
    return [_judged_die(model, die, *split[die]) for die in split]


def unseen_dies(folder: Path, mapping: Mapping, *, quick: bool = False) -> list[dict[str, Any]]:
    """Each die in turn is new: the model learns from the other dies' earlier shots only."""
    split = kamp_split(folder, mapping)
    if len(split) < 2:
        raise FileNotFoundError(f"need the train and test files of two dies or more in {folder}")
    results = []
    for die in split:
        others = pd.concat([earlier for d, (earlier, _) in split.items() if d != die])
        results.append(_judged_die(PooledModel.fit(others, quick=quick), die, *split[die]))
    return results


def _judged_die(
    model: PooledModel, die: str, earlier: pd.DataFrame, later: pd.DataFrame
) -> dict[str, Any]:
    """The die's later shots scored with its earlier ones as unlabelled history."""
    history = pd.concat([earlier.assign(ng=np.nan), later.assign(_later=True)])
    history = history.sort_values("at", kind="stable").reset_index(drop=True)
    scored = model.score(history)
    later_mask = history["_later"].astype("boolean").fillna(False).astype(bool)
    keep = (later_mask & ~history["trial"].astype(bool) & history["ng"].notna()).to_numpy()
    y = history.loc[keep, "ng"].to_numpy(dtype=int)
    rule = judged(y, scored.rule[keep], model.base_rate)
    return {
        "die": die,
        "learnt_from": list(model.dies),
        "train_ng_rate": model.base_rate,
        **judged(y, scored.risk[keep], model.base_rate),
        "process_window_rule": {k: rule[k] for k in ("roc_auc", "roc_auc_95", "precision_at_5pct")},
        "out_of_window_shots": int(scored.out_of_window[keep].any(axis=1).sum()),
    }


def standard_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Shots read from the store carry the standard parameters only."""
    keep = [n for n in NAMES if n in frame and frame[n].notna().any()]
    return frame[[*keep, "die", "machine", "shot_number", "at", "ng", "trial"]]


def recent_ng_rate(ng: pd.Series, floor: float) -> np.ndarray:
    """Per shot: the NG rate inspection found over the previous `RECENT_NG_SHOTS` shots."""
    known = ng.astype(float)
    rate = known.rolling(RECENT_NG_SHOTS, min_periods=50).mean().shift(1)
    return rate.fillna(floor).clip(lower=floor).to_numpy()


@dataclass(frozen=True, slots=True)
class ScrapRiskWatch:
    die: str
    shots: pd.DataFrame  # the shots watched (key, time) ...
    risk: pd.DataFrame  # ... and their risk table (`pooled.risk_table`)
    rolling: np.ndarray
    usual: np.ndarray  # the recent NG rate each rolling risk was compared with
    rises: list[int]  # positions where the rolling risk reached `factor` x usual
    base_rate: float


def scrap_risk(
    engine: Engine,
    plant: str,
    die: str,
    train_until: datetime,
    until: datetime | None = None,
    *,
    window: int = 50,
    factor: float = 2.0,
) -> ScrapRiskWatch:
    """The die's shots after `train_until` scored by a model of every die's shots before
    it (so a die without labels of its own is scored too); a rise is where the rolling
    risk over `window` shots reaches `factor` x the NG rate inspection found recently."""
    shots = queries.shots(engine, plant, until=until).reset_index(drop=True)
    shots = standard_features(shots.assign(die=shots["die"].astype(str)))
    earlier = shots[shots["at"] < pd.Timestamp(train_until)]
    own = shots[shots["die"] == die].sort_values("at", kind="stable").reset_index(drop=True)
    later = (own["at"] >= pd.Timestamp(train_until)) & ~own["trial"].astype(bool)
    if earlier["ng"].notna().sum() < 100 or not later.any():
        raise ValueError(
            f"die {die}: need 100 shots of any die with a known outcome before "
            f"{train_until.isoformat()} and shots of this die after it; import history "
            "or choose another split"
        )
    model = PooledModel.fit(earlier.reset_index(drop=True))
    scored = model.score(own)
    usual = recent_ng_rate(own["ng"], floor=model.base_rate)[later.to_numpy()]
    risk = pd.Series(scored.risk[later.to_numpy()])
    rolling = risk.rolling(window, min_periods=window).mean().to_numpy()
    rises = first_rise(np.nan_to_num(rolling - factor * usual, nan=-1.0), 0.0)
    return ScrapRiskWatch(
        die,
        own[later].reset_index(drop=True),
        risk_table(own[later], _subset(scored, later.to_numpy())),
        rolling,
        usual,
        [int(i) for i in rises],
        model.base_rate,
    )


def _subset(scored: ShotRisk, mask: np.ndarray) -> ShotRisk:
    return ShotRisk(scored.risk[mask], scored.out_of_window[mask], scored.rule[mask])


def raise_risk_alarms(
    engine: Engine, plant: str, watch: ScrapRiskWatch, window: int = 50
) -> dict[str, Any]:
    """A `scrap_risk` alarm at each rise: the warning comes from the process data,
    before inspection piles up."""
    raised = []
    for i in watch.rises:
        shot = watch.shots.iloc[i]
        message = (
            f"die {watch.die} on {shot['machine']}: predicted scrap risk "
            f"{watch.rolling[i]:.1%} over the last {window} shots, "
            f"{watch.rolling[i] / watch.usual[i]:.1f}x the recent NG rate {watch.usual[i]:.1%}"
        )
        alarm_id, _ = alarms.raise_alarm(
            engine,
            plant,
            str(shot["machine"]),
            watch.die,
            "scrap_risk",
            "scrap_risk",
            message,
            at=shot["at"].to_pydatetime(),
        )
        raised.append(alarm_id)
    return {
        "die": watch.die,
        "train_ng_rate": watch.base_rate,
        "shots_scored": len(watch.shots),
        "rises": [watch.shots["at"].iloc[i].isoformat() for i in watch.rises],
        "alarms": raised,
        "out_of_window_shots": int((watch.risk["out_of_window"] != "").sum()),
    }
