"""Shot curves where people look: the part page shows the part's curve on its die's
golden envelope, the machine page charts curve features, the overview tile counts the
shots outside the envelope today (both languages)."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from castline.domain.curve import ShotCurve
from castline.domain.curve_features import features
from castline.domain.envelope import EnvelopeCheck, learn
from castline.domain.shot import PartKey, Shot
from castline.sim.calibration import PROFILES
from castline.sim.curves import CurveFault, CurveProfile, conditions, shot_curve
from castline.sim.process import ProcessModel
from castline.store.envelopes import Envelopes
from castline.store.repository import Store
from tests.web.conftest import NOW, Plant, as_user

Seeded = tuple[FastAPI, Plant]
DIE = "D7"


def curves(n: int) -> list[ShotCurve]:
    rng = np.random.default_rng(4)
    process = ProcessModel(PROFILES[0], rng, 60.0)
    profile = CurveProfile.draw(rng, process)
    out = []
    for i in range(n):
        faults = frozenset({CurveFault.LATE_SWITCHOVER}) if i == n - 1 else frozenset()
        out.append(
            shot_curve(profile, conditions(profile, process, process.next_shot({}), faults), rng)
        )
    return out


def shots_with_curves(plant: Plant) -> None:
    made = curves(26)
    envelope = Envelopes(plant.engine).save(DIE, learn(made[:22]), "test")
    shots = []
    for i, curve in enumerate(made[22:]):
        measured = features(curve)
        assert measured is not None
        breach = "pressure_bar outside the envelope" if i == 3 else None
        shots.append(
            Shot(
                PartKey("p1", "m3", 500 + i),
                DIE,
                NOW - timedelta(minutes=5 - i),
                measured.as_parameters(),
                curve=curve,
                envelope=EnvelopeCheck(envelope.version, breach),
            )
        )
    Store(plant.engine).record_shots(shots)


def is_png(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def test_the_part_page_overlays_its_curve_on_the_envelope(
    client: TestClient, plant: Seeded
) -> None:
    shots_with_curves(plant[1])
    viewer = as_user(plant[1], "viewer")
    page = client.get("/plants/p1/parts/m3/503", headers=viewer)
    assert page.status_code == 200
    assert 'src="/api/v1/plants/p1/parts/m3/503/curve.png"' in page.text
    assert "Outside the die&#39;s golden envelope (version 1)" in page.text
    assert "Fill time (curve)" in page.text or "fill time (curve)" in page.text
    inside = client.get("/plants/p1/parts/m3/502", headers=viewer | {"Accept-Language": "zh-CN"})
    assert "在模具的标准包络线内（版本 1）" in inside.text
    chart = client.get("/api/v1/plants/p1/parts/m3/503/curve.png", headers=viewer)
    assert chart.status_code == 200 and is_png(chart.content)[1] > 500  # three panels
    assert client.get("/api/v1/plants/p1/parts/m3/999/curve.png", headers=viewer).status_code == 404


def test_the_machine_page_charts_curve_features_and_the_tile_counts_breaches(
    client: TestClient, plant: Seeded
) -> None:
    shots_with_curves(plant[1])
    viewer = as_user(plant[1], "viewer")
    page = client.get("/plants/p1/machines/m3", headers=viewer)
    assert 'src="/api/v1/plants/p1/machines/m3/curve-features.png"' in page.text
    chart = client.get("/api/v1/plants/p1/machines/m3/curve-features.png", headers=viewer)
    assert chart.status_code == 200 and is_png(chart.content)
    tiles = client.get("/api/v1/plants/p1/overview", headers=viewer).json()
    by_machine = {tile["machine"]: tile for tile in tiles}
    assert by_machine["m3"]["envelope_breaches_today"] == 1
    assert by_machine["m1"]["envelope_breaches_today"] == 0
    overview = client.get("/plants/p1", headers=viewer).text
    assert "1 shots outside the die&#39;s golden envelope today" in overview
