"""Golden envelopes stored per die in versions, curve features as shot parameters, the
envelope rule, and the curves' retention, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from castline.domain.curve import ShotCurve
from castline.domain.curve_features import features
from castline.domain.envelope import EnvelopeCheck, EnvelopeError, describe, outside, pack, unpack
from castline.domain.envelope_rule import EnvelopeAction, held
from castline.domain.shot import PartKey, Shot
from castline.domain.units import CURVE_NAMES
from castline.domain.verdict import Verdict
from castline.sim.calibration import PROFILES
from castline.sim.curves import CurveFault, CurveProfile, conditions, shot_curve
from castline.sim.process import ProcessModel
from castline.store import database
from castline.store import tables as t
from castline.store.envelopes import Envelopes, prune_curves
from castline.store.repository import Store

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
DIE = "8412"


def sim_curves(n: int, fault: CurveFault | None = None, seed: int = 1) -> list[ShotCurve]:
    """n curves of one die (the same drawn profile); the last one with `fault`."""
    rng = np.random.default_rng(seed)
    process = ProcessModel(PROFILES[0], rng, 60.0)
    profile = CurveProfile.draw(rng, process)
    out = []
    for i in range(n):
        faults = frozenset({fault}) if fault and i == n - 1 else frozenset()
        shot = conditions(profile, process, process.next_shot({}), faults)
        out.append(shot_curve(profile, shot, rng))
    return out


CURVES = sim_curves(45)


@pytest.fixture
def store(engine: Engine) -> Store:
    database.upgrade(engine)
    store = Store(engine)
    store.ensure_plant("p1")
    return store


def good_shots(store: Store, curves: list[ShotCurve], start: int = 0) -> None:
    shots = [
        Shot(PartKey("p1", "m1", start + i), DIE, T0 + timedelta(seconds=start + i), {}, curve=c)
        for i, c in enumerate(curves)
    ]
    store.record_shots(shots)
    for s in shots:
        store.record_verdict(s.key, Verdict.OK, s.at)


def test_an_envelope_is_learnt_from_good_shots_and_stored_in_versions(store: Store) -> None:
    envelopes = Envelopes(store.engine)
    with pytest.raises(EnvelopeError, match="no good shots"):
        envelopes.learn(DIE, "auto")
    good_shots(store, CURVES[:10])
    assert envelopes.good_curve_count(DIE, up_to=100) == 10
    with pytest.raises(EnvelopeError, match="need 20"):
        envelopes.learn(DIE, "auto")
    good_shots(store, CURVES[10:40], start=10)
    assert envelopes.good_curve_count(DIE, up_to=25) == 25
    first = envelopes.learn(DIE, "auto")
    second = envelopes.learn(DIE, "eve asked")
    assert (first.version, second.version) == (1, 2)
    latest = envelopes.latest(DIE)
    assert latest is not None and latest.version == 2 and latest.reason == "eve asked"
    assert latest.envelope.shots == 40 and envelopes.versions() == {DIE: 2}
    assert [h["version"] for h in envelopes.history(DIE)] == [2, 1]
    assert envelopes.latest("other") is None
    good, bad = CURVES[44], sim_curves(45, CurveFault.LATE_SWITCHOVER)[-1]
    assert outside(good, latest.envelope) is None
    assert outside(bad, latest.envelope) is not None


def test_the_stored_envelope_reads_back_exactly_and_junk_is_refused() -> None:
    from castline.domain.envelope import learn

    envelope = learn(sim_curves(25))
    back = unpack(pack(envelope))
    assert (back.rate_hz, back.before, back.shots, len(back)) == (
        envelope.rate_hz,
        envelope.before,
        envelope.shots,
        len(envelope),
    )
    for name in envelope.low:  # float32 in the record
        assert np.allclose(back.low[name], envelope.low[name], rtol=1e-6, atol=1e-4)
    with pytest.raises(EnvelopeError):
        unpack(b"not an envelope")


def test_curve_features_are_stored_as_shot_parameters_with_the_envelope_result(
    store: Store,
) -> None:
    curve = sim_curves(1)[0]
    measured = features(curve)
    assert measured is not None
    params = measured.as_parameters()
    assert set(params) == set(CURVE_NAMES) and params["curve_fill_time_ms"] is not None
    key = PartKey("p1", "m1", 1)
    check = EnvelopeCheck(3, "pressure_bar outside the envelope")
    store.record_shots([Shot(key, DIE, T0, params, curve=curve, envelope=check)])
    with store.engine.connect() as conn:
        row = conn.execute(select(t.shots).where(t.shots.c.shot_number == 1)).one()
    assert row.curve_fill_time_ms == pytest.approx(params["curve_fill_time_ms"])
    assert (row.envelope_version, row.envelope_breach) == (3, check.breach)


@pytest.mark.parametrize(
    ("verdict", "action", "expected"),
    [
        (Verdict.OK, EnvelopeAction.REVIEW, Verdict.REVIEW),
        (Verdict.OK, EnvelopeAction.NG, Verdict.NG),
        (Verdict.OK, EnvelopeAction.NONE, Verdict.OK),
        (Verdict.NG, EnvelopeAction.REVIEW, Verdict.NG),
        (Verdict.REVIEW, EnvelopeAction.NG, Verdict.NG),
        (Verdict.QUARANTINE, EnvelopeAction.NG, Verdict.QUARANTINE),
    ],
)
def test_the_envelope_rule_holds_a_part_at_least_as_the_die_says(
    verdict: Verdict, action: EnvelopeAction, expected: Verdict
) -> None:
    got, reason = held(verdict, "photo", "pressure_bar low", action)
    assert got is expected
    assert ("pressure_bar low" in reason) is (action is not EnvelopeAction.NONE)
    assert held(verdict, "photo", None, action) == (verdict, "photo")


def test_retention_prunes_old_curves_and_keeps_shots_and_features(store: Store) -> None:
    curves = sim_curves(5)
    shots = [
        Shot(
            PartKey("p1", "m1", i),
            DIE,
            T0 + timedelta(days=i),
            {"curve_fill_time_ms": 40.0},
            curve=c,
        )
        for i, c in enumerate(curves)
    ]
    store.record_shots(shots)
    assert prune_curves(store.engine, T0 + timedelta(days=2, hours=1)) == 3
    assert prune_curves(store.engine, T0 + timedelta(days=2, hours=1)) == 0
    assert store.shot_curve(PartKey("p1", "m1", 2)) is None
    assert store.shot_curve(PartKey("p1", "m1", 3)) == curves[3]
    assert store.count(t.shots) == 5 and store.count(t.shot_curves) == 2
    with store.engine.connect() as conn:
        kept = conn.execute(select(t.shots.c.curve_fill_time_ms)).scalars().all()
    assert kept == [40.0] * 5


def test_envelope_commands_learn_list_and_prune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from castline.cli import app
    from castline.settings import load

    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    store = Store(database.open_store(load().db_url))
    store.ensure_plant("p1")
    runner = CliRunner()
    refused = runner.invoke(app, ["envelope", "learn", DIE])
    assert refused.exit_code == 1 and "no good shots" in refused.output
    good_shots(store, CURVES[:30])
    learnt = runner.invoke(app, ["envelope", "learn", DIE])
    assert learnt.exit_code == 0 and "envelope v1 from 30 good shots" in learnt.output
    listed = runner.invoke(app, ["envelope", "list", DIE])
    assert listed.output.startswith("v1 ") and "asked by" in listed.output
    kept = runner.invoke(app, ["envelope", "prune", "--days", "36500"])
    assert kept.output.startswith("deleted 0 ") and store.count(t.shot_curves) == 30
    assert runner.invoke(app, ["envelope", "prune", "--days", "0"]).output.startswith("deleted")
    assert store.count(t.shot_curves) == 0


def test_trace_reports_the_envelope_result_the_line_recorded(store: Store, tmp_path: Path) -> None:
    from castline.analytics.trace import trace
    from castline.store.blobs import BlobStore

    good_shots(store, CURVES[:30])
    stored = Envelopes(store.engine).learn(DIE, "auto")
    faulty = sim_curves(45, CurveFault.LATE_SWITCHOVER)[-1]
    breach = outside(faulty, stored.envelope)
    assert breach is not None
    key = PartKey("p1", "m1", 100)
    check = EnvelopeCheck(stored.version, describe(breach))
    store.record_shots([Shot(key, DIE, T0 + timedelta(hours=1), {}, curve=faulty, envelope=check)])
    found = trace(store.engine, key, BlobStore(tmp_path / "blobs")).envelope
    assert found.result == "breach" and "v1" in found.note
    assert found.breach is not None and found.breach["trace"] == breach.trace
    prune_curves(store.engine, T0 + timedelta(days=1))  # the curve is gone, the result stays
    found = trace(store.engine, key, BlobStore(tmp_path / "blobs")).envelope
    assert found.result == "breach" and found.breach == {"said": check.breach}
