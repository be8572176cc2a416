"""Per-shot scrap risk of a die, as JSON or CSV, for MES and quality engineers.

The model learns from every die's labelled shots before `train_until` and scores the
die's shots after it (`castline.analytics.predict.scrap_risk`, the one path the CLI
uses too). No alarm is raised from here: reading must not write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime

from castline.analytics import predict
from castline.web.api import Viewer
from castline.web.params import ID, PlantId
from castline.web.schemas import Out

api = APIRouter(prefix="/api/v1", tags=["castline"])
DieId = Annotated[str, Query(pattern=ID, max_length=64, description="die id")]
TrainUntil = Annotated[
    AwareDatetime, Query(description="learn from shots before this time (ISO 8601, zone)")
]


class ShotRiskRow(Out):
    die: str
    machine: str
    shot_number: int
    at: datetime
    risk: float  # P(NG) of the shot
    out_of_window: str  # readings that were no measurement, ";"-separated


class ScrapRisk(Out):
    die: str
    train_ng_rate: float
    rises: list[datetime]  # where the rolling risk reached 2x the recent NG rate
    shots: list[ShotRiskRow]


@api.get("/plants/{plant}/scrap-risk", response_model=ScrapRisk)
async def scrap_risk(
    request: Request,
    plant: PlantId,
    who: Viewer,
    die: DieId,
    train_until: TrainUntil,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Predicted scrap risk of each of the die's shots after `train_until`; `format=csv`
    gives the same rows as a CSV file."""
    engine = request.app.state.engine
    try:
        watch = await run_in_threadpool(predict.scrap_risk, engine, plant, die, train_until)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if format == "csv":
        return Response(
            watch.risk.to_csv(index=False),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="scrap_risk_{die}.csv"'},
        )
    return {
        "die": die,
        "train_ng_rate": watch.base_rate,
        "rises": [watch.shots["at"].iloc[i].to_pydatetime() for i in watch.rises],
        "shots": watch.risk.to_dict("records"),
    }
