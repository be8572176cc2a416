"""Shot curves where people look: a part's curve on its die's golden envelope beside the
shots before it, and a machine's curve features over its recent shots (PNG charts)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import select

from castline.domain.shot import PartKey
from castline.domain.units import BY_NAME, CURVE_NAMES
from castline.store import tables as t
from castline.store.envelopes import Envelopes, recent_curves
from castline.store.reads import Reads
from castline.web import charts, i18n
from castline.web.api import PNG, Viewer, png
from castline.web.curve_chart import features_png, shot_curve_png
from castline.web.params import MachineId, PlantId, ShotNumber

api = APIRouter(prefix="/api/v1", tags=["castline"])
EARLIER = 5  # shots before the part drawn beside its curve
Shots = Annotated[int, Query(ge=10, le=2000, description="recent shots charted")]


@api.get("/plants/{plant}/parts/{machine}/{shot_number}/curve.png", **PNG)
def part_curve_png(
    request: Request, plant: PlantId, machine: MachineId, shot_number: ShotNumber, who: Viewer
) -> Response:
    """The part's shot curve (position, velocity, pressure from switch-over) on the
    golden envelope its shot was checked against (else its die's newest), with the
    machine's shots of the same die just before it."""
    engine = request.app.state.engine
    key = PartKey(plant, machine, shot_number)
    shot = _shot(engine, key)
    if shot is None:
        raise HTTPException(404, f"no shot {key}")
    stored = Envelopes(engine).latest(shot["die"], shot["envelope_version"])
    earlier = recent_curves(engine, key, shot["die"], EARLIER)
    curve = Reads(engine).shot_curve(key)
    t = charts.words(i18n.of_request(request))
    envelope = stored.envelope if stored else None
    return png(shot_curve_png(curve, envelope, earlier, bool(shot["envelope_breach"]), t))


@api.get("/plants/{plant}/machines/{machine}/curve-features.png", **PNG)
def curve_features_png(
    request: Request, plant: PlantId, machine: MachineId, who: Viewer, shots: Shots = 200
) -> Response:
    """The machine's curve features over its recent shots, one panel each; shots outside
    their die's envelope marked."""
    s = t.shots.c
    columns = (s.shot_number, s.envelope_breach, *(s[n] for n in CURVE_NAMES))
    query = (
        select(*columns)
        .where(s.plant == plant, s.machine == machine, s.curve_fast_velocity_mean_mps.is_not(None))
        .order_by(s.at.desc())
        .limit(shots)
    )
    with request.app.state.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)][::-1]
    t_ = charts.words(i18n.of_request(request))
    labels = {n: f"{t_.param(n)}, {BY_NAME[n].unit}" for n in CURVE_NAMES}
    return png(features_png(rows, labels, t_))


def _shot(engine: Any, key: PartKey) -> dict[str, Any] | None:
    s = t.shots.c
    query = select(s.die, s.envelope_version, s.envelope_breach).where(
        s.plant == key.plant, s.machine == key.machine, s.shot_number == key.shot_number
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return dict(row._mapping) if row else None
