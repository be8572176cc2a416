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
from sqlalchemy import Connection, Engine, select
from tqdm import tqdm

from castline.analytics.export_file import UNDECODABLE, open_export
from castline.analytics.mapping import Mapping, unit_notes
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
    encoding: str = ""
    notes: list[str] = field(default_factory=list)  # what the file lacks, and other warnings
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> rows
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first raw value
    unreadable: Counter[str] = field(default_factory=Counter)  # parameter -> non-numbers
    implausible: Counter[str] = field(default_factory=Counter)  # parameter -> readings
    label_conflicts: int = 0  # shots whose label differs from the one stored first
    out_of_order: int = 0  # rows earlier than their machine's previous row
    interrupted: bool = False

    def take(self, found: Findings) -> None:
        self.rejected.update(found.rejected)
        self.unreadable.update(found.unreadable)
        for reason, raw in found.examples.items():
            self.examples.setdefault(reason, raw)

    def lines(self) -> list[str]:
        out = [
            f"rows read: {self.rows} (encoding {self.encoding})",
            f"shots added: {self.shots_added} (already there: "
            f"{self.rows - sum(self.rejected.values()) - self.shots_added})",
            f"truths added: {self.truths_added}, machine states added: {self.states_added}",
        ]
        out += [f"note: {note}" for note in self.notes]
        out += [
            f"rejected, {reason}: {n}{self._example(reason)}"
            for reason, n in sorted(self.rejected.items())
        ]
        out += [
            f"not a number in {name} (stored as not measured): {n}{self._example(name)}"
            for name, n in sorted(self.unreadable.items())
        ]
        out += [
            f"implausible {name} (stored as not measured): {n}"
            for name, n in sorted(self.implausible.items())
        ]
        if self.label_conflicts:
            out.append(
                f"label conflicts: {self.label_conflicts} rows label a shot otherwise than "
                "the label stored first (kept the first)"
            )
        if self.out_of_order:
            out.append(
                f"out of time order: {self.out_of_order} rows earlier than their machine's "
                "previous row (shots imported; machine states taken only from rows in "
                "order: sort the export by time for exact states)"
            )
        return out

    def _example(self, key: str) -> str:
        raw = self.examples.get(key)
        return f" (first: {raw[:60]!r})" if raw is not None else ""


@dataclass(slots=True)
class Findings:
    """Rows of a chunk turned away, and readings that were not numbers, with examples."""

    rejected: Counter[str] = field(default_factory=Counter)
    unreadable: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def count(self, counter: Counter[str], key: str, mask: pd.Series, raw: pd.Series) -> None:
        if mask.any():
            counter[key] += int(mask.sum())
            self.examples.setdefault(key, str(raw[mask].iloc[0]))


def frame_of(chunk: pd.DataFrame, mapping: Mapping) -> tuple[pd.DataFrame, Findings]:
    """Shots of a chunk of source rows in castline terms, and what was turned away."""
    found = Findings()
    raw_time = _raw_time(chunk, mapping)
    local = pd.to_datetime(raw_time, errors="coerce", format="%Y-%m-%d %H:%M:%S")
    counter = pd.to_numeric(chunk[mapping.counter], errors="coerce")
    die = chunk[mapping.die].astype("string").str.strip()
    undecodable = chunk.apply(lambda c: c.str.contains(UNDECODABLE, regex=False, na=False))
    checks = {
        "undecodable bytes in the row": (undecodable.any(axis=1), raw_time),
        f"unreadable {mapping.timestamp or ' '.join(mapping.date_time or ())}": (
            local.isna(),
            raw_time,
        ),
        f"no {mapping.die}": (die.isna() | (die == ""), chunk[mapping.die]),
        f"no shot counter {mapping.counter}": (
            counter.isna() | (counter < 0),
            chunk[mapping.counter],
        ),
    }
    bad = pd.Series(False, index=chunk.index)
    for reason, (mask, raw) in checks.items():
        found.count(found.rejected, reason, mask & ~bad, raw)  # a row counts once
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
        raw = chunk[col.source]
        number = pd.to_numeric(raw, errors="coerce")
        written = raw.notna() & (raw.str.strip() != "")
        found.count(found.unreadable, col.parameter, written & number.isna(), raw)
        out[col.parameter] = number * col.scale + col.offset
    out["trial"] = (
        chunk[mapping.trial].astype("string").isin(mapping.trial_values) if mapping.trial else False
    )
    if mapping.state:
        out["state"] = chunk[mapping.state].map(mapping.states)
    if mapping.defective:
        out["defective"] = pd.to_numeric(chunk[mapping.defective], errors="coerce")
    mapped = {c.source for c in mapping.columns} | set(mapping.ignored) | {mapping.die}
    if mapping.trial:
        mapped.add(mapping.trial)
    extra_cols = [c for c in chunk.columns if c not in mapped]
    extra = chunk[extra_cols].copy()
    for name in extra_cols:  # numbers stay numbers in `extra`
        numbers = pd.to_numeric(extra[name], errors="coerce")
        if numbers.notna().sum() == extra[name].notna().sum():
            extra[name] = numbers.where(numbers != mapping.missing.get(name, np.nan))
    out["extra"] = pd.Series(extra.to_dict("records"), index=out.index, dtype=object)
    return out, found


def _raw_time(chunk: pd.DataFrame, mapping: Mapping) -> pd.Series:
    if mapping.timestamp or not mapping.date_time:
        return chunk[mapping.timestamp]
    date, time = mapping.date_time
    return chunk[date].str.strip() + " " + chunk[time].str.strip()


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


