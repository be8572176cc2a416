"""Analytics benchmark: predictive quality on the real KAMP time split; SPC and KPI
computation time over one year of one plant (9 machines, about 4 million shots).

The year is generated in memory with numpy (seeded): each machine runs shots every
~58 s (cycle time normal around 58 s) through a day of three 8 h shifts, with a 30 min
set-up each day, a planned stop from Saturday 22:00 to Monday 06:00, and breakdowns at
random (about two a week, 40 min mean). Ten process parameters per shot with noise
and a slow drift; about 3 % NG parts; verdicts OK/NG, 2 % REVIEW confirmed by a person.

    .venv/bin/python benchmarks/bench_analytics.py [--skip-predict] [--quick]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from castline.analytics import importer, kpis, mapping, predict, spc
from castline.analytics.config import AnalyticsConfig
from castline.domain.states import MachineState
from castline.domain.units import NAMES
from castline.store import database

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CASTLINE_DATA", ROOT.parent / "shared" / "data"))
YEAR = (pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC"))
MACHINES = [f"m{i}" for i in range(1, 10)]
PARAMS = [n for n in NAMES if n not in ("vacuum_mbar", "spray_time_s")] + ["spray_time_s"]


def machine_year(machine: str, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """State changes and shots of one machine over the year."""
    start, end = (t.value // 10**9 for t in YEAR)
    days = (end - start) // 86400
    rows: list[tuple[int, str]] = []
    for d in range(days):
        t0 = start + d * 86400
        weekday = pd.Timestamp(t0, unit="s").weekday()
        if weekday == 6:  # Sunday: planned stop all day (set from Saturday 22:00)
            continue
        rows.append((t0 + 6 * 3600, MachineState.SETUP.value))
        rows.append((t0 + 6 * 3600 + 1800, MachineState.RUNNING.value))
        if weekday == 5:
            rows.append((t0 + 22 * 3600, MachineState.PLANNED_STOP.value))
    states = pd.DataFrame(rows, columns=["t", "state"])
    # breakdowns: ~2 a week at random running times, 40 min mean
    n_fail = rng.poisson(2 * 52)
    fail_at = np.sort(rng.integers(start, end, n_fail))
    fail_len = rng.exponential(2400, n_fail).astype(int) + 60
    fails = pd.DataFrame(
        {
            "t": np.concatenate((fail_at, fail_at + fail_len)),
            "state": [MachineState.BREAKDOWN.value] * n_fail
            + [MachineState.RUNNING.value] * n_fail,
        }
    )
    states = pd.concat([states, fails]).sort_values("t", kind="stable").drop_duplicates("t")
    state_at = states["t"].to_numpy()
    # shots while running, every ~58 s
    n = int((end - start) / 58)
    t = start + np.cumsum(rng.normal(58, 3, n)).astype(np.int64)
    t = t[t < end]
    which = np.searchsorted(state_at, t, side="right") - 1
    running = (which >= 0) & (states["state"].to_numpy()[np.clip(which, 0, None)] == "running")
    t = t[running]
    n = t.size
    drift = np.sin(np.linspace(0, 40, n)) * 3
    shots = pd.DataFrame(
        {
            "machine": machine,
            "die": f"d{machine}",
            "at": pd.to_datetime(t, unit="s", utc=True),
            "trial": rng.random(n) < 0.003,
        }
    )
    base = {
        "melt_temp_c": 690,
        "die_temp_fixed_c": 200,
        "die_temp_moving_c": 210,
        "sleeve_temp_c": 450,
        "coolant_temp_c": 30,
        "slow_shot_velocity_mps": 0.3,
        "fast_shot_velocity_mps": 4.0,
        "intensification_pressure_bar": 800,
        "biscuit_thickness_mm": 50,
        "cycle_time_s": 58,
        "spray_time_s": 4,
    }
    for name, mean in base.items():
        shots[name] = mean * (1 + rng.normal(0, 0.01, n)) + drift * mean * 0.002
    ng = rng.random(n) < 0.03
    review = rng.random(n) < 0.02
    shots["verdict"] = np.where(review, "REVIEW", np.where(ng, "NG", "OK"))
    shots["review"] = np.where(review, np.where(ng, "NG", "OK"), None)
    shots["truth"] = ng
    states = pd.DataFrame(
        {
            "machine": machine,
            "state": states["state"].to_numpy(),
            "at": pd.to_datetime(state_at, unit="s", utc=True),
            "reason": "",
        }
    )
    return states, shots


def bench_year() -> None:
    rng = np.random.default_rng(2025)
    t0 = time.perf_counter()
    parts = [machine_year(m, rng) for m in MACHINES]
    states = pd.concat([p[0] for p in parts], ignore_index=True)
    shots = pd.concat([p[1] for p in parts], ignore_index=True)
    print(
        f"generated one plant-year: {len(shots):,} shots, {len(states):,} state changes, "
        f"{time.perf_counter() - t0:.1f} s"
    )

    t0 = time.perf_counter()
    charts = 0
    for _, group in shots.groupby("machine", sort=False):
        at = pd.DatetimeIndex(group["at"])
        for name in base_params(shots):
            chart = spc.build_chart(
                name, at, group[name].to_numpy(dtype=float), baseline_shots=5000
            )
            chart.summary()
            charts += 1
    spc_s = time.perf_counter() - t0
    print(
        f"SPC (I-MR limits, 8 Nelson + 4 Western Electric rules, EWMA, CUSUM, Cpk): "
        f"{charts} charts over {len(shots):,} shots in {spc_s:.1f} s "
        f"({len(shots) * len(base_params(shots)) / spc_s / 1e6:.1f} M points/s)"
    )

    config = AnalyticsConfig(planned_cycle_time_s=56, lines={"A": MACHINES[:5], "B": MACHINES[5:]})
    for by in ("shift", "day", "week"):
        t0 = time.perf_counter()
        edges = kpis.period_edges(YEAR[0].to_pydatetime(), YEAR[1].to_pydatetime(), by, config)
        per_machine = kpis.elements(states, shots, edges, config)
        rows = [
            r for level in kpis.LEVELS for r in kpis.rollup(per_machine, edges, level, config, "p1")
        ]
        took = time.perf_counter() - t0
        print(f"KPIs per {by:5} for machines, lines and plant: {len(rows):,} rows in {took:.1f} s")
    year = kpis.elements(
        states,
        shots,
        kpis.period_edges(YEAR[0].to_pydatetime(), YEAR[1].to_pydatetime(), "total", config),
        config,
    )
    (plant,) = kpis.rollup(
        year,
        kpis.period_edges(YEAR[0].to_pydatetime(), YEAR[1].to_pydatetime(), "total", config),
        "plant",
        config,
        "p1",
    )
    print(
        f"  plant year: OEE {plant['oee']:.1%}, availability {plant['availability']:.1%}, "
        f"quality {plant['quality_ratio']:.1%}, MTBF {plant['mtbf_s'] / 3600:.0f} h, "
        f"MTTR {plant['mttr_s'] / 60:.0f} min"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MiB")


def base_params(shots: pd.DataFrame) -> list[str]:
    return [n for n in PARAMS if n in shots]


def bench_predict(quick: bool) -> None:
    folder = DATA / "kamp" / "process"
    if not folder.is_dir():
        print(f"KAMP data not found under {folder}: predictive quality skipped")
        return
    t0 = time.perf_counter()
    results = predict.time_split(folder, mapping.KAMP, quick=quick)
    print(
        f"predictive quality, KAMP time split (train_group -> test_group), "
        f"{'quick' if quick else 'full'} model, {time.perf_counter() - t0:.0f} s:"
    )
    print(
        "die   test shots  NG   ROC AUC  precision@5%  NG rate  risk alarm at or before"
        " (strictly before) / rises seen by inspection  median lead (shots)"
    )
    for r in results:
        lead = "n/a" if r["median_lead_shots"] is None else f"{r['median_lead_shots']:.0f}"
        print(
            f"{r['die']}  {r['test_shots']:10d} {r['test_ng']:4d}  {r['roc_auc']:.3f}    "
            f"{r['precision_at_5pct']:10.1%}  {r['test_ng'] / r['test_shots']:7.1%}  "
            f"{r['preceded_by_risk_alarm']:>6} ({r['risk_alarm_strictly_first']}) / "
            f"{r['rises_seen_by_inspection']:<4} {lead:>6}"
        )


def bench_import() -> None:
    folder = DATA / "kamp" / "process"
    if not folder.is_dir():
        return
    with tempfile.TemporaryDirectory() as tmp:
        engine = database.open_store(f"sqlite:///{tmp}/bench.db")
        files = sorted(folder.glob("*_group_*.csv"))
        t0 = time.perf_counter()
        rows = sum(
            importer.import_shots(engine, f, mapping.KAMP, "kamp", progress=False).rows
            for f in files
        )
        took = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = sum(
            importer.import_shots(engine, f, mapping.KAMP, "kamp", progress=False).shots_added
            for f in files
        )
        print(
            f"KAMP import into SQLite: {rows:,} rows in {took:.1f} s ({rows / took:,.0f} rows/s); "
            f"again: {again} added in {time.perf_counter() - t0:.1f} s"
        )
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smaller predictive model")
    args = parser.parse_args()
    if not args.skip_predict:
        bench_predict(args.quick)
    bench_import()
    bench_year()
    return 0


if __name__ == "__main__":
    sys.exit(main())
