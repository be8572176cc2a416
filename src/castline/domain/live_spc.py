"""Control charts fed as shots arrive: one chart set per machine, die and set-point regime.

The same default rules as `castline report spc` (analytics/spc.py): rule 1 on I-MR limits
with a sigma floor at the sensor's resolution, and EWMA and CUSUM for slow drift, widened
for autocorrelation. Limits come from the first `baseline_shots` shots of the die on the
machine (or of the regime), or from a stored baseline. Not checked: trial shots and the
warm-up shots after a long pause (the die cooled). When rule 1 fires on most of the recent
shots the process runs at a new level: one "level shift" alarm names every parameter that
moved, and limits are learnt anew for the new regime, instead of an alarm per shot.

A batch of shots is checked at once: the readings of a chart set are one matrix (shots x
parameters), the EWMA one linear filter and each CUSUM one cumulative sum, so the cost per
shot is a few numpy operations shared by every parameter. Detectors restart at the centre
after they signal, at the end of the batch; a drift that persists signals again and
counts on its open alarm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter
from scipy.stats import norm

from castline.domain import spc
from castline.domain.alarms import DRIFT, LEVEL_SHIFT, RULE1, Alarm
from castline.domain.units import BY_NAME

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChartRules:
    baseline_shots: int = 100
    # In-control shots of one machine and die between two false alarms, all its charted
    # parameters and detectors together. Twelve parameters with textbook 3-sigma limits,
    # EWMA and CUSUM would cry wolf about every ten shots; the widths are set so the chart
    # set as a whole keeps this run length (a sustained shift of two sigmas still signals
    # within a few shots: CUSUM adds it up).
    false_alarm_shots: float = 20_000.0
    lam: float = 0.2  # EWMA weight
    cusum_k: float = 0.5
    shift_share: float = 0.8  # rule 1 on this share of recent shots: a new level
    shift_window: int = 50  # shots that share is taken over
    restart_gap: timedelta = timedelta(minutes=30)  # a longer pause: the die cooled
    warmup_shots: int = 10  # after such a pause: not checked

    def widths(self, parameters: int) -> Widths:
        """Rule-1 limit and EWMA width in sigmas and CUSUM decision interval, each test
        (3 per parameter) given an equal share of the chart set's false alarms."""
        rate = 1.0 / (self.false_alarm_shots * 3 * max(parameters, 1))
        z = float(norm.isf(rate / 2))
        return Widths(z, z, _cusum_h(self.cusum_k, 2.0 / rate))


@dataclass(frozen=True, slots=True)
class Widths:
    rule1: float  # sigmas of one shot
    ewma: float  # sigmas of the EWMA statistic (steady state)
    cusum_h: float  # drift sigmas


def _cusum_h(k: float, arl: float) -> float:
    """Decision interval of a one-sided CUSUM with in-control run length `arl`
    (Siegmund's approximation, solved by bisection)."""

    def run_length(h: float) -> float:
        b = 2 * k * (h + 1.166)
        return (math.exp(b) - b - 1) / (2 * k * k)

    lo, hi = 0.5, 60.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if run_length(mid) < arl else (lo, mid)
    return hi


@dataclass(frozen=True, slots=True)
class Baseline:
    """Limits of one chart set: per parameter centre, sigma of a shot, sigma for drift."""

    names: tuple[str, ...]
    center: Floats
    sigma: Floats
    drift_sigma: Floats
    shots: int

    @property
    def charted(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.sigma)))

    def as_record(self) -> dict[str, dict[str, float]]:
        """Per charted parameter: centre, sigma of a shot, sigma for drift (JSON-ready)."""
        return {
            name: {"center": c, "sigma": s, "drift_sigma": d}
            for name, c, s, d in zip(
                self.names,
                self.center.tolist(),
                self.sigma.tolist(),
                self.drift_sigma.tolist(),
                strict=True,
            )
            if not math.isnan(s)
        }

    @classmethod
    def of_record(
        cls, names: tuple[str, ...], limits: dict[str, dict[str, float]], shots: int
    ) -> Baseline:
        """A stored baseline in the order of `names` (a parameter it lacks is not charted)."""
        nan = {"center": math.nan, "sigma": math.nan, "drift_sigma": math.nan}
        rows = [limits.get(name, nan) for name in names]
        column = [np.array([float(r[k]) for r in rows]) for k in ("center", "sigma", "drift_sigma")]
        return cls(names, column[0], column[1], column[2], shots)


