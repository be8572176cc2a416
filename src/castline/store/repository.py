"""Writes of the system of record, the same on SQLite and PostgreSQL (reads: `reads.py`).

Writes are idempotent: each fact has a natural key and is inserted with
ON CONFLICT DO NOTHING, so redelivered messages and replays never add rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from castline.domain.curve import pack
from castline.domain.plant import Machine
from castline.domain.shot import PartKey, Shot
from castline.domain.states import MachineState
from castline.domain.units import NAMES
from castline.domain.verdict import PartVerdict, Verdict
from castline.store import tables as t
from castline.store.bulk import BULK_MIN_ROWS, copy_insert_ignore
from castline.store.reads import Reads

log = logging.getLogger(__name__)
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PhotoRecord:
    """A part's photo as stored: its blob, and the heat map drawn on it if there is one."""

    view: str
    at: datetime
    blob: str
    content_type: str
    heatmap: str | None = None
    verdict: Verdict | None = None  # this view's own verdict (a part of several views)
    score: float | None = None


def insert_ignore(conn: Connection, table: Table, rows: Sequence[Row]) -> int:
    """Insert rows, skipping those whose unique key exists; return rows added."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql" and len(rows) >= BULK_MIN_ROWS:
        return copy_insert_ignore(conn, table, rows)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # RETURNING counts what was really added: DBAPI rowcounts of executemany differ by driver.
    first_key = next(iter(table.primary_key.columns))
    stmt = dialect.insert(table).on_conflict_do_nothing().returning(first_key)
    return len(conn.execute(stmt, list(rows)).all())


def part_row(key: PartKey) -> Row:
    """The columns that name a part in the tables keyed by part (cavity included)."""
    return {
        "plant": key.plant,
        "machine": key.machine,
        "shot_number": key.shot_number,
        "cavity": key.cavity,
    }


def image_row(key: PartKey, photo: PhotoRecord) -> Row:
    return {
        **part_row(key),
        "view": photo.view,
        "at": photo.at,
        "blob": photo.blob,
        "content_type": photo.content_type,
        "verdict": photo.verdict.value if photo.verdict else None,
        "score": photo.score,
        "heatmap": photo.heatmap,
    }


def mark_rows(shots: Iterable[Shot]) -> list[Row]:
    """`part_marks` rows: the marked castings of cavities 2 and up (cavity 1's code is
    the shot's `data_matrix`)."""
    return [
        {**part_row(part), "data_matrix": part.data_matrix}
        for s in shots
        if s.cavities > 1
        for part in s.parts()[1:]
        if part.data_matrix is not None
    ]


def verdict_row(key: PartKey, told: PartVerdict, photo: PhotoRecord | None = None) -> Row:
    return {
        **part_row(key),
        "verdict": told.verdict.value,
        "score": told.score,
        "reason": told.reason,
        "model_version": told.model_version,
        "decided_at": told.decided_at,
        "latency_ms": told.latency_ms,
        "heatmap": photo.heatmap if photo else None,
        "regions": [asdict(r) for r in told.regions],
        "timings": told.timings,
    }


def shot_row(shot: Shot) -> Row:
    row: Row = {
        "plant": shot.key.plant,
        "machine": shot.key.machine,
        "shot_number": shot.key.shot_number,
        "die": shot.die,
        "at": shot.at,
        "data_matrix": shot.key.data_matrix,
        "trial": shot.trial,
        "extra": shot.extra,
        "curve": asdict(shot.curve_lists) if shot.curve_lists else None,  # JSON lists as sent
        "envelope_version": shot.envelope.version if shot.envelope else None,
        "envelope_breach": shot.envelope.breach if shot.envelope else None,
    }
    row.update({name: shot.params.get(name) for name in NAMES})
    return row


def curve_rows(shots: Iterable[Shot]) -> list[Row]:
    """The `shot_curves` rows of the shots that have a curve (stored by `curve.pack`)."""
    return [
        {
            "plant": s.key.plant,
            "machine": s.key.machine,
            "shot_number": s.key.shot_number,
            "rate_hz": s.curve.rate_hz,
            "samples": len(s.curve),
            "data": pack(s.curve),
        }
        for s in shots
        if s.curve is not None
    ]


class Store(Reads):
    """The plant's record, on one engine: the reads of `Reads` (`reads.py`) and the
    writes. Methods open their own transactions."""

    # --- master data -------------------------------------------------------

    def ensure_plant(self, plant: str, name: str = "") -> None:
        with self.engine.begin() as conn:
            insert_ignore(conn, t.plants, [{"id": plant, "name": name or plant}])

    def ensure_machine(self, plant: str, machine: Machine) -> None:
        self.ensure_plant(plant)
        row = {
            "plant": plant,
            "id": machine.id,
            "name": machine.name or machine.id,
            "clamp_force_t": machine.clamp_force_t,
            "views": [v.name for v in machine.views],
        }
        with self.engine.begin() as conn:
            insert_ignore(conn, t.machines, [row])

    def ensure_die(
        self,
        code: str,
        part_name: str = "",
        rated_life_shots: int = 100_000,
        machine: str | None = None,
        plant: str | None = None,
    ) -> None:
        row = {
            "code": code,
            "part_name": part_name,
            "rated_life_shots": rated_life_shots,
            "shot_counter": 0,
            "machine": machine,
            "plant": plant,
        }
        with self.engine.begin() as conn:
            insert_ignore(conn, t.dies, [row])

    # --- facts from the line -----------------------------------------------

    def record_shots(self, shots: Iterable[Shot]) -> int:
        shots = list(shots)
        rows = [shot_row(s) for s in shots]
        with self.engine.begin() as conn:
            insert_ignore(conn, t.shot_curves, curve_rows(shots))
            insert_ignore(conn, t.part_marks, mark_rows(shots))
            return insert_ignore(conn, t.shots, rows)

    def record_image(
        self, key: PartKey, view: str, at: datetime, blob: str, content_type: str = "image/jpeg"
    ) -> bool:
        row = image_row(key, PhotoRecord(view, at, blob, content_type))
        with self.engine.begin() as conn:
            return insert_ignore(conn, t.images, [row]) == 1

    def record_view(self, key: PartKey, photo: PhotoRecord) -> None:
        """One view of a part whose other views are still to come: the photo with its own
        verdict and heat map; the part's verdict follows when it is decided."""
        with self.engine.begin() as conn:
            insert_ignore(conn, t.images, [image_row(key, photo)])

    def record_verdict(
        self,
        key: PartKey,
        verdict: Verdict,
        decided_at: datetime,
        *,
        score: float | None = None,
        reason: str = "",
        model_version: str | None = None,
        latency_ms: float | None = None,
    ) -> bool:
        """Record the verdict of a part; False if the part already has one (kept as is)."""
        told = PartVerdict(verdict, decided_at, reason, score, model_version, latency_ms)
        with self.engine.begin() as conn:
            return insert_ignore(conn, t.verdicts, [verdict_row(key, told)]) == 1

    def record_told(self, parts: Sequence[tuple[PartKey, PartVerdict]]) -> None:
        """Verdicts of parts without a photo, in one transaction; kept where they exist."""
        with self.engine.begin() as conn:
            insert_ignore(conn, t.verdicts, [verdict_row(key, told) for key, told in parts])

    def record_part(
        self, key: PartKey, told: PartVerdict, photo: PhotoRecord | None = None
    ) -> None:
        """A part's verdict as the cell was told it, with its photo and heat map, in one
        transaction; what the part already has is kept as is."""
        with self.engine.begin() as conn:
            insert_ignore(conn, t.verdicts, [verdict_row(key, told, photo)])
            if photo is None:
                return
            insert_ignore(conn, t.images, [image_row(key, photo)])
            if photo.heatmap:  # the part may have been recorded before its map was drawn
                v = t.verdicts
                conn.execute(
                    update(v)
                    .where(
                        v.c.plant == key.plant,
                        v.c.machine == key.machine,
                        v.c.shot_number == key.shot_number,
                        v.c.cavity == key.cavity,
                        v.c.heatmap.is_(None),
                    )
                    .values(heatmap=photo.heatmap)
                )

    def record_state(
        self,
        plant: str,
        machine: str,
        state: MachineState,
        at: datetime,
        die: str | None = None,
        reason: str = "",
    ) -> bool:
        row = {
            "plant": plant,
            "machine": machine,
            "state": state.value,
            "at": at,
            "die": die,
            "reason": reason,
        }
        with self.engine.begin() as conn:
            return insert_ignore(conn, t.machine_states, [row]) == 1

    def record_truth(
        self, key: PartKey, defective: bool, defect_type: str | None = None, cause: str = ""
    ) -> bool:
        row = {
            **part_row(key),
            "defective": defective,
            "defect_type": defect_type,
            "cause": cause,
        }
        with self.engine.begin() as conn:
            return insert_ignore(conn, t.truths, [row]) == 1

    def record_review(
        self,
        key: PartKey,
        decision: Verdict,
        reviewer: str,
        at: datetime,
        defect_type: str | None = None,
        comment: str = "",
    ) -> bool:
        if decision not in (Verdict.OK, Verdict.NG):
            raise ValueError("a review confirms a part as OK or NG")
        row = {
            **part_row(key),
            "decision": decision.value,
            "defect_type": defect_type,
            "reviewer": reviewer,
            "comment": comment,
            "at": at,
        }
        with self.engine.begin() as conn:
            return insert_ignore(conn, t.reviews, [row]) == 1

    def record_dead_letter(
        self,
        source: str,
        reason: str,
        payload: bytes | bytearray | memoryview | str,
        received_at: datetime | None = None,
        ref: str = "",
    ) -> bool:
        """Keep an invalid message with its reason; True if it is a new letter. `ref` names
        the message where it came from (its stream sequence): a redelivery is one letter,
        two equal messages are two.

        It cannot fail for what it is given: every field is cut and cleaned to fit the
        table (`dead_letter_row`). The only errors are those of a database that cannot be
        reached (OperationalError, InterfaceError), which the caller retries later."""
        row = dead_letter_row(source, reason, payload, received_at, ref)
        try:
            return self._insert_letter(row)
        except DB_DOWN:
            raise
        except Exception as exc:  # unforeseen refusal: keep a plain-ASCII trace of it
            log.exception("dead letter from %r refused; keeping a plain copy", row["source"])
            plain = {
                **row,
                "source": _ascii(row["source"], DEAD_LETTER_SOURCE),
                "reason": _ascii(
                    f"stored without payload ({exc.__class__.__name__}): {row['reason']}",
                    DEAD_LETTER_REASON,
                ),
                "payload": b"",
            }
            try:
                return self._insert_letter(plain)
            except DB_DOWN:
                raise
            except Exception:
                log.exception("dead letter from %r not recorded", plain["source"])
                return False

    def _insert_letter(self, row: Row) -> bool:
        with self.engine.begin() as conn:
            return insert_ignore(conn, t.dead_letters, [row]) == 1


# --- dead letters: bounded, cleaned, so recording one cannot fail --------------------

DEAD_LETTER_KEEP = 64 * 1024  # payload bytes kept; the whole payload's size and hash always
DEAD_LETTER_SOURCE = 300  # characters of the topic or subject (the column's size)
DEAD_LETTER_REASON = 4000  # characters of the reason
DB_DOWN = (OperationalError, InterfaceError)  # not the message's fault: retried, not kept


def dead_letter_row(
    source: str,
    reason: str,
    payload: bytes | bytearray | memoryview | str,
    received_at: datetime | None = None,
    ref: str = "",
) -> Row:
    """The dead_letters row for whatever a message was: text cut to the columns, NUL and
    unpaired surrogates replaced (PostgreSQL refuses both), the payload's first
    DEAD_LETTER_KEEP bytes with the size and SHA-256 of all of it, and a naive or missing
    time replaced by now."""
    data = _as_bytes(payload)
    source_text = source if isinstance(source, str) else repr(source)
    ref_text = ref if isinstance(ref, str) else repr(ref)
    key = f"{source_text}\0{ref_text}\0".encode("utf-8", "surrogatepass")
    aware = isinstance(received_at, datetime) and received_at.utcoffset() is not None
    return {
        "received_at": received_at if aware else datetime.now(UTC),
        "source": _fit(source_text, DEAD_LETTER_SOURCE),
        "reason": _fit(reason if isinstance(reason, str) else repr(reason), DEAD_LETTER_REASON),
        "payload": data[:DEAD_LETTER_KEEP],
        "payload_size": len(data),
        "payload_sha256": hashlib.sha256(data).hexdigest(),
        "digest": hashlib.sha256(key + data).hexdigest(),
    }


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return repr(value).encode("utf-8", "replace")


def _fit(text: str, limit: int) -> str:
    """At most `limit` characters of valid UTF-8 without NUL; a cut is marked with '…'."""
    text = text[: limit + 1].encode("utf-8", "replace").decode("utf-8").replace("\0", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ascii(text: str, limit: int) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii").replace("\\x00", "?")[:limit]
