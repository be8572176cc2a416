"""Response models of the JSON API: every answer has a schema in /api/v1/openapi.json.

Records read straight from a table are described from the table itself (`record`), so a
column added to the store appears here without a second list to keep. Undeclared fields
are refused (`extra="forbid"`): an answer that drifts from its schema fails the tests
instead of reaching a client unannounced.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy import JSON, Boolean, Float, Integer, LargeBinary, String, Table, Text
from sqlalchemy.types import TypeEngine

from castline.store import tables as t
from castline.store.tables import UtcDateTime


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _python_type(column_type: TypeEngine[Any]) -> Any:
    if isinstance(column_type, UtcDateTime):
        return datetime
    if isinstance(column_type, Boolean):
        return bool
    if isinstance(column_type, Integer):  # BigInteger is an Integer
        return int
    if isinstance(column_type, Float):
        return float
    if isinstance(column_type, String | Text):
        return str
    if isinstance(column_type, LargeBinary):
        return bytes
    raise TypeError(f"no response type for column type {column_type!r}")


def record(
    name: str,
    table: Table,
    json: dict[str, Any],
    extra: dict[str, Any] | None = None,
    types: dict[str, Any] | None = None,
) -> type[Out]:
    """A model of one row of `table`; JSON columns need their type in `json`, `extra`
    adds the fields a query joins in (name -> type, all optional), `types` replaces the
    type of a column the route converts."""
    fields: dict[str, Any] = {}
    for column in table.columns:
        if types and column.name in types:
            kind = types[column.name]
        elif isinstance(column.type, JSON):
            kind = json[column.name]
        else:
            kind = _python_type(column.type)
        fields[column.name] = (kind | None, ...) if column.nullable else (kind, ...)
    for key, kind in (extra or {}).items():
        fields[key] = (kind | None, None)
    return create_model(name, __base__=Out, **fields)


def many(model: type[Out]) -> Any:
    """`list[model]` for a model built by `record` (a value to mypy, not a type)."""
    return list[model]  # type: ignore[valid-type]


class DownstreamPosted(Out):
    recorded: bool  # False: the same result was recorded before
    part: str | None  # the part it joined; null: not known yet (kept, joins later)


# --- who and where -------------------------------------------------------------------


class Health(Out):
    status: Literal["ok", "degraded"]
    problems: dict[str, str] = {}  # part -> what is wrong with it


class Me(Out):
    username: str
    role: str
    plants: list[str]


class PlantOut(Out):
    id: str
    name: str


class LastVerdict(Out):
    shot_number: int
    verdict: str
    score: float | None
    decided_at: datetime
    heatmap: str | None


class MachineTile(Out):
    plant: str
    machine: str
    name: str
    state: str
    state_at: datetime | None
    die: str | None
    shot_number: int | None
    shots_today: int
    verdicts_today: dict[str, int]
    yield_today: float | None
    last: LastVerdict | None
    image: str | None
    alarms_open: int
    envelope_breaches_today: int = 0  # shots outside their die's golden envelope


class LineStatus(Out):
    """The inspection backlog; the counts are absent while it is unknown."""

    level: str
    text: str
    consumer: str | None = None
    waiting: int | None = None
    in_progress: int | None = None
    redelivered: int | None = None
    idle_pulls: int | None = None
    oldest_s: float | None = None
    checked_at: datetime | None = None
    total: int | None = None


# --- parts ---------------------------------------------------------------------------


class Region(Out):
    x: int
    y: int
    w: int
    h: int
    area_px: int
    score: float


ShotRecord = record("ShotRecord", t.shots, {"extra": dict[str, Any], "curve": list[Any]})
ShotRow = record(
    "ShotRow",
    t.shots,
    {"extra": dict[str, Any], "curve": list[Any]},
    {"verdict": str, "score": float, "model_version": str},
)
ImageRecord = record("ImageRecord", t.images, {})
_VERDICT_JSON = {"regions": list[Region], "timings": dict[str, float]}
VerdictRecord = record("VerdictRecord", t.verdicts, _VERDICT_JSON)
QueuedPart = record("QueuedPart", t.verdicts, _VERDICT_JSON, {"image": str})
ReviewRecord = record("ReviewRecord", t.reviews, {})
TruthRecord = record("TruthRecord", t.truths, {})
DownstreamRecord = record(
    "DownstreamRecord", t.downstream_results, {"values": dict[str, float | None]}
)


class PartOut(Out):
    key: str
    shot: ShotRecord | None  # type: ignore[valid-type]
    images: list[ImageRecord]  # type: ignore[valid-type]
    verdict: VerdictRecord | None  # type: ignore[valid-type]
    review: ReviewRecord | None  # type: ignore[valid-type]
    truth: TruthRecord | None  # type: ignore[valid-type]
    downstream: list[DownstreamRecord] = []  # type: ignore[valid-type]


class TrendPoint(Out):
    shot_number: int
    at: datetime
    die: str
    value: float | None
    verdict: str | None


# --- analytics -----------------------------------------------------------------------


class RuleHit(Out):
    count: int
    onset_at: datetime
    first_at: datetime
    last_at: datetime
    meaning: str


class ChartPoint(Out):
    at: datetime
    value: float
    dispersion: float | None
    rules: list[str]


class ChartRegime(Out):
    start_at: datetime
    end_at: datetime
    points: int
    baseline_points: int
    center: float
    lcl: float
    ucl: float
    sigma: float


class ControlChart(Out):
    plant: str
    machine: str
    die: str | None
    parameter: str
    unit: str
    chart: str
    points: int
    baseline_points: int
    center: float | None
    lcl: float | None
    ucl: float | None
    sigma: float | None
    sigma_floor: float
    lsl: float | None
    usl: float | None
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None
    capability_index: Literal["Cpk", "Ppk"]
    capability_note: str
    regimes: list[ChartRegime]
    misfit: str | None
    rules: dict[str, RuleHit]
    series: list[ChartPoint]


class Finding(Out):
    parameter: str
    side: str
    threshold: float
    shots_inside: int
    ng_inside: int
    shots_outside: int
    ng_outside: int
    rate_inside: float
    rate_outside: float
    ci_inside: tuple[float, float]
    ci_outside: tuple[float, float]
    risk_ratio: float
    excess_ng: float
    significant: bool
    text: str
    die: str | None  # None: dies pooled


class DefectLink(Out):
    defect_type: str
    name: str | None = None  # absent for a type outside the catalogue
    parts: int
    usual_causes: list[str]
    confirmed: list[str]


class CavityScrap(Out):
    die: str
    cavity: int
    parts: int
    ng: int
    rate: float
    ci: tuple[float, float]
    text: str


class RootCause(Out):
    shots: int
    ng: int
    pooled: bool  # False: findings within each die
    dies: list[str]
    findings: list[Finding]
    defects: list[DefectLink]
    cavities: list[CavityScrap]  # dies of several cavities: scrap rate per cavity
    unit_note: str | None  # velocities shown in source units, and why


class KpiRow(Out):
    level: str
    unit: str
    period_start: datetime
    period_end: datetime
    pbt_s: float
    apt_s: float
    setup_s: float
    pq: int
    gq: int
    sq: int
    gpq: int
    planned_run_s: float
    failures: int
    repair_s: float
    availability: float | None
    effectiveness: float | None
    quality_ratio: float | None
    oee: float | None
    nee: float | None
    scrap_ratio: float | None
    first_pass_yield: float | None
    mtbf_s: float | None
    mttr_s: float | None
    escapes: int = 0  # parts castline passed that a downstream station found NG
    escape_rate: float | None = None  # escapes / (good parts + escapes)
    trial_shots: int = 0  # warm-up shots, scrap by rule: not in PQ, reported apart
    downtime_by: dict[str, float]
    defaults_used: list[str]  # inputs the KPIs rest on that the plant has not set
    suggested_planned_cycle_s: float | None  # median recorded cycle time
    shift: str | None = None  # by=shift: the plant calendar's shift; None between shifts


class BenefitPeriod(Out):
    since: datetime
    until: datetime
    blocks: int  # resampling blocks with production
    labour_source: Literal["logged", "declared plan", "castline decisions", "none"]
    castings: float
    scrap: float
    escapes: float
    castings_with_truth: float
    unclassified_h: float
    breakdowns: float
    decided_by_person: float
    alarms_with_cause: float


class BenefitRow(Out):
    metric: str
    unit: str
    baseline: float | None
    current: float | None
    change_pct: float | None  # improvement in the target's direction
    low_pct: float | None  # bootstrap interval of change_pct
    high_pct: float | None
    target_pct: float
    verdict: Literal["met", "not met", "inconclusive", "no data"]
    met: bool  # only when the whole interval clears the target


class Benefit(Out):
    plant: str
    declared: bool  # False: the analytics file declares no periods; `problem` says why
    problem: str | None
    plan: dict[str, Any]
    baseline: BenefitPeriod | None = None
    current: BenefitPeriod | None = None
    rows: list[BenefitRow]
    assumptions: list[str]


class DieDue(Out):
    die: str
    machine: str | None
    rated_life_shots: int
    rated_life_source: Literal["configured", "die record", "default"]
    last_maintenance: datetime | None
    shots_since_maintenance: int
    shots_in_period: int
    life_used: float | None
    ng_rate: float | None
    ng_trend_pct_per_1000: float | None
    ng_rising: bool
    action: str
    reason: str


class Downtime(Out):
    machine: str
    stop_class: str  # domain.stops.StopClass: planned stops come last
    reason: str
    hours: float
    stops: int


class Reliability(Out):
    unit: str
    failures: int
    mtbf_s: float | None
    mttr_s: float | None
    availability: float | None


class Maintenance(Out):
    dies: list[DieDue]
    downtime: list[Downtime]
    machines: list[Reliability]


class ParetoRow(Out):
    defect_type: str
    parts: int


DieRecord = record("DieRecord", t.dies, {}, {"life_used": float})


class DefectType(Out):
    code: str
    name: str
    description: str


# --- review, alarms, models ----------------------------------------------------------


class ReviewDone(Out):
    part: str
    decision: str


AlarmRecord = record("AlarmRecord", t.alarms, {})


class AlarmAcked(Out):
    alarm: int
    acked_by: str


ModelRecord = record(
    "ModelRecord", t.models, {"manifest": dict[str, Any], "metrics": dict[str, Any]}
)


class ActiveModel(Out):
    die: str
    view: str
    version: str


# --- plant IT ------------------------------------------------------------------------


# the payload is shown as text (its first 2000 bytes)
DeadLetter = record("DeadLetter", t.dead_letters, {}, types={"payload": str})


class UserOut(Out):
    id: int
    username: str
    role: str
    plants: list[str]
    created_at: datetime
    key_count: int


class UserCreated(Out):
    username: str
    role: str
    plants: list[str]


class KeyInfo(Out):
    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


class NewKey(Out):
    """The key itself is in this answer only; castline keeps its SHA-256."""

    id: int
    username: str
    name: str
    key: str


class KeysRevoked(Out):
    username: str
    revoked: int


AuditRecord = record("AuditRecord", t.audit_log, {"detail": dict[str, Any]})