def learn(names: tuple[str, ...], rows: Floats) -> Baseline:
    """Baseline of a regime from its first shots (rows: shots x parameters, NaN = not
    measured): I-MR sigma floored at the sensor's resolution, drift sigma widened by the
    lag-1 autocorrelation (as analytics/spc does)."""
    p = len(names)
    center, sigma, dsigma = np.full(p, np.nan), np.full(p, np.nan), np.full(p, np.nan)
    for j in range(p):
        x = rows[:, j][~np.isnan(rows[:, j])]
        if x.size < 2:
            continue  # a parameter this machine does not measure: not charted
        limits = spc.individuals_limits(x, floor=spc.resolution(x))
        # A wandering process (die temperatures follow the cycle, the melt the furnace)
        # has a short-term spread below its overall one: limits from the moving range
        # alone would flag its ordinary wander, so the wider of the two sets them.
        sigma[j] = max(limits.sigma, float(np.std(x, ddof=1)))
        center[j] = limits.center
        dsigma[j] = spc.drift_sigma(sigma[j], spc.lag1(x))
    return Baseline(names, center, sigma, dsigma, int(rows.shape[0]))


@dataclass(slots=True)
class _Detectors:
    ewma: Floats  # deviation of the EWMA from the centre
    up: Floats
    down: Floats
    share: Floats  # smoothed share of rule-1 hits
    checked: int = 0

    @classmethod
    def fresh(cls, p: int) -> _Detectors:
        z = np.zeros(p)
        return cls(z.copy(), z.copy(), z.copy(), z.copy())


@dataclass(slots=True)
class ChartSet:
    """The charts of one machine and die; `regime` counts the levels it has run at."""

    plant: str
    machine: str
    die: str
    names: tuple[str, ...]
    rules: ChartRules = field(default_factory=ChartRules)
    baseline: Baseline | None = None
    regime: int = 0
    _learning: list[Floats] = field(default_factory=list)
    _detectors: _Detectors | None = None
    _last_at: datetime | None = None
    _warm: int = 0  # warm-up shots still to skip
    _widths: Widths = field(default_factory=lambda: Widths(3.0, 3.0, 5.0))
    learnt: bool = False  # a baseline was learnt since the owner last looked

    def start_from(self, baseline: Baseline) -> None:
        """Use a stored baseline instead of learning one."""
        if baseline.names != self.names:
            raise ValueError("a baseline must chart the same parameters, in the same order")
        self.baseline, self._learning = baseline, []
        self._detectors = _Detectors.fresh(len(self.names))
        self._widths = self.rules.widths(baseline.charted)

    def feed(self, times: list[datetime], readings: Floats) -> list[Alarm]:
        """Shots in time order: their times and readings (shots x `names`, NaN = not
        measured); the alarms they raise."""
        checked: list[int] = []
        for i, at in enumerate(times):
            if self._skips(at):
                continue
            if self.baseline is None:
                self._learning.append(readings[i])
                if len(self._learning) >= self.rules.baseline_shots:
                    self.start_from(learn(self.names, np.vstack(self._learning)))
                    self.learnt = True
                continue
            checked.append(i)
        if not checked:
            return []
        if len(checked) == len(times):  # the common case: no copy
            return self._check(readings, times)
        return self._check(readings[checked], [times[i] for i in checked])

    def _skips(self, at: datetime) -> bool:
        gap = self._last_at is not None and at - self._last_at > self.rules.restart_gap
        self._last_at = at
        if gap:
            self._warm = self.rules.warmup_shots
        if self._warm > 0:
            self._warm -= 1
            return True
        return False

    def _check(self, x: Floats, times: list[datetime]) -> list[Alarm]:
        assert self.baseline is not None and self._detectors is not None
        b, d, r, w = self.baseline, self._detectors, self.rules, self._widths
        dev = x - b.center
        dev = np.where(np.isnan(dev), 0.0, dev)  # not measured: no deviation
        beyond = np.abs(dev) > w.rule1 * b.sigma  # never where sigma is NaN (not charted)
        steps = _steps(dev, b.drift_sigma)
        ewma = lfilter([r.lam], [1.0, r.lam - 1.0], steps, axis=0, zi=[(1 - r.lam) * d.ewma])[0]
        half = w.ewma * _ewma_spread(r.lam, d.checked, x.shape[0])
        up = _reflected(d.up, steps - r.cusum_k)
        down = _reflected(d.down, -steps - r.cusum_k)
        drifting = (np.abs(ewma) > half) | (up > w.cusum_h) | (down > w.cusum_h)
        a = 1.0 / r.shift_window
        share = lfilter([a], [1.0, a - 1.0], beyond.astype(float), axis=0, zi=[(1 - a) * d.share])
        d.ewma, d.up, d.down, d.share = ewma[-1], up[-1], down[-1], share[0][-1]
        d.checked += x.shape[0]
        alarms = self._rule1(x, beyond, times) + self._drift(ewma, drifting, times)
        restart = drifting.any(axis=0)
        d.ewma[restart] = d.up[restart] = d.down[restart] = 0.0
        if d.checked >= r.shift_window and (d.share >= r.shift_share).any():
            alarms.append(self._level_shift(x, times[-1]))
        return alarms

    def _rule1(self, x: Floats, beyond: NDArray[np.bool_], times: list[datetime]) -> list[Alarm]:
        assert self.baseline is not None
        b, out = self.baseline, []
        for j in np.flatnonzero(beyond.any(axis=0)):
            hits = np.flatnonzero(beyond[:, j])
            i = int(hits[-1])
            text = (
                f"{self.names[j]} {x[i, j]:.4g} outside the limits on die {self.die} (regime "
                f"{self.regime + 1}, baseline of {b.shots} shots): {self._limits(int(j))}"
            )
            out.append(self._alarm(self.names[j], RULE1, text, times, hits))
        return out

    def _drift(
        self, ewma: Floats, drifting: NDArray[np.bool_], times: list[datetime]
    ) -> list[Alarm]:
        assert self.baseline is not None
        b, out = self.baseline, []
        for j in np.flatnonzero(drifting.any(axis=0)):
            hits = np.flatnonzero(drifting[:, j])
            i = int(hits[-1])
            level = b.center[j] + ewma[i, j] * b.drift_sigma[j]
            way = "up" if ewma[i, j] > 0 else "down"
            text = (
                f"{self.names[j]} drifting {way}, smoothed {level:.4g}, on die {self.die} "
                f"(regime {self.regime + 1}): {self._limits(int(j))}"
            )
            out.append(self._alarm(self.names[j], DRIFT, text, times, hits))
        return out

    def _limits(self, j: int) -> str:
        """The chart's centre and limits, worded as `report spc` words them (the pages
        show these figures in the reader's language)."""
        assert self.baseline is not None
        b, half = self.baseline, self._widths.rule1 * self.baseline.sigma[j]
        unit = BY_NAME[self.names[j]].unit if self.names[j] in BY_NAME else "-"
        return (
            f"centre {b.center[j]:.4g} {unit}, limits {b.center[j] - half:.4g}.."
            f"{b.center[j] + half:.4g}"
        )

    def _level_shift(self, x: Floats, at: datetime) -> Alarm:
        """The recent shots sit at a new level: say where each moved, then learn anew."""
        assert self.baseline is not None and self._detectors is not None
        b = self.baseline
        moved = np.flatnonzero(self._detectors.share >= self.rules.shift_share)
        tail = x[-self.rules.shift_window :]
        seen = np.maximum((~np.isnan(tail)).sum(axis=0), 1)
        recent = np.nansum(tail, axis=0) / seen
        steps = ", ".join(f"{self.names[j]} {b.center[j]:.4g} -> {recent[j]:.4g}" for j in moved)
        text = (
            f"die {self.die} runs at a new level ({steps}): a set-point change or a "
            f"sustained fault; limits are learnt anew from the next "
            f"{self.rules.baseline_shots} shots"
        )
        self.regime += 1
        self.baseline, self._detectors = None, None
        return Alarm(self.plant, self.machine, self.die, "set_points", LEVEL_SHIFT, text, at)

    def _alarm(
        self, chart: str, kind: str, text: str, times: list[datetime], hits: NDArray[np.intp]
    ) -> Alarm:
        first, last = times[int(hits[0])], times[int(hits[-1])]
        return Alarm(
            self.plant,
            self.machine,
            self.die,
            chart,
            kind,
            text,
            first,
            count=len(hits),
            last_at=last,
        )


