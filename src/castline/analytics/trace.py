"""A part's whole history, for `castline trace`: its shot, curve features and envelope
result, every photo's verdict, downstream results and the alarms open at the time.

The envelope is learnt, for the check, from the die's good shots before this one (what
castline could have known when the part was cast), at most `ENVELOPE_SHOTS` of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from castline.domain.curve_features import features
from castline.domain.envelope import MIN_SHOTS, EnvelopeError, learn, outside
from castline.domain.shot import PartKey
from castline.store.blobs import BlobStore
from castline.store.envelopes import Envelopes
from castline.store.reads import Reads

ENVELOPE_SHOTS = 100


class TraceError(LookupError):
    """No such part, or a code that names several."""


@dataclass(frozen=True, slots=True)
class EnvelopeResult:
    result: str  # inside, breach, no envelope, no curve
    learnt_from: int  # good shots of the die before this one
    breach: dict[str, Any] | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Inspection:
    view: str
    at: datetime
    photo: str  # path in the blob store
    content_type: str
    verdict: str | None
    score: float | None
    reason: str
    model_version: str | None
    decided_at: datetime | None
    heatmap: str | None  # path in the blob store


@dataclass(frozen=True, slots=True)
class PartTrace:
    part: dict[str, Any]
    shot: dict[str, Any] | None
    curve_features: dict[str, float | None] | None
    envelope: EnvelopeResult
    inspections: list[Inspection]
    downstream: list[dict[str, Any]] = field(default_factory=list)  # stations' results
    alarms: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def find(reads: Reads, data_matrix: str) -> PartKey:
    """The part marked with this code; TraceError if none or several."""
    keys = reads.parts_marked(data_matrix)
    if not keys:
        raise TraceError(f"no shot carries the data-matrix code {data_matrix!r}")
    if len(keys) > 1:
        raise TraceError(
            f"{len(keys)} parts carry {data_matrix!r}: " + ", ".join(map(str, keys[:5]))
        )
    return keys[0]


def trace(engine: Engine, key: PartKey, blobs: BlobStore) -> PartTrace:
    """The part's history; TraceError if castline never saw it."""
    reads = Reads(engine)
    found = reads.part(key)
    if found is None:
        raise TraceError(f"castline has no record of part {key}")
    shot, verdict = found["shot"], found["verdict"]
    part: dict[str, Any] = {"key": str(key), "plant": key.plant, "machine": key.machine}
    part |= {"shot_number": key.shot_number, "data_matrix": shot and shot["data_matrix"]}
    part |= {"die": shot and shot["die"], "review": found["review"], "truth": found["truth"]}
    curve = reads.shot_curve(key)
    measured = features(curve) if curve is not None else None
    envelope = _envelope(reads, shot, curve)
    at = shot["at"] if shot else verdict["decided_at"] if verdict else None
    return PartTrace(
        part=_plain(part),
        shot=_shot(shot),
        curve_features=measured.as_dict() if measured else None,
        envelope=envelope,
        inspections=[_inspection(i, verdict, blobs) for i in found["images"]],
        downstream=[_downstream(d) for d in found.get("downstream", [])],
        alarms=_plain(reads.alarms_open_at(key.plant, key.machine, at)) if at else [],
    )


