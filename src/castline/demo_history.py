"""`castline up`'s baseline: the simulated plant's days before castline, and the plan of
its benefit report.

On the first `castline up` of a home, go-live is the start of the simulated clock
(midnight UTC of that day). The plan is written to the home's analytics.toml (only when
the plant has no analytics file of its own): baseline the `days` before go-live,
comparison from go-live on, resampled by hour (a simulated run lasts hours, not days).
Later runs keep that plan. The baseline days are recorded through the line's batch
write (`store.facts.record_facts`, natural keys: a second run adds nothing), with the
inspector's decisions as reviews and the inspectors' hours in the labour log.
"""

from __future__ import annotations

import asyncio
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from castline.analytics import benefit
from castline.analytics.benefit_plan import PlanError
from castline.analytics.config import of
from castline.domain.shot import PartKey, Shot
from castline.settings import Settings
from castline.sim.fleet import FleetConfig, ShotEvent, StateEvent
from castline.sim.history import BeforeCastline, Day, ManualDecision, days_before
from castline.store import tables as t
from castline.store.facts import Facts, StateFact, TruthFact, record_facts
from castline.store.repository import insert_ignore

INSPECTOR = "manual inspection (simulated, before castline)"
MARK = "Written by the first `castline up`"


def go_live_of(path: Path) -> datetime | None:
    """The comparison start of the plan in an analytics file (None: no plan there)."""
    try:
        plan = tomllib.loads(path.read_text()).get("benefit", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    since = plan.get("since") if isinstance(plan, dict) else None
    return since if isinstance(since, datetime) else None


def ensure_plan(
    settings: Settings, go_live: datetime, days: int
) -> tuple[Settings, datetime | None]:
    """The settings with the plan's analytics file, and the go-live it declares (None:
    the plant's own analytics file declares no plan; nothing is written into it)."""
    path = settings.analytics_file
    if path is not None:
        return settings, go_live_of(path)
    path = settings.home / "analytics.toml"
    path.write_text(_plan_text(go_live, days))
    return settings.model_copy(update={"analytics_file": path}), go_live


def _plan_text(go_live: datetime, days: int) -> str:
    stamp = lambda at: at.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return (
        f"# {MARK} of this home: the simulated plant went live\n"
        f"# at {stamp(go_live)}; the {days} days before are simulated history without\n"
        "# castline (manual inspection, reactive maintenance). See docs/analytics.md.\n"
        "[benefit]\n"
        f"baseline_since = {stamp(go_live - timedelta(days=days))}\n"
        f"baseline_until = {stamp(go_live)}\n"
        f"since = {stamp(go_live)}\n"
        'resample_by = "hour"\n'
        "resamples = 1000\n"
        "seed = 15\n"
    )


def recorded(engine: Engine, plant: str, go_live: datetime, days: int) -> bool:
    """The baseline is there when its first day's inspection hours are."""
    log = t.labour_log
    first = go_live - timedelta(days=days)
    with engine.connect() as conn:
        found = conn.execute(
            select(log.c.hours).where(log.c.plant == plant, log.c.started_at == first)
        ).first()
    return found is not None


def backfill(
    engine: Engine,
    plant: str,
    fleet: FleetConfig,
    go_live: datetime,
    before: BeforeCastline | None = None,
) -> int:
    """Record the simulated days before go-live; the number of castings recorded."""
    before = before or BeforeCastline()
    if recorded(engine, plant, go_live, before.days):
        return 0
    castings = 0
    for day in days_before(fleet, go_live, before):
        _record_day(engine, plant, day)
        castings += len(day.decisions)
    return castings


def _record_day(engine: Engine, plant: str, day: Day) -> None:
    """One day in hourly transactions (the live line writes beside it), then its hours."""
    for hour in range(24):
        lo, hi = day.start + timedelta(hours=hour), day.start + timedelta(hours=hour + 1)
        shots = [s for s in day.shots if lo <= s.at < hi]
        states = [s for s in day.states if lo <= s.at < hi]
        facts = Facts(
            machines={(plant, s.machine) for s in shots} | {(plant, s.machine) for s in states},
            shots=[_shot(plant, s) for s in shots],
            states=[_state(plant, s) for s in states],
            truths=[_truth(plant, s) for s in shots],
        )
        if len(facts):
            record_facts(engine, facts)
            _record_decisions(engine, plant, [d for d in day.decisions if lo <= d.at < hi])
    row = {
        "plant": plant,
        "work": "inspection",
        "started_at": day.start,
        "ended_at": day.start + timedelta(days=1),
        "hours": day.inspection_h,
        "logged_by": INSPECTOR,
        "note": f"{len(day.decisions)} castings inspected by hand",
    }
    with engine.begin() as conn:
        insert_ignore(conn, t.labour_log, [row])


def _shot(plant: str, s: ShotEvent) -> Shot:
    return Shot(PartKey(plant, s.machine, s.shot_number), s.die, s.at, s.params, trial=s.trial)


def _state(plant: str, s: StateEvent) -> StateFact:
    return StateFact(plant, s.machine, s.state, s.at, s.die, s.reason)


def _truth(plant: str, s: ShotEvent) -> TruthFact:
    key = PartKey(plant, s.machine, s.shot_number)
    return TruthFact(key, s.truth.defective, s.truth.defect_type, s.truth.cause)


def _record_decisions(engine: Engine, plant: str, decisions: list[ManualDecision]) -> None:
    rows = [
        {
            "plant": plant,
            "machine": d.machine,
            "shot_number": d.shot_number,
            "cavity": 1,
            "decision": "NG" if d.rejected else "OK",
            "defect_type": None,
            "reviewer": INSPECTOR,
            "comment": "",
            "at": d.at,
        }
        for d in decisions
    ]
    with engine.begin() as conn:
        insert_ignore(conn, t.reviews, rows)


async def start(
    settings: Settings, engine: Engine, fleet: FleetConfig, go_live: datetime
) -> tuple[Settings, asyncio.Task[int] | None]:
    """Declare the plan (first run) and record the baseline beside the starting line, in
    a thread: the hall starts at once, the report at the end reads both periods."""
    before = BeforeCastline()
    settings, declared = ensure_plan(settings, go_live, before.days)
    if declared is None or not _ours(settings.analytics_file):
        return settings, None  # the plant's own file: nothing simulated into its periods
    print(f"baseline: {before.days} simulated days before {declared:%Y-%m-%d %H:%M} UTC")
    task = asyncio.create_task(
        asyncio.to_thread(backfill, engine, settings.plant, fleet, declared, before)
    )
    return settings, task


def _ours(path: Path | None) -> bool:
    try:
        return path is not None and MARK in path.read_text()
    except OSError:
        return False


async def finish(
    task: asyncio.Task[int] | None, engine: Engine, settings: Settings
) -> dict[str, Any] | None:
    """The benefit report at the end of a run, printed; its verdicts for the summary."""
    if task is not None:
        await task
    config = of(settings)
    try:
        result = await asyncio.to_thread(
            benefit.report, engine, settings.plant, config.benefit, config
        )
    except PlanError as exc:
        print(f"benefit report: {exc}")
        return None
    for r in result["rows"]:
        change = "n/a" if r["change_pct"] is None else f"{r['change_pct']:+.1f} %"
        span = "" if r["low_pct"] is None else f" [{r['low_pct']:+.1f} .. {r['high_pct']:+.1f}]"
        target = f"target {r['target_pct']:+.0f} %"
        print(f"benefit {r['metric']:22} {change}{span} {target}: {r['verdict']}")
    return {
        r["metric"]: {k: r[k] for k in ("change_pct", "low_pct", "high_pct", "verdict")}
        for r in result["rows"]
    }
