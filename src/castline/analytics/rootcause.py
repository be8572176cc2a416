"""Root cause: which process parameter explains the NG parts, said in plain words.

For each parameter the shots are cut at its deciles; the band "below a cut" or "above
a cut" with the most excess NG parts (NG inside the band beyond what the rate outside
would give) is that parameter's worst band. Parameters are ranked by that excess and
each gets Wilson 95 % intervals of both NG rates and the risk ratio as effect size.
Association, not proof: the text says "higher when", never "because".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from castline.analytics import queries
from castline.domain.defects import DefectCatalogue
from castline.domain.units import (
    BY_NAME,
    NAMES,
    SOURCE_UNITS,
    VELOCITIES,
    fast_shot_doubtful,
    shown_unit,
)

Z95 = 1.959964


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class Finding:
    parameter: str
    side: str  # "<" or ">"
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
    significant: bool  # the two Wilson intervals do not overlap
    text: str
    die: str | None = None  # the die whose shots these are; None: dies pooled

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 10 else f"{v:.0f}"


def _best_cut(
    xs: np.ndarray, ngs: np.ndarray, inside: tuple[float, float], min_outside: int
) -> tuple[float, str, float, int, int] | None:
    """(excess NG, side, cut, shots inside, NG inside) of the band with the most excess
    NG among the decile cuts of the sorted `xs`, holding `inside` shots (low, high)."""
    n, total_ng = xs.size, int(ngs.sum())
    cum_ng = np.concatenate(([0], np.cumsum(ngs)))
    best: tuple[float, str, float, int, int] | None = None
    for q in np.unique(np.quantile(xs, np.linspace(0.05, 0.95, 19))):
        for side in ("<", ">"):
            # cut between distinct values: "<" takes x < q, ">" takes x > q
            k = int(np.searchsorted(xs, q, side="left" if side == "<" else "right"))
            inside_n = k if side == "<" else n - k
            inside_ng = int(cum_ng[k]) if side == "<" else total_ng - int(cum_ng[k])
            outside_n = n - inside_n
            if not inside[0] <= inside_n <= inside[1] or outside_n < min_outside:
                continue
            excess = inside_ng - inside_n * ((total_ng - inside_ng) / outside_n)
            if best is None or excess > best[0]:
                best = (excess, side, float(q), inside_n, inside_ng)
    return best


def worst_band(
    parameter: str,
    x: np.ndarray,
    ng: np.ndarray,
    min_share: float = 0.05,
    max_share: float = 0.5,
    min_shots: int = 30,
    unit: str | None = None,
) -> Finding | None:
    """The one-sided band of `parameter` with the most excess NG parts, or None.
    `unit`: as the report shows it (default: the parameter's own).

    A band holds at most `max_share` of the shots: the cause is the unusual condition.
    """
    keep = ~np.isnan(x)
    x, ng = x[keep], ng[keep]
    n, total_ng = x.size, int(ng.sum())
    if n < 2 * min_shots or total_ng == 0:
        return None
    order = np.argsort(x, kind="stable")
    smallest = max(min_shots, min_share * n)
    best = _best_cut(x[order], ng[order], (smallest, max_share * n), min_shots)
    if best is None or best[0] <= 0:
        return None
    excess, side, q, inside_n, inside_ng = best
    outside_n, outside_ng = n - inside_n, total_ng - inside_ng
    r_in, r_out = inside_ng / inside_n, outside_ng / outside_n
    ci_in, ci_out = wilson(inside_ng, inside_n), wilson(outside_ng, outside_n)
    ratio = r_in / r_out if r_out > 0 else math.inf
    p = BY_NAME.get(parameter)
    label = p.label if p else parameter
    unit = shown_unit(parameter, False) if unit is None else unit
    times = f"{ratio:.1f}x" if math.isfinite(ratio) else "far"
    text = (
        f"NG rate {times} higher when {label} {side} {_fmt(q)} {unit}".rstrip()
        + f" ({inside_n} shots: {r_in:.1%} vs {r_out:.1%} otherwise)"
    )
    return Finding(
        parameter,
        side,
        q,
        inside_n,
        inside_ng,
        outside_n,
        outside_ng,
        r_in,
        r_out,
        ci_in,
        ci_out,
        ratio,
        excess,
        ci_in[0] > ci_out[1],
        text,
    )


def rank(
    frame: pd.DataFrame, parameters: tuple[str, ...] = NAMES, die: str | None = None
) -> list[Finding]:
    """Findings for the parameters of shots with a known outcome (`ng`), worst first."""
    known = frame[frame["ng"].notna()]
    ng = known["ng"].to_numpy(dtype=float)
    doubtful = velocities_doubtful(known)
    found = []
    for name in parameters:
        if name in known:
            x = known[name].to_numpy(dtype=float)
            f = worst_band(name, x, ng, unit=shown_unit(name, doubtful))
            if f is not None:
                found.append(f if die is None else _of_die(f, die))
    return sorted(found, key=lambda f: (not f.significant, -f.excess_ng))


def velocities_doubtful(frame: pd.DataFrame) -> bool:
    """The fast shots of these shots are implausible for HPDC in m/s: their velocities
    are shown in source units (`castline.domain.units`)."""
    return fast_shot_doubtful(frame.get("fast_shot_velocity_mps")) is not None


def unit_note(frame: pd.DataFrame) -> str | None:
    """Said on the report when some die's velocities are in source units."""
    dies = [
        str(d) for d, shots in frame.groupby(frame["die"].astype(str)) if velocities_doubtful(shots)
    ]
    if not dies:
        return None
    return (
        f"{', '.join(VELOCITIES)} in {SOURCE_UNITS} for die {', '.join(dies)}: the fast shots "
        "are implausible for HPDC in m/s, so the source's unit is doubtful"
    )


def _of_die(f: Finding, die: str) -> Finding:
    return replace(f, die=die, text=f"die {die}: {f.text}")


def per_die(frame: pd.DataFrame, parameters: tuple[str, ...] = NAMES) -> list[Finding]:
    """Findings within each die, ranked together: a band that only separates one die's
    shots from another's (each die runs its own settings and its own NG rate) is no
    cause, so dies are never mixed unless asked."""
    found = [
        f
        for die, shots in frame.groupby(frame["die"].astype(str), sort=True)
        for f in rank(shots, parameters, die=str(die))
    ]
    return sorted(found, key=lambda f: (not f.significant, -f.excess_ng))


@dataclass(frozen=True, slots=True)
class CavityScrap:
    """The scrap rate of one cavity of a multi-cavity die: one cavity running hot, badly
    vented or worn shows as a rate apart from its siblings' (a die shared by all)."""

    die: str
    cavity: int
    parts: int  # castings of this cavity with a known outcome
    ng: int
    rate: float
    ci: tuple[float, float]  # Wilson 95 %
    text: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def by_cavity(frame: pd.DataFrame) -> list[CavityScrap]:
    """Scrap rate per cavity of each die that made parts in more than one cavity, by die
    and cavity."""
    known = frame[frame["ng"].notna()]
    if "cavity" not in known or known.empty:
        return []
    dies = known["die"].astype(str)
    several = {str(d) for d, n in known.groupby(dies)["cavity"].nunique().items() if n > 1}
    out = []
    for (die, number), parts in known.groupby([dies, known["cavity"].astype(int)]):
        if die not in several:
            continue
        cavity, n, ng = int(str(number)), len(parts), int((parts["ng"] == 1).sum())
        low, high = wilson(ng, n)
        text = f"die {die} cavity {cavity}: {ng} NG of {n} ({100 * ng / n:.1f} %, "
        text += f"95 % {100 * low:.1f}–{100 * high:.1f} %)"
        out.append(CavityScrap(str(die), cavity, n, ng, ng / n, (low, high), text))
    return out


def scrap_by_cavity(
    engine: Engine, plant: str, since: datetime | None = None, until: datetime | None = None
) -> list[CavityScrap]:
    """`by_cavity` of the plant's production shots in [since, until)."""
    frame = queries.shots(engine, plant, since=since, until=until)
    return by_cavity(frame[~frame["trial"].astype(bool)])


def defect_links(
    frame: pd.DataFrame, findings: list[Finding], catalogue: DefectCatalogue | None = None
) -> list[dict[str, Any]]:
    """Defect types seen on NG parts, their usual process causes, and which of those
    causes the data also points at (a significant finding)."""
    catalogue = catalogue or DefectCatalogue()
    if "defect_type" not in frame:
        return []
    pointed = {f.parameter for f in findings if f.significant}
    counts = frame.loc[frame["ng"] == 1, "defect_type"].dropna().value_counts()
    out = []
    for code, n in counts.items():
        if str(code) not in catalogue:
            out.append({"defect_type": code, "parts": int(n), "usual_causes": [], "confirmed": []})
            continue
        causes = list(catalogue.causes_of(str(code)))
        out.append(
            {
                "defect_type": code,
                "name": catalogue.get(str(code)).name,
                "parts": int(n),
                "usual_causes": causes,
                "confirmed": [c for c in causes if c in pointed],
            }
        )
    return out


def report(
    engine: Engine,
    plant: str,
    machine: str | None = None,
    die: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    pooled: bool = False,
) -> dict[str, Any]:
    """Parameters of the recorded shots (trials left out) ranked by how much they explain
    NG parts, within each die (or all dies pooled, when asked and then said so), and the
    defect types with their usual and confirmed causes."""
    frame = queries.shots(engine, plant, machine=machine, die=die, since=since, until=until)
    frame = frame[~frame["trial"].astype(bool)]
    findings = rank(frame) if pooled else per_die(frame)
    return {
        "shots": int(frame["ng"].notna().sum()),
        "ng": int((frame["ng"] == 1).sum()),
        "pooled": pooled,
        "dies": sorted(frame["die"].astype(str).unique().tolist()),
        "findings": [f.as_dict() for f in findings],
        "defects": defect_links(frame, findings),
        "cavities": [c.as_dict() for c in by_cavity(frame)],  # dies of several cavities
        "unit_note": unit_note(frame),
    }