def _steps(dev: Floats, drift_sigma: Floats) -> Floats:
    """Deviations in drift sigmas; 0 where a parameter is not charted, and finite (what
    `np.nan_to_num` gives, without its cost on every small batch)."""
    steps = np.divide(dev, drift_sigma, out=np.zeros_like(dev), where=~np.isnan(drift_sigma))
    return np.minimum(np.maximum(steps, -_BIG, out=steps), _BIG, out=steps)


_BIG = float(np.finfo(np.float64).max)


def _ewma_spread(lam: float, checked: int, n: int) -> Floats | float:
    """Sigmas of the EWMA statistic at the next `n` shots after `checked`. Once
    (1 - lam)^(2t) is below the double's precision it is the steady value, exactly as the
    formula would give: one number, not an array a batch."""
    steady = math.ceil(54 * math.log(2) / (-2 * math.log1p(-lam))) + 1
    if checked + 1 >= steady:
        return math.sqrt(lam / (2 - lam))
    t = checked + np.arange(1, n + 1)[:, None]
    return np.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * t)))


def _reflected(start: Floats, steps: Floats) -> Floats:
    """CUSUM from `start`: C_t = max(0, C_(t-1) + step_t), as one cumulative sum (the
    walk less its running minimum below zero)."""
    s = start + np.cumsum(steps, axis=0)
    return s - np.minimum(np.minimum.accumulate(s, axis=0), 0.0)


def readings(params: list[dict[str, float | None]], names: tuple[str, ...]) -> Floats:
    """Shots' readings in chart order (shots x names), NaN where not measured: one
    array for a chart's shots of a batch, not one a shot."""
    return np.array([[p.get(n) for n in names] for p in params], dtype=np.float64)
