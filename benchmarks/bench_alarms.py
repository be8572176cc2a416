"""Live alarm engine: its cost per shot on the records path, and what a day of the
simulated hall raises.

    .venv/bin/python benchmarks/bench_alarms.py [--shots 20000] [--machines 100] [--hours 24]

(1) N shots with every standard parameter, spread over M machines, fed in batches of 512
(as the line fetches records): microseconds per shot. (2) A simulated hall of nine
machines for H hours, fed 16 shots at a time: shots, alarm reports (hits), distinct
alarms (open at once at most, one per machine, die, chart and kind), by chart.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np

from castline.domain.alarm_engine import AlarmEngine
from castline.domain.alarms import Alarm
from castline.domain.shot import PartKey, Shot
from castline.domain.units import NAMES
from castline.sim.fleet import FleetConfig, Hall, ShotEvent

START = datetime(2026, 3, 2, tzinfo=UTC)


def cost_per_shot(shots: int, machines: int) -> float:
    rng = np.random.default_rng(0)
    batch = [
        Shot(
            PartKey("p", f"m{i % machines}", i),
            "D1",
            START + timedelta(seconds=i),
            {name: float(100 + rng.normal()) for name in NAMES},
        )
        for i in range(shots)
    ]
    engine = AlarmEngine()
    began = time.perf_counter()
    for i in range(0, shots, 512):
        engine.shots(batch[i : i + 512])
    return (time.perf_counter() - began) * 1e6 / shots


def hall_day(hours: float) -> dict[str, object]:
    engine, batch, reports, shots = AlarmEngine(), [], [], 0
    for event in Hall(FleetConfig(machines=9, seed=1, curve_rate_hz=0), START).events():
        if event.at > START + timedelta(hours=hours):
            break
        if isinstance(event, ShotEvent):
            shots += 1
            key = PartKey("p", event.machine, event.shot_number)
            batch.append(Shot(key, event.die, event.at, event.params, trial=event.trial))
            if len(batch) == 16:
                engine.shots(batch)
                batch = []
                reports += engine.gate._waiting.values()
                engine.gate._waiting.clear()
    hits = sum(a.count for a in reports)
    return {
        "shots": shots,
        "reports (hits)": hits,
        "distinct alarms": len({a.key for a in reports}),
        "by chart": dict(Counter(a.chart for a in _distinct(reports)).most_common()),
    }


def _distinct(reports: list[Alarm]) -> list[Alarm]:
    return list({a.key: a for a in reports}.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=20_000)
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    cost = cost_per_shot(args.shots, args.machines)
    print(f"engine: {cost:.1f} us per shot ({len(NAMES)} parameters, batches of 512)")
    print(json.dumps(hall_day(args.hours), indent=2))


if __name__ == "__main__":
    main()
