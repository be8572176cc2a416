"""Opening a plant's MES export: its encoding, its header, and what the mapping finds in it.

An export is what the plant's MES wrote. Korean MES write CP949, Chinese ones GB18030, a
disk or transfer error leaves a bad byte mid-file, a column is renamed or missing. Each
case ends in an `ExportError` that says what was found, or in rows counted as rejected
with their reason by the importer; never in a traceback.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from castline.analytics.mapping import Mapping

# Tried in this order; the first with the fewest undecodable lines in the sample wins.
ENCODINGS = ("utf-8-sig", "cp949", "gb18030")
SAMPLE_BYTES = 1 << 20
UNDECODABLE = "\ufffd"  # what a byte the encoding cannot read becomes


class ExportError(ValueError):
    """The file cannot be imported at all; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Export:
    path: Path
    encoding: str
    encoding_detected: bool
    columns: tuple[str, ...]
    mapping: Mapping  # the mapping as this file allows it (absent optional columns dropped)
    notes: tuple[str, ...]  # what the file lacks that the mapping could have used


def open_export(path: Path, mapping: Mapping, encoding: str | None = None) -> Export:
    """Check the file before any row is read: encoding, header, required columns."""
    sample = _sample(path)
    if not sample.strip():
        raise ExportError(f"{path.name} is empty: no header line")
    chosen = encoding or detect_encoding(sample)
    try:
        header_line = sample.decode(chosen, errors="replace").splitlines()[0]
    except LookupError:
        raise ExportError(f"unknown encoding {encoding!r} (try utf-8, cp949, gb18030)") from None
    columns = tuple(c.strip() for c in next(csv.reader([header_line])))
    usable, notes = _fit(mapping, columns, path.name)
    return Export(path, chosen, encoding is None, columns, usable, tuple(notes))


def detect_encoding(sample: bytes) -> str:
    """The candidate encoding that reads the most lines of the sample without a bad byte."""
    lines = sample.splitlines()
    if len(sample) == SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the sample may end inside a character

    def bad_lines(encoding: str) -> int:
        return sum(UNDECODABLE in line.decode(encoding, errors="replace") for line in lines)

    return min(ENCODINGS, key=bad_lines)  # min keeps the first of equals: UTF-8 first


def _sample(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(SAMPLE_BYTES)


def _fit(mapping: Mapping, columns: tuple[str, ...], name: str) -> tuple[Mapping, list[str]]:
    """The mapping as far as this header allows, or an error naming what is missing."""
    have = set(columns)
    missing = [
        f"{column!r} ({role})"
        for column, role in ((mapping.die, "the die"), (mapping.counter, "the shot counter"))
        if column not in have
    ]
    fitted = mapping
    if mapping.timestamp not in have:
        if mapping.date_time and set(mapping.date_time) <= have:
            fitted = dataclasses.replace(fitted, timestamp="")  # joined from date and time
        else:
            missing.append(f"{mapping.timestamp!r} (the time of the shot)")
    if missing:
        raise ExportError(
            f"{name}: no column {', '.join(missing)} for mapping {mapping.name!r}; "
            f"the header has: {', '.join(columns[:30])}"
        )
    notes = []
    if fitted.defective and fitted.defective not in have:
        notes.append(f"no column {fitted.defective!r}: quality labels not imported")
        fitted = dataclasses.replace(fitted, defective=None)
    if fitted.trial and fitted.trial not in have:
        notes.append(f"no column {fitted.trial!r}: trial-shot flags not imported")
        fitted = dataclasses.replace(fitted, trial=None)
    if fitted.state and fitted.state not in have:
        notes.append(f"no column {fitted.state!r}: machine states not imported")
        fitted = dataclasses.replace(fitted, state=None)
    kept = tuple(c for c in fitted.columns if c.source in have)
    notes += [
        f"no column {c.source!r}: {c.parameter} not imported"
        for c in fitted.columns
        if c.source not in have
    ]
    return dataclasses.replace(fitted, columns=kept), notes