def _state_changes(
    frame: pd.DataFrame, plant: str, seen: dict[str, _Seen], report: ImportReport
) -> list[dict[str, Any]]:
    """State rows from an export that only flags each shot running or stopped.

    A state row where a machine's state differs from its previous shot's. A gap in the
    shots is a stop the export does not show: from one cycle after the last shot the
    machine is offline (unplanned, ISO 22400 downtime) if the gap is under
    `PLANNED_GAP`, else in a planned stop (no production was scheduled). A row earlier
    than its machine's previous one says nothing about states: it is counted, not used.
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
        if last is not None and at < last.at:
            report.out_of_order += 1
            continue
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
    frame, found = frame_of(chunk, mapping)
    report.take(found)
    no_time = frame["at"].isna()
    if no_time.any():  # local time that does not exist or repeats (clock change)
        reason = "local time skipped or repeated by a clock change"
        report.rejected[reason] += int(no_time.sum())
    return frame[~no_time].sort_values("at", kind="stable")  # a chunk's disorder is harmless


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
    encoding: str | None = None,
    batch: int = 2000,
    limit: int | None = None,
    progress: bool = True,
) -> ImportReport:
    """Import a CSV export; safe to run again on the same file (adds nothing).

    Streamed in chunks, each written in one transaction. Ctrl-C stops between chunks
    and returns what was done (`interrupted`); running again finishes the rest.
    """
    export = open_export(path, mapping, encoding)
    store = Store(engine)
    store.ensure_plant(plant)
    report = ImportReport(encoding=export.encoding, notes=list(export.notes))
    before = {tbl: store.count(tbl, plant=plant) for tbl in (t.shots, t.truths, t.machine_states)}
    lines = _data_lines(path)
    total = lines if limit is None else min(lines, limit)
    run = _Run(engine, store, plant, export.mapping, report)
    bar = tqdm(total=total, unit="shot", desc=f"import {path.name}", disable=not progress)
    try:
        with path.open(encoding=export.encoding, errors="replace", newline="") as fh:
            for chunk in pd.read_csv(
                fh, chunksize=batch, nrows=limit, dtype=str, on_bad_lines="skip"
            ):
                run.chunk(chunk)
                bar.update(len(chunk))
    except KeyboardInterrupt:
        report.interrupted = True
    else:
        if limit is None:
            if lines > report.rows:  # the parser skips a line with too many fields
                report.rejected["wrong number of fields"] += lines - report.rows
            run.end()
    finally:
        bar.close()
    report.notes += unit_notes(export.mapping, run.fast_shots)
    report.shots_added = store.count(t.shots, plant=plant) - before[t.shots]
    report.truths_added = store.count(t.truths, plant=plant) - before[t.truths]
    report.states_added = store.count(t.machine_states, plant=plant) - before[t.machine_states]
    return report


def _data_lines(path: Path) -> int:
    """Non-blank lines after the header: what the parser should hand back as rows."""
    with path.open("rb") as fh:
        return max(sum(1 for line in fh if line.strip()) - 1, 0)


class _Run:
    """One import's progress: machines known so far and each machine's last row."""

    def __init__(
        self, engine: Engine, store: Store, plant: str, mapping: Mapping, report: ImportReport
    ) -> None:
        self.engine, self.store, self.plant = engine, store, plant
        self.mapping, self.report = mapping, report
        self.known: set[str] = set()
        self.last_seen: dict[str, _Seen] = {}
        self.fast_shots: list[float] = []  # a sample, to judge the declared velocity unit

    def chunk(self, chunk: pd.DataFrame) -> None:
        chunk.columns = chunk.columns.str.strip()
        self.report.rows += len(chunk)
        frame = _timed(chunk, self.mapping, self.report)
        if "fast_shot_velocity_mps" in frame and len(self.fast_shots) < 100_000:
            self.fast_shots += frame["fast_shot_velocity_mps"].dropna().tolist()
        for machine, die in frame[["machine", "die"]].drop_duplicates().itertuples(index=False):
            if machine not in self.known:
                self.store.ensure_machine(self.plant, Machine(machine))
                self.store.ensure_die(die, machine=machine, plant=self.plant)
                self.known.add(machine)
        states = (
            _state_changes(frame, self.plant, self.last_seen, self.report)
            if "state" in frame
            else []
        )
        truths = _truths(frame, self.plant)
        with self.engine.begin() as conn:
            insert_ignore(conn, t.shots, _rows(frame, self.plant, self.report))
            insert_ignore(conn, t.truths, truths)
            insert_ignore(conn, t.machine_states, states)
            self.report.label_conflicts += _label_conflicts(conn, self.plant, truths)

    def end(self) -> None:
        """The export ends: its machines stop after their last shot."""
        with self.engine.begin() as conn:
            insert_ignore(conn, t.machine_states, _export_ends(self.plant, self.last_seen))


def _label_conflicts(conn: Connection, plant: str, truths: list[dict[str, Any]]) -> int:
    """Rows whose label differs from the one stored for their shot (by this or an earlier row)."""
    conflicts = 0
    by_machine: dict[str, dict[int, bool]] = {}
    for row in truths:
        by_machine.setdefault(row["machine"], {})[row["shot_number"]] = row["defective"]
    for machine, wanted in by_machine.items():
        stored = dict(
            conn.execute(
                select(t.truths.c.shot_number, t.truths.c.defective).where(
                    t.truths.c.plant == plant,
                    t.truths.c.machine == machine,
                    t.truths.c.shot_number.between(min(wanted), max(wanted)),
                )
            ).all()
        )
        conflicts += sum(
            stored.get(r["shot_number"], r["defective"]) != r["defective"]
            for r in truths
            if r["machine"] == machine
        )
    return conflicts
