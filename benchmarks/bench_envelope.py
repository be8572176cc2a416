"""Golden envelopes against process faults, and curve features in predictive quality.

On the simulated hall (shot curves at 2 kHz, process-fault episodes: late switch-over,
velocity dip, weak or slow intensification, vacuum loss, worn tip), each die's envelope is
learnt as the line learns it: from its first good production shots (`--learn`). Then:

- lead: for each fault episode that makes a defective casting, the shots from the first
  envelope alarm to the first defective casting. The first defective casting is the
  earliest any inspection could find the defect (a perfect camera), so the lead is a
  lower bound; an episode whose alarm comes after its first defect counts negative.
- false alarms: envelope breaches among shots with no fault acting and a good casting.
- predictive quality: a gradient-boosting classifier (scikit-learn's histogram gradient
  boosting, the model family of castline's predictive quality, fixed settings), trained
  on the first 70 % of production shots in time and scored on the rest, once with the
  machine's scalar parameters alone and once with the curve features added.

    .venv/bin/python benchmarks/bench_envelope.py [--shots 30000] [--fault-every-h 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from castline.domain.curve_features import features
from castline.domain.envelope import Envelope, learn, outside
from castline.domain.units import CURVE_NAMES, MACHINE_NAMES
from castline.sim.fleet import FleetConfig, Hall, ShotEvent

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def hall_shots(n: int, every_h: float, seed: int) -> list[ShotEvent]:
    config = FleetConfig(machines=9, seed=seed, process_fault_every_h=every_h)
    out: list[ShotEvent] = []
    for event in Hall(config, START).events():
        if isinstance(event, ShotEvent) and not event.trial and event.curve is not None:
            out.append(event)
            if len(out) == n:
                break
    return out


def check(shots: list[ShotEvent], learn_from: int) -> tuple[list[bool | None], dict[str, int]]:
    """Each shot's envelope result (None: its die had no envelope yet), learnt per die
    from its first `learn_from` good shots without a fault acting."""
    material: dict[str, list[Any]] = {}
    envelopes: dict[str, Envelope] = {}
    breached: list[bool | None] = []
    for s in shots:
        envelope = envelopes.get(s.die)
        assert s.curve is not None
        breached.append(None if envelope is None else outside(s.curve, envelope) is not None)
        if envelope is None and not s.truth.defective and not s.process_faults:
            material.setdefault(s.die, []).append(s.curve)
            if len(material[s.die]) == learn_from:
                envelopes[s.die] = learn(material.pop(s.die))
    return breached, {"dies": len(envelopes)}


def episodes(shots: list[ShotEvent]) -> list[list[int]]:
    """Indices of each machine's runs of consecutive shots with a fault acting."""
    runs: list[list[int]] = []
    current: dict[str, list[int]] = {}
    for i, s in enumerate(shots):
        if s.process_faults:
            current.setdefault(s.machine, []).append(i)
        elif s.machine in current:
            runs.append(current.pop(s.machine))
    return runs + list(current.values())


def leads(shots: list[ShotEvent], breached: list[bool | None]) -> None:
    found, missed, late, unchecked, no_defect = [], 0, 0, 0, 0
    for run in episodes(shots):
        if breached[run[0]] is None:
            unchecked += 1
            continue
        defect = next((k for k, i in enumerate(run) if shots[i].truth.defective), None)
        if defect is None:
            no_defect += 1
            continue
        alarm = next((k for k, i in enumerate(run) if breached[i]), None)
        if alarm is None:
            missed += 1
        else:
            found.append(defect - alarm)
            late += defect < alarm
    total = len(found) + missed
    print(
        f"fault episodes with a defective casting: {total} (and {no_defect} without one, "
        f"{unchecked} before their die had an envelope)"
    )
    if found:
        print(
            f"envelope alarm at or before the first defective casting in "
            f"{len(found) - late} of {total}; after it in {late}; never in {missed}; "
            f"median lead {statistics.median(found):.0f} shots (mean "
            f"{statistics.mean(found):.1f}, over the {len(found)} episodes it alarmed)"
        )
    quiet = [b for s, b in zip(shots, breached, strict=True) if b is not None]
    clean = [
        b
        for s, b in zip(shots, breached, strict=True)
        if b is not None and not s.process_faults and not s.truth.defective
    ]
    print(
        f"false alarms: {sum(clean)} of {len(clean)} good shots without a fault "
        f"({sum(clean) / max(len(clean), 1):.2%}); {len(quiet)} shots checked"
    )


def frame(shots: list[ShotEvent]) -> pd.DataFrame:
    rows = []
    for s in shots:
        assert s.curve is not None
        measured = features(s.curve)
        row: dict[str, Any] = {n: s.params.get(n) for n in MACHINE_NAMES}
        row |= measured.as_parameters() if measured else dict.fromkeys(CURVE_NAMES)
        row |= {"ng": float(s.truth.defective), "trial": False}
        rows.append(row)
    return pd.DataFrame(rows).astype(float)


def auc(shots: list[ShotEvent]) -> None:
    data = frame(shots)
    cut = int(0.7 * len(data))
    train, test = data.iloc[:cut], data.iloc[cut:]
    y_train, y_test = train["ng"].to_numpy(int), test["ng"].to_numpy(int)
    for name, columns in (
        ("scalar parameters", list(MACHINE_NAMES)),
        ("scalar + curve features", list(MACHINE_NAMES + CURVE_NAMES)),
    ):
        columns = [c for c in columns if train[c].nunique() > 1]  # not measured here
        model = HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.05, l2_regularization=1.0, random_state=0
        )
        model.fit(train[columns], y_train)
        risk = model.predict_proba(test[columns])[:, 1]
        top = np.argsort(-risk, kind="stable")[: max(1, len(risk) // 20)]
        print(
            f"predictive quality, {name}: ROC AUC {roc_auc_score(y_test, risk):.3f}, "
            f"precision at 5 % {y_test[top].mean():.2f} ({len(test)} test shots, "
            f"{y_test.sum()} NG; trained on {cut}, NG rate {y_train.mean():.1%})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=30_000)
    parser.add_argument("--fault-every-h", type=float, default=3.0)
    parser.add_argument("--learn", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    t0 = time.perf_counter()
    shots = hall_shots(args.shots, args.fault_every_h, args.seed)
    print(
        f"{len(shots)} production shots of 9 machines, a fault episode every "
        f"{args.fault_every_h:g} h per machine ({time.perf_counter() - t0:.0f} s to simulate)"
    )
    t1 = time.perf_counter()
    breached, info = check(shots, args.learn)
    print(
        f"envelopes learnt for {info['dies']} dies from {args.learn} good shots each "
        f"({time.perf_counter() - t1:.0f} s to learn and check)"
    )
    leads(shots, breached)
    t1 = time.perf_counter()
    auc(shots)
    print(f"features and models {time.perf_counter() - t1:.0f} s")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
