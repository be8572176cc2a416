"""The shot curve on the wire (protocol v1 shot message) and in the record, on SQLite and
PostgreSQL, written by both write paths (the store's and the line's batches)."""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from castline.domain.curve import ShotCurve, encode
from castline.domain.shot import CurveLists, PartKey, Shot
from castline.domain.verdict import Verdict
from castline.messaging.schema import InvalidMessage, ShotMessage, decode
from castline.sim.calibration import PROFILES
from castline.sim.curves import CurveProfile, conditions, shot_curve
from castline.sim.process import ProcessModel
from castline.store import database
from castline.store import tables as t
from castline.store.facts import Facts, record_facts
from castline.store.repository import Store

TOPIC = "castline/v1/p1/m1/shot"
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def sim_curves(n: int, seed: int = 1) -> list[ShotCurve]:
    rng = np.random.default_rng(seed)
    process = ProcessModel(PROFILES[0], rng, 60.0)
    profile = CurveProfile.draw(rng, process)
    return [
        shot_curve(profile, conditions(profile, process, process.next_shot({})), rng)
        for _ in range(n)
    ]


CURVE = sim_curves(1)[0]


def body(**fields: Any) -> dict[str, Any]:
    base = {"v": 1, "plant": "p1", "machine": "m1", "shot_number": 5, "die": "8412"}
    return base | {"ts": "2026-03-01T06:00:00Z"} | fields


def raw(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields).encode()


# --- the wire ---------------------------------------------------------------------


def test_a_binary_curve_travels_in_a_few_kb_and_arrives_exactly() -> None:
    payload = raw(body(**ShotMessage.curve_fields(CURVE)))
    _, message = decode(TOPIC, payload)
    assert isinstance(message, ShotMessage)
    assert message.to_shot().curve == CURVE
    assert len(payload) < 8 * 1024  # about 0.6 s at 2 kHz
    assert message.to_json() == ShotMessage.model_validate_json(payload).to_json()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"curve_b64": b64(encode(CURVE))}, "needs curve_rate_hz"),
        ({"curve_rate_hz": 2000}, "need curve_b64"),
        ({"curve_stroke_mm": 300.0}, "need curve_b64"),
        ({"curve_b64": "@@@@", "curve_rate_hz": 2000}, "base64"),
        ({"curve_b64": b64(b"junk"), "curve_rate_hz": 2000}, "zlib"),
        ({"curve_b64": b64(zlib.compress(b"\x00" * 12)), "curve_rate_hz": 2000}, "pairs"),
        ({"curve_b64": b64(encode(CURVE)), "curve_rate_hz": 2000.0}, "curve_rate_hz"),
        ({"curve_b64": b64(encode(CURVE)), "curve_rate_hz": "2000"}, "curve_rate_hz"),
        ({"curve_b64": b64(encode(CURVE)), "curve_rate_hz": 10}, "curve_rate_hz"),
        (
            {"curve_b64": b64(encode(CURVE)), "curve_rate_hz": 2000, "curve_stroke_mm": -5.0},
            "stroke",
        ),
        ({"curve_b64": 5, "curve_rate_hz": 2000}, "curve_b64"),
        (
            {"curve_b64": b64(encode(CURVE)), "curve_rate_hz": 2000, "curve": {"t_s": [0.0]}},
            "not both",
        ),
        ({"curve_b64": b64(zlib.compress(b"\x00" * 200_000)), "curve_rate_hz": 2000}, "more than"),
    ],
)
def test_bad_binary_curves_are_refused_on_arrival(fields: dict[str, Any], why: str) -> None:
    with pytest.raises(InvalidMessage, match=why):
        decode(TOPIC, raw(body(**fields)))


def test_json_lists_still_read_mapped_when_they_can_be_kept_as_sent_otherwise() -> None:
    t_s = [i / 2000 for i in range(4)]
    full = {"t_s": t_s, "position_mm": [0.0, 0.2, 0.4, 0.6], "pressure_bar": [9.0] * 4}
    _, message = decode(TOPIC, raw(body(curve=full)))
    shot = message.to_shot()  # type: ignore[attr-defined]
    assert shot.curve is not None and shot.curve.rate_hz == 2000 and shot.curve_lists is None
    partial = {"t_s": [0.0, 0.001], "position_mm": [0.0, 1.5]}
    _, message = decode(TOPIC, raw(body(curve=partial)))
    shot = message.to_shot()  # type: ignore[attr-defined]
    assert shot.curve is None
    assert shot.curve_lists == CurveLists((0.0, 0.001), (0.0, 1.5), ())


# --- the record ---------------------------------------------------------------------


@pytest.fixture
def store(engine: Engine) -> Store:
    database.upgrade(engine)
    return Store(engine)


def shot(n: int, curve: ShotCurve | None) -> Shot:
    key = PartKey("p1", "m1", n)
    return Shot(key, "8412", T0 + timedelta(seconds=n), {"melt_temp_c": 700.0}, curve=curve)


def test_curves_are_stored_beside_their_shot_and_read_back_exactly(store: Store) -> None:
    curves = sim_curves(3)
    assert store.record_shots([shot(i, c) for i, c in enumerate(curves)] + [shot(9, None)]) == 4
    assert store.record_shots([shot(0, curves[0])]) == 0  # idempotent
    for i, curve in enumerate(curves):
        assert store.shot_curve(PartKey("p1", "m1", i)) == curve
    assert store.shot_curve(PartKey("p1", "m1", 9)) is None
    assert store.count(t.shot_curves) == 3
    assert store.part(PartKey("p1", "m1", 0))["shot"]["curve"] is None  # type: ignore[index]
    lists = replace(shot(10, None), curve_lists=CurveLists((0.0,), (1.0,), ()))
    store.record_shots([lists])
    assert store.part(PartKey("p1", "m1", 10))["shot"]["curve"]["position_mm"] == [1.0]  # type: ignore[index]


def test_a_large_batch_of_the_line_stores_its_curves_too(store: Store) -> None:
    """300 shots: on PostgreSQL the batch goes through COPY, bytes included."""
    curves = sim_curves(300, seed=2)
    facts = Facts(machines={("p1", "m1")}, shots=[shot(i, c) for i, c in enumerate(curves)])
    record_facts(store.engine, facts)
    record_facts(store.engine, facts)
    assert store.count(t.shot_curves) == 300
    assert store.shot_curve(PartKey("p1", "m1", 299)) == curves[299]
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.sum(func.length(t.shot_curves.c.data)))).scalar_one()
    assert stored / 300 < 7000  # bytes per shot (about 0.75 s at 2 kHz), header included


def test_good_curves_are_those_of_ok_production_parts_of_the_die(store: Store) -> None:
    curves = sim_curves(5, seed=3)
    shots = [shot(i, c) for i, c in enumerate(curves)]
    shots[4] = replace(shots[4], trial=True)
    store.ensure_plant("p1")
    store.record_shots(shots)
    for i in range(5):
        store.record_verdict(PartKey("p1", "m1", i), Verdict.NG if i == 1 else Verdict.OK, T0)
    store.record_truth(PartKey("p1", "m1", 2), True, "cold_shut")
    store.record_review(PartKey("p1", "m1", 3), Verdict.OK, "eve", T0)
    good = store.good_curves("8412")
    assert good == [curves[3], curves[0]]  # newest first; NG, defective and trial left out
    assert store.good_curves("8412", before=T0 + timedelta(seconds=1)) == [curves[0]]
    assert store.good_curves("other") == []
