"""Import of historical shots from an MES export (CSV), through a declarative mapping.

Idempotent: every row becomes the same shot key each time, and the store skips keys
it has. Bad rows are counted with their reason, never dropped silently; a reading
outside its physical range (a sensor fault) is stored as "not measured" with the raw
value kept in `extra["implausible"]`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine
from tqdm import tqdm

from castline.analytics.mapping import Mapping
from castline.domain.plant import Machine
from castline.domain.states import MachineState
from castline.domain.units import BY_NAME, NAMES
from castline.store import tables as t
from castline.store.repository import Store, insert_ignore

UNSEEN_STOP = timedelta(minutes=30)  # a longer gap between shots is a stop
PLANNED_GAP = timedelta(hours=8)  # a gap this long was not scheduled production
DEFAULT_CYCLE_S = 120.0


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    shots_added: int = 0
    truths_added: int = 0
    states_added: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> rows
    implausible: Counter[str] = field(default_factory=Counter)  # parameter -> readings

    def lines(self) -> list[str]:
        out = [
            f"rows read: {self.rows}",
            f"shots added: {self.shots_added} (already there: "
            f"{self.rows - sum(self.rejected.values()) - self.shots_added})",
            f"truths added: {self.truths_added}, machine states added: {self.states_added}",
        ]
        out += [f"rejected, {reason}: {n}" for reason, n in sorted(self.rejected.items())]
        out += [
            f"implausible {name} (stored as not measured): {n}"
            for name, n in sorted(self.implausible.items())
        ]
        return out


def frame_of(chunk: pd.DataFrame, mapping: Mapping) -> tuple[pd.DataFrame, Counter[str]]:
    """Shots of a chunk of source rows in castline terms, and rejected rows by reason."""
    rejected: Counter[str] = Counter()
    local = pd.to_datetime(chunk[mapping.timestamp], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    counter = pd.to_numeric(chunk[mapping.counter], errors="coerce")
    die = chunk[mapping.die].astype("string").str.strip()
    checks = {
        f"unreadable {mapping.timestamp}": local.isna(),
        f"no {mapping.die}": die.isna() | (die == ""),
        f"no shot counter {mapping.counter}": counter.isna() | (counter < 0),
    }
    bad = pd.Series(False, index=chunk.index)
    for reason, mask in checks.items():
        new = mask & ~bad  # a row counts once, under its first reason
        if new.any():
            rejected[reason] += int(new.sum())
        bad |= mask
    good = ~bad
    local, counter, die, chunk = local[good], counter[good].astype(np.int64), die[good], chunk[good]
    out = pd.DataFrame(index=chunk.index)
    out["die"] = die.str.removesuffix(".0")
    out["machine"] = out["die"].map(mapping.machine_of)
    out["at"] = local.dt.tz_localize(
        mapping.timezone, ambiguous="NaT", nonexistent="NaT"
    ).dt.tz_convert("UTC")
    out["shot_number"] = local.dt.strftime("%y%m%d%H%M%S").astype(np.int64) * 1000 + counter % 1000
    out["counter"] = counter
    for col in mapping.columns:
        out[col.parameter] = (
            pd.to_numeric(chunk[col.source], errors="coerce") * col.scale + col.offset
        )
    out["trial"] = (
        chunk[mapping.trial].astype("string").isin(mapping.trial_values) if mapping.trial else False
    )
    if mapping.state:
        out["state"] = chunk[mapping.state].map(mapping.states)
    if mapping.defective:
        out["defective"] = pd.to_numeric(chunk[mapping.defective], errors="coerce")
    mapped = {c.source for c in mapping.columns} | set(mapping.ignored)
    if mapping.trial:
        mapped.add(mapping.trial)
    extra_cols = [c for c in chunk.columns if c not in mapped]
    extra = chunk[extra_cols].copy()
    for name in extra_cols:  # numbers stay numbers in `extra`
        numbers = pd.to_numeric(extra[name], errors="coerce")
        if numbers.notna().sum() == extra[name].notna().sum():
            extra[name] = numbers.where(numbers != mapping.missing.get(name, np.nan))
    out["extra"] = pd.Series(extra.to_dict("records"), index=out.index, dtype=object)
    return out, rejected


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rows(frame: pd.DataFrame, plant: str, report: ImportReport) -> list[dict[str, Any]]:
    params = [n for n in NAMES if n in frame]
    rows = []
    for rec in frame.to_dict("records"):
        extra = {k: _clean(v) for k, v in rec["extra"].items()}
        extra["counter"] = int(rec["counter"])
        implausible = {}
        row: dict[str, Any] = {
            "plant": plant,
            "machine": rec["machine"],
            "shot_number": int(rec["shot_number"]),
            "die": rec["die"],
            "at": rec["at"].to_pydatetime(),
            "trial": bool(rec["trial"]),
            "data_matrix": None,
            "curve": None,
        }
        for name in NAMES:
            v = _clean(rec[name]) if name in params else None
            if v is not None and not BY_NAME[name].low <= v <= BY_NAME[name].high:
                implausible[name] = v
                report.implausible[name] += 1
                v = None
            row[name] = v
        if implausible:
            extra["implausible"] = implausible
        row["extra"] = extra
        rows.append(row)
    return rows


@dataclass(slots=True)
class _Seen:
    """Per machine: its last state and last shot (with that shot's cycle time)."""

    state: str
    at: datetime
    cycle_s: float


def _state_changes(frame: pd.DataFrame, plant: str, seen: dict[str, _Seen]) -> list[dict[str, Any]]:
    """State rows from an export that only flags each shot running or stopped.

    A state row where a machine's state differs from its previous shot's. A gap in the
    shots is a stop the export does not show: from one cycle after the last shot the
    machine is offline (unplanned, ISO 22400 downtime) if the gap is under
    `PLANNED_GAP`, else in a planned stop (no production was scheduled).
    """
    rows = []

    def row(machine: str, state: str, at: datetime, reason: str) -> None:
        die = machine.removeprefix("die-")
        rows.append(
            {
                "plant": plant,
                "machine": machine,
                "state": state,
                "at": at,
                "die": die,
                "reason": reason,
            }
        )

    columns = frame.reindex(columns=["machine", "state", "at", "cycle_time_s"])
    for machine, state, stamp, cycle in columns.itertuples(index=False):
        if not isinstance(state, str):
            continue
        at = stamp.to_pydatetime()
        cycle_s = float(cycle) if cycle == cycle and 0 < cycle < 600 else DEFAULT_CYCLE_S
        last = seen.get(machine)
        if last is not None:
            stop = last.at + timedelta(seconds=last.cycle_s)
            gap = at - last.at
            if gap > UNSEEN_STOP and stop < at:
                planned = gap >= PLANNED_GAP
                kind = MachineState.PLANNED_STOP if planned else MachineState.OFFLINE
                row(machine, kind.value, stop, f"no shots for {gap} (imported)")
                last.state = kind.value
        if last is None or last.state != state:
            row(machine, state, at, "imported")
        seen[machine] = _Seen(state, at, cycle_s)
    return rows


def _timed(chunk: pd.DataFrame, mapping: Mapping, report: ImportReport) -> pd.DataFrame:
    """The chunk's rows in castline's terms; rejected rows and rows without a time counted."""
    frame, rejected = frame_of(chunk, mapping)
    report.rejected.update(rejected)
    no_time = frame["at"].isna()
    if no_time.any():  # local time that does not exist or repeats (clock change)
        reason = "local time skipped or repeated by a clock change"
        report.rejected[reason] += int(no_time.sum())
    return frame[~no_time]


def _truths(frame: pd.DataFrame, plant: str) -> list[dict[str, Any]]:
    """Ground truth rows of the shots whose export says defective (1) or good (0)."""
    if "defective" not in frame:
        return []
    keyed = frame[["machine", "shot_number", "defective"]].itertuples(index=False)
    return [
        {
            "plant": plant,
            "machine": m,
            "shot_number": int(n),
            "defective": bool(d == 1),
            "defect_type": None,
            "cause": "",
        }
        for m, n, d in keyed
        if d in (0, 1)
    ]


def _export_ends(plant: str, last_seen: dict[str, _Seen]) -> list[dict[str, Any]]:
    """A planned stop one cycle after each machine's last shot of the export."""
    return [
        {
            "plant": plant,
            "machine": m,
            "state": MachineState.PLANNED_STOP.value,
            "at": last.at + timedelta(seconds=last.cycle_s),
            "die": m.removeprefix("die-"),
            "reason": "end of the export (imported)",
        }
        for m, last in last_seen.items()
    ]


def import_shots(
    engine: Engine,
    path: Path,
    mapping: Mapping,
    plant: str,
    *,
    batch: int = 2000,
    limit: int | None = None,
    progress: bool = True,
) -> ImportReport:
    """Import a CSV export; safe to run again on the same file (adds nothing)."""
    store = Store(engine)
    store.ensure_plant(plant)
    report = ImportReport()
    before = {tbl: store.count(tbl, plant=plant) for tbl in (t.shots, t.truths, t.machine_states)}
    with path.open("rb") as fh:
        total = max(sum(1 for _ in fh) - 1, 0)
    if limit is not None:
        total = min(total, limit)
    known: set[str] = set()
    last_seen: dict[str, _Seen] = {}
    reader = pd.read_csv(path, chunksize=batch, nrows=limit, encoding="utf-8-sig", dtype=str)
    with tqdm(total=total, unit="shot", desc=f"import {path.name}", disable=not progress) as bar:
        for chunk in reader:
            report.rows += len(chunk)
            frame = _timed(chunk, mapping, report)
            for machine, die in frame[["machine", "die"]].drop_duplicates().itertuples(index=False):
                if machine not in known:
                    store.ensure_machine(plant, Machine(machine))
                    store.ensure_die(die, machine=machine, plant=plant)
                    known.add(machine)
            states = _state_changes(frame, plant, last_seen) if "state" in frame else []
            with engine.begin() as conn:
                insert_ignore(conn, t.shots, _rows(frame, plant, report))
                insert_ignore(conn, t.truths, _truths(frame, plant))
                insert_ignore(conn, t.machine_states, states)
            bar.update(len(chunk))
    if limit is None:  # the export ends: its machines stop after their last shot
        with engine.begin() as conn:
            insert_ignore(conn, t.machine_states, _export_ends(plant, last_seen))
    report.shots_added = store.count(t.shots, plant=plant) - before[t.shots]
    report.truths_added = store.count(t.truths, plant=plant) - before[t.truths]
    report.states_added = store.count(t.machine_states, plant=plant) - before[t.machine_states]
    return report
