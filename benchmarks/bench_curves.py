"""Shot curves: their size on the wire and in the record, the cost of making, reading and
analysing them, the golden envelope's false alarms and detections, and `castline trace`.

Curves come from the simulated hall (`sim/curves.py`, 2 kHz). Per die profile: an
envelope learnt from 200 good shots, its false alarms counted on 1,000 held-out good
shots, and each process fault injected into 100 shots. Then 2,000 shots with curves are
written to a fresh SQLite record in the line's batches, and a part traced.

    .venv/bin/python benchmarks/bench_curves.py [--shots 2000] [--held-out 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from castline.analytics.trace import trace
from castline.domain.curve import decode, encode, pack, unpack
from castline.domain.curve_features import features
from castline.domain.envelope import learn, outside
from castline.domain.shot import PartKey, Shot
from castline.domain.verdict import Verdict
from castline.messaging.schema import ShotMessage
from castline.messaging.schema import decode as decode_message
from castline.sim.calibration import PROFILES
from castline.sim.curves import CurveFault, CurveProfile, conditions, shot_curve
from castline.sim.fleet import FleetConfig, Hall, ShotEvent
from castline.sim.process import ProcessModel
from castline.store import database
from castline.store.blobs import BlobStore
from castline.store.facts import Facts, record_facts
from castline.store.repository import Store

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def per_call_us(fn: Callable[[], Any], repeat: int) -> float:
    """Median of five rounds, microseconds per call."""
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        rounds.append((time.perf_counter() - t0) / repeat * 1e6)
    return statistics.median(rounds)


def hall_shots(n: int) -> list[ShotEvent]:
    out: list[ShotEvent] = []
    for event in Hall(FleetConfig(machines=9, seed=1), START).events():
        if isinstance(event, ShotEvent):
            out.append(event)
            if len(out) == n:
                return out
    return out


def sizes(events: list[ShotEvent]) -> None:
    wire, plain, stored, samples = [], [], [], []
    for e in events:
        assert e.curve is not None
        fields = dict(
            plant="plant1",
            machine=e.machine,
            shot_number=e.shot_number,
            die=e.die,
            ts=e.at,
            params=e.params,
            trial=e.trial,
        )
        plain.append(len(ShotMessage.model_validate(fields).to_json()))
        fields |= ShotMessage.curve_fields(e.curve)
        wire.append(len(ShotMessage.model_validate(fields).to_json()))
        stored.append(len(pack(e.curve)))
        samples.append(len(e.curve))
    print(
        f"shots {len(events)}, samples per curve median {statistics.median(samples):.0f} "
        f"(p99 {np.percentile(samples, 99):.0f}) at 2 kHz"
    )
    print(
        f"shot message: without curve median {statistics.median(plain):.0f} B, with curve "
        f"{statistics.median(wire):.0f} B (p99 {np.percentile(wire, 99):.0f}, max {max(wire)})"
    )
    raw = 8 * statistics.median(samples)
    print(
        f"stored curve: median {statistics.median(stored):.0f} B (p99 "
        f"{np.percentile(stored, 99):.0f}) vs {raw:.0f} B of raw float32"
    )


def costs(events: list[ShotEvent]) -> None:
    curve = events[0].curve
    assert curve is not None
    data = encode(curve)
    rng = np.random.default_rng(0)
    process = ProcessModel(PROFILES[0], rng, 60.0)
    profile = CurveProfile.draw(rng, process)
    shot = conditions(profile, process, process.next_shot({}))
    message = ShotMessage.model_validate(
        dict(plant="p", machine="m", shot_number=1, die="d", ts=START)
        | ShotMessage.curve_fields(curve)
    ).to_json()
    print(
        f"make a curve (sim) {per_call_us(lambda: shot_curve(profile, shot, rng), 50):.0f} us; "
        f"encode {per_call_us(lambda: encode(curve), 200):.0f} us; decode "
        f"{per_call_us(lambda: decode(data, 2000, 300.0), 200):.0f} us; unpack "
        f"{per_call_us(lambda: unpack(pack(curve)), 200):.0f} us (with pack)"
    )
    print(
        f"validate a shot message with its curve "
        f"{per_call_us(lambda: decode_message('castline/v1/p/m/shot', message), 200):.0f} us; "
        f"features {per_call_us(lambda: features(curve), 200):.0f} us per shot"
    )


def make(
    profile: CurveProfile,
    process: ProcessModel,
    rng: np.random.Generator,
    fault: CurveFault | None = None,
) -> Any:
    offsets: dict[str, float] = {}
    weak = 0.0
    if fault is CurveFault.WEAK_INTENSIFICATION:
        sd = process.fits["intensification_pressure_bar"].std
        offsets["intensification_pressure_bar"] = -float(rng.uniform(3.0, 4.5)) * sd
        weak = float(rng.uniform(0.1, 0.2))
    if fault is CurveFault.VACUUM_LOSS:
        offsets["vacuum_mbar"] = float(rng.uniform(400, 700))
    faults = frozenset({fault}) if fault and fault is not CurveFault.VACUUM_LOSS else frozenset()
    shot = conditions(profile, process, process.next_shot(offsets), faults, weak)
    return shot_curve(profile, shot, rng)


def envelope_rates(held_out: int, faulty: int) -> None:
    alarms, checked = 0, 0
    detected = {f: 0 for f in CurveFault}
    timing: list[float] = []
    for die in range(len(PROFILES)):
        rng = np.random.default_rng([11, die])
        process = ProcessModel(PROFILES[die], rng, 60.0)
        profile = CurveProfile.draw(rng, process)
        t0 = time.perf_counter()
        envelope = learn([make(profile, process, rng) for _ in range(200)])
        timing.append(time.perf_counter() - t0)
        good = [make(profile, process, rng) for _ in range(held_out)]
        alarms += sum(outside(c, envelope) is not None for c in good)
        checked += len(good)
        for fault in CurveFault:
            bad = [make(profile, process, rng, fault) for _ in range(faulty)]
            detected[fault] += sum(outside(c, envelope) is not None for c in bad)
    print(
        f"envelope (k 6, 2 ms tolerance, 3 ms run), {len(PROFILES)} dies: false alarms "
        f"{alarms} of {checked} held-out good shots ({alarms / checked:.2%})"
    )
    print(
        "detected per fault: "
        + ", ".join(f"{f.value} {n / (faulty * len(PROFILES)):.0%}" for f, n in detected.items())
    )
    print(
        f"learn from 200 curves {statistics.median(timing) * 1000:.0f} ms (incl. making them); "
        f"outside {per_call_us(lambda: outside(good[0], envelope), 100):.0f} us per shot"
    )


def record(events: list[ShotEvent]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = database.open_store(f"sqlite:///{Path(tmp) / 'castline.db'}")
        shots = [
            Shot(
                PartKey("plant1", e.machine, e.shot_number),
                e.die,
                e.at,
                e.params,
                trial=e.trial,
                curve=e.curve,
            )
            for e in events
        ]
        bare = [
            Shot(PartKey("bare", s.key.machine, s.key.shot_number), s.die, s.at, s.params)
            for s in shots
        ]
        for name, batch in (("without curves", bare), ("with curves", shots)):
            t0 = time.perf_counter()
            for i in range(0, len(batch), 256):
                part = batch[i : i + 256]
                machines = {(s.key.plant, s.key.machine) for s in part}
                record_facts(engine, Facts(machines=machines, shots=part))
            print(
                f"record {len(batch)} shots {name} in batches of 256 (SQLite): "
                f"{len(batch) / (time.perf_counter() - t0):,.0f} shots/s"
            )
        store = Store(engine)
        for s in shots:
            if not s.trial:
                store.record_verdict(s.key, Verdict.OK, s.at + timedelta(seconds=1))
        last = shots[-1].key
        blobs = BlobStore(Path(tmp) / "blobs")
        t_ms = per_call_us(lambda: trace(engine, last, blobs), 5) / 1000
        result = trace(engine, last, blobs)
        print(
            f"trace one part (SQLite, envelope from {result.envelope.learnt_from} good shots "
            f"of its die): {t_ms:.0f} ms, envelope {result.envelope.result}"
        )
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--held-out", type=int, default=1000)
    parser.add_argument("--faulty", type=int, default=100)
    args = parser.parse_args()
    events = hall_shots(args.shots)
    sizes(events)
    costs(events)
    envelope_rates(args.held_out, args.faulty)
    record(events)


if __name__ == "__main__":
    main()
