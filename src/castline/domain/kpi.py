"""ISO 22400-2:2014 key performance indicators of a work unit (machine, line or plant).

Pure formulas over the standard's elements (clause 5, "Elements used in KPI
descriptions"); every KPI below names the entry of clause 6, "KPI descriptions", it
implements. Times are in seconds, quantities in parts. A KPI whose denominator is zero
is undefined and returns None, never 0: an idle machine has no quality ratio.

Elements, as the standard names them:
  PBT planned busy time, APT actual production time, AUST actual unit setup time,
  PQ produced quantity, GQ good quantity, SQ scrap quantity, GPQ good parts of the
  first pass (no rework, no second look), PRI planned run time per item,
  FE failure events, TTR time to restoration of each failure.

Note on names: the standard calls unplanned down time ADOT and delay time ADET.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def availability(apt_s: float, pbt_s: float) -> float | None:
    """ "Availability" = APT / PBT."""
    return _ratio(apt_s, pbt_s)


def effectiveness(pq: float, pri_s: float, apt_s: float) -> float | None:
    """ "Effectiveness" = (PRI x PQ) / APT: planned time of what was made over the time spent."""
    return _ratio(pri_s * pq, apt_s)


def quality_ratio(gq: float, pq: float) -> float | None:
    """ "Quality ratio" = GQ / PQ."""
    return _ratio(gq, pq)


def oee(apt_s: float, pbt_s: float, planned_run_s: float, gq: float, pq: float) -> float | None:
    """ "Overall equipment effectiveness index" = availability x effectiveness x quality ratio.

    `planned_run_s` is sum(PRI x PQ) so that a unit running several dies is one figure.
    """
    a, e, q = _ratio(apt_s, pbt_s), _ratio(planned_run_s, apt_s), _ratio(gq, pq)
    return None if a is None or e is None or q is None else a * e * q


def utilization_efficiency(apt_s: float, aubt_s: float) -> float | None:
    """ "Utilization efficiency" = APT / AUBT (actual unit busy time)."""
    return _ratio(apt_s, aubt_s)


def nee(apt_s: float, aubt_s: float, planned_run_s: float, gq: float, pq: float) -> float | None:
    """ "Net equipment effectiveness index" = utilization efficiency x effectiveness x QR.

    Unlike OEE, set-up time is not a loss: AUBT is the busy time less set-up.
    """
    u, e, q = _ratio(apt_s, aubt_s), _ratio(planned_run_s, apt_s), _ratio(gq, pq)
    return None if u is None or e is None or q is None else u * e * q


def scrap_ratio(sq: float, pq: float) -> float | None:
    """ "Scrap ratio" = SQ / PQ."""
    return _ratio(sq, pq)


def first_pass_yield(gpq: float, pq: float) -> float | None:
    """ "First pass yield" = GPQ / PQ: good at the first decision, no second look."""
    return _ratio(gpq, pq)


def mtbf(apt_s: float, failures: int) -> float | None:
    """ "Mean operating time between failures" = APT / FE (seconds)."""
    return _ratio(apt_s, failures)


def mttr(repair_s: float, failures: int) -> float | None:
    """ "Mean time to restoration" = sum of TTR / FE (seconds)."""
    return _ratio(repair_s, failures)


def escape_rate(escapes: int, gq: int) -> float | None:
    """Escapes over the parts castline passed (the good ones and the escapes): not an ISO
    22400 KPI; the share of passed parts a downstream station (X-ray, leak test) found NG."""
    return _ratio(escapes, gq + escapes)


@dataclass(slots=True)
class Elements:
    """The measured elements of one work unit over one period; they add up across units."""

    pbt_s: float = 0.0
    apt_s: float = 0.0
    setup_s: float = 0.0  # AUST
    pq: int = 0
    gq: int = 0
    sq: int = 0
    gpq: int = 0
    planned_run_s: float = 0.0  # sum of PRI x PQ over the dies made
    failures: int = 0  # FE
    repair_s: float = 0.0  # sum of TTR
    downtime_by: dict[str, float] = field(default_factory=dict)
    escapes: int = 0  # parts castline passed that a downstream station found NG
    trial_shots: int = 0  # warm-up shots, scrap by rule: not in PQ, reported apart

    def __add__(self, other: Elements) -> Elements:
        downtime = dict(self.downtime_by)
        for k, v in other.downtime_by.items():
            downtime[k] = downtime.get(k, 0.0) + v
        return Elements(
            self.pbt_s + other.pbt_s,
            self.apt_s + other.apt_s,
            self.setup_s + other.setup_s,
            self.pq + other.pq,
            self.gq + other.gq,
            self.sq + other.sq,
            self.gpq + other.gpq,
            self.planned_run_s + other.planned_run_s,
            self.failures + other.failures,
            self.repair_s + other.repair_s,
            downtime,
            self.escapes + other.escapes,
            self.trial_shots + other.trial_shots,
        )

    @property
    def aubt_s(self) -> float:
        return self.pbt_s - self.setup_s


def kpis(e: Elements) -> dict[str, float | None]:
    """Every KPI of one set of elements, by name, ready for a table or JSON."""
    return {
        "availability": availability(e.apt_s, e.pbt_s),
        "effectiveness": _ratio(e.planned_run_s, e.apt_s),
        "quality_ratio": quality_ratio(e.gq, e.pq),
        "oee": oee(e.apt_s, e.pbt_s, e.planned_run_s, e.gq, e.pq),
        "nee": nee(e.apt_s, e.aubt_s, e.planned_run_s, e.gq, e.pq),
        "scrap_ratio": scrap_ratio(e.sq, e.pq),
        "first_pass_yield": first_pass_yield(e.gpq, e.pq),
        "mtbf_s": mtbf(e.apt_s, e.failures),
        "mttr_s": mttr(e.repair_s, e.failures),
        "escape_rate": escape_rate(e.escapes, e.gq),
    }


def as_row(e: Elements) -> dict[str, object]:
    """Elements and KPIs flat in one dict."""
    row: dict[str, object] = {k: v for k, v in asdict(e).items() if k != "downtime_by"}
    row.update(kpis(e))
    return row
