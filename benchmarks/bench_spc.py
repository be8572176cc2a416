"""SPC alarm load on the real KAMP files: `castline report spc` over three dies.

Imports train and test files of dies 8412, 8722 and 8917 into a fresh SQLite store (or
reuses the one given), runs the SPC scan of the last `--days` before the newest shot
with the default baseline of 500 shots, and prints: alarms opened (critical; one per die
for its process findings, one per die for its set-point changes), charts, charts where
Nelson rule 1 fires on >= 80 % / > 50 % of the checked points, each alarm, and what was
found on die 8722's fixed-half die temperature (the real fall of 8 March 2019).

    .venv/bin/python benchmarks/bench_spc.py --data ../shared/data/kamp/process
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from castline.analytics import alarms, importer, mapping, spc
from castline.store import database
from castline.store import tables as t

DIES = ("8412", "8722", "8917")


def checked(chart: dict) -> int:
    """Points the rules are checked on: all but the baselines."""
    bases = [r["baseline_points"] for r in chart.get("regimes", [])] or [chart["baseline_points"]]
    return chart["points"] - sum(bases)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--db", type=Path, help="SQLite file to reuse (default: a fresh temp one)")
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    if args.db is None:
        args.db = Path(tempfile.mkdtemp(prefix="bench_spc_")) / "castline.db"
    fresh = not args.db.exists()
    engine = database.connect(f"sqlite:///{args.db}")
    database.upgrade(engine)
    if fresh:
        t0 = time.perf_counter()
        for die in DIES:
            for part in ("train", "test"):
                path = args.data / f"{part}_group_{die}.csv"
                importer.import_shots(engine, path, mapping.KAMP, "kamp", progress=False)
        print(f"import: {time.perf_counter() - t0:.1f} s")
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(t.shots.c.at))).scalar()
    if newest is None:
        raise SystemExit("no shots in the store")
    until = newest + timedelta(seconds=1)
    since = until - timedelta(days=args.days)
    t0 = time.perf_counter()
    charts = spc.monitor(engine, "kamp", since=since, until=until, baseline_shots=500)
    took = time.perf_counter() - t0
    opened = alarms.listing(engine, "kamp", limit=100_000)
    critical = sum(a["severity"] == "critical" for a in opened)
    share = [c["rules"].get("nelson1", {}).get("count", 0) / max(1, checked(c)) for c in charts]
    print(f"window {since:%Y-%m-%d}..{until:%Y-%m-%d}, scan {took:.1f} s")
    print(f"alarms open: {len(opened)} ({critical} critical) on {len(charts)} charts")
    print(f"charts with rule 1 on >= 80 % of points: {sum(s >= 0.8 for s in share)}")
    print(f"charts with rule 1 on > 50 % of points: {sum(s > 0.5 for s in share)}")
    for a in opened:
        print(f"  {a['severity']:8} die {a['die']} {a['subject']}/{a['rule']}: {a['message'][:90]}")
        if a["die"] != "8722":
            continue
        for part in a["message"].split(" | "):
            if "fixed half" in part:
                print(f"    8722 fixed half ({a['rule']}): {part.split(': ', 1)[-1][:110]}")


if __name__ == "__main__":
    main()