def _shot(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    drop = {"id", "plant", "machine", "shot_number", "data_matrix", "extra", "curve"}
    shot = {k: v for k, v in row.items() if k not in drop}
    return _plain(shot | {"extra": row["extra"] or {}})


def _envelope(reads: Reads, shot: dict[str, Any] | None, curve: Any) -> EnvelopeResult:
    if shot is not None and shot.get("envelope_version") is not None:
        return _checked(reads, shot, curve)
    if curve is None or shot is None:
        return EnvelopeResult("no curve", 0, note="no shot curve was recorded")
    good = reads.good_curves(shot["die"], before=shot["at"], limit=ENVELOPE_SHOTS)
    good = [c for c in good if c.rate_hz == curve.rate_hz]
    if len(good) < MIN_SHOTS:
        note = f"{len(good)} good shots of die {shot['die']} before this one; need {MIN_SHOTS}"
        return EnvelopeResult("no envelope", len(good), note=note)
    try:
        envelope = learn(good)
    except EnvelopeError as exc:
        return EnvelopeResult("no envelope", len(good), note=str(exc))
    breach = outside(curve, envelope)
    if breach is None:
        return EnvelopeResult("inside", envelope.shots)
    return EnvelopeResult("breach", envelope.shots, asdict(breach))


def _checked(reads: Reads, shot: dict[str, Any], curve: Any) -> EnvelopeResult:
    """The result the line recorded against the die's stored envelope version; the
    breach's detail again from that version while the curve is kept."""
    version, said = shot["envelope_version"], shot.get("envelope_breach")
    note = f"checked by the line against envelope v{version} of die {shot['die']}"
    stored = Envelopes(reads.engine).latest(shot["die"], version)
    shots = stored.envelope.shots if stored else 0
    breach = outside(curve, stored.envelope) if stored and curve is not None else None
    if said is None:
        return EnvelopeResult("inside", shots, note=note)
    detail = asdict(breach) if breach else {"said": said}
    return EnvelopeResult("breach", shots, detail, note=f"{note}: {said}")


def _downstream(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("station", "test", "result", "defect_type", "tested_at", "received_at", "ref")
    return _plain({k: row[k] for k in keep} | {"values": row["values"] or {}, "note": row["note"]})


def _inspection(
    image: dict[str, Any], verdict: dict[str, Any] | None, blobs: BlobStore
) -> Inspection:
    # One verdict per part today (multi-view parts are decided image by image, and the
    # record keeps the part's first): each photo shows it beside.
    v = verdict or {}
    heatmap = v.get("heatmap")
    return Inspection(
        view=image["view"],
        at=image["at"],
        photo=str(blobs.path(image["blob"])),
        content_type=image["content_type"],
        verdict=v.get("verdict"),
        score=v.get("score"),
        reason=v.get("reason", ""),
        model_version=v.get("model_version"),
        decided_at=v.get("decided_at"),
        heatmap=str(blobs.path(heatmap)) if heatmap else None,
    )


def lines(t: PartTrace) -> list[str]:
    """The trace as text for people."""
    p = t.part
    out = [f"part {p['key']}  die {p['die'] or '?'}  data matrix {p['data_matrix'] or '-'}"]
    if t.shot is None:
        out.append("shot: no shot record")
    else:
        s = t.shot
        out.append(f"shot at {s['at']}{'  (trial)' if s['trial'] else ''}")
        params = {k: v for k, v in s.items() if isinstance(v, float)}
        out += [f"  {k:32} {v:g}" for k, v in params.items()]
    if t.curve_features:
        out.append("curve features:")
        out += [f"  {k:32} {_num(v)}" for k, v in t.curve_features.items()]
    e = t.envelope
    detail = e.note or (
        f"{e.breach['trace']} at {e.breach['at_ms']:.1f} ms from switch-over: "
        f"{e.breach['value']:.2f} outside {e.breach['low']:.2f}..{e.breach['high']:.2f}"
        if e.breach
        else ""
    )
    out.append(f"envelope: {e.result} (from {e.learnt_from} good shots) {detail}".rstrip())
    for i in t.inspections:
        out.append(
            f"photo {i.view} at {i.at}: {i.verdict or 'no verdict'} score {_num(i.score)} "
            f"model {i.model_version or '-'}  {i.reason}".rstrip()
        )
        out.append(f"  photo {i.photo}" + (f"  heat map {i.heatmap}" if i.heatmap else ""))
    if not t.inspections:
        out.append("photos: none recorded")
    if not t.downstream:
        out.append("downstream: none")
    for d in t.downstream:
        defect = f" {d['defect_type']}" if d["defect_type"] else ""
        out.append(
            f"downstream {d['test']} at {d['station']} {d['tested_at']}: {d['result']}{defect}"
            f"  {d['note']}".rstrip()
        )
    for a in t.alarms:
        out.append(f"alarm {a['severity']} {a['subject']} {a['rule']}: {a['message']}")
    if not t.alarms:
        out.append("alarms open at the time: none")
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
