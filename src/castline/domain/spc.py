"""Statistical process control: control limits, run rules, EWMA, CUSUM, capability.

Pure and vectorised with numpy: a year of shots of a machine is one array, never a
Python loop per shot. A rule returns a boolean array, True at the shot where the
pattern is complete (the shot an operator would be told about).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]

# Bias constants of the range of n normal values (d2: mean, d3: standard deviation).
_D2 = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 7: 2.704, 8: 2.847, 9: 2.970, 10: 3.078}
_D3 = {2: 0.853, 3: 0.888, 4: 0.880, 5: 0.864, 6: 0.848, 7: 0.833, 8: 0.820, 9: 0.808, 10: 0.797}


def c4(n: int) -> float:
    """Bias of the sample standard deviation of n normal values."""
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


@dataclass(frozen=True, slots=True)
class Limits:
    center: float
    sigma: float  # of one plotted point
    lcl: float
    ucl: float
    # the dispersion chart (MR, R or S) below it
    dispersion_center: float
    dispersion_lcl: float
    dispersion_ucl: float


def resolution(x: Floats) -> float:
    """The measurement step: the smallest non-zero difference between two readings
    (0 when all are equal). A chart cannot see below what the sensor resolves."""
    v = np.unique(x[~np.isnan(x)])
    if v.size < 2:
        return 0.0
    steps = np.diff(v)
    steps = steps[steps > 1e-9 * max(1.0, float(np.max(np.abs(v))))]  # float noise is no step
    return float(steps.min()) if steps.size else 0.0


def _floored(sigma: float, floor: float) -> float:
    """Sigma of one shot, never below the floor (nor zero: a constant baseline)."""
    return max(sigma, floor) or 1e-12


def individuals_limits(baseline: Floats, floor: float = 0.0) -> Limits:
    """I-MR chart: sigma from the mean moving range of two (MR-bar / d2), at least `floor`.

    A baseline of equal readings has MR-bar 0; without the floor its limits would sit on
    the centre and every later reading one step away would be an alarm.
    """
    x = baseline[~np.isnan(baseline)]
    if x.size < 2:
        raise ValueError("an I-MR baseline needs at least two measured shots")
    center = float(np.mean(x))
    sigma = _floored(float(np.mean(np.abs(np.diff(x)))) / _D2[2], floor)
    mr_bar = sigma * _D2[2]
    return Limits(
        center,
        sigma,
        center - 3 * sigma,
        center + 3 * sigma,
        mr_bar,
        0.0,
        mr_bar * (1 + 3 * _D3[2] / _D2[2]),
    )


def subgroups(x: Floats, n: int) -> NDArray[np.float64]:
    """Consecutive shots in rows of n (a trailing incomplete subgroup is left out)."""
    k = x.size // n
    return x[: k * n].reshape(k, n)


def xbar_r_limits(baseline: Floats, n: int, floor: float = 0.0) -> Limits:
    """X-bar/R chart for subgroups of 2..10 shots (sigma of a shot at least `floor`)."""
    if n not in _D2:
        raise ValueError(f"X-bar/R needs subgroups of 2..10 shots, got {n}; use X-bar/S")
    g = subgroups(baseline, n)
    center = float(np.nanmean(g.mean(axis=1)))
    shot_sigma = _floored(float(np.nanmean(np.ptp(g, axis=1))) / _D2[n], floor)
    r_bar = shot_sigma * _D2[n]
    sigma = shot_sigma / math.sqrt(n)
    spread = 3 * _D3[n] / _D2[n]
    return Limits(
        center,
        sigma,
        center - 3 * sigma,
        center + 3 * sigma,
        r_bar,
        max(0.0, 1 - spread) * r_bar,
        (1 + spread) * r_bar,
    )


def xbar_s_limits(baseline: Floats, n: int, floor: float = 0.0) -> Limits:
    """X-bar/S chart, any subgroup size >= 2 (the usual choice above 10)."""
    g = subgroups(baseline, n)
    center = float(np.nanmean(g.mean(axis=1)))
    cn = c4(n)
    shot_sigma = _floored(float(np.nanmean(g.std(axis=1, ddof=1))) / cn, floor)
    s_bar = shot_sigma * cn
    sigma = shot_sigma / math.sqrt(n)
    spread = 3 * math.sqrt(1 - cn * cn) / cn
    return Limits(
        center,
        sigma,
        center - 3 * sigma,
        center + 3 * sigma,
        s_bar,
        max(0.0, 1 - spread) * s_bar,
        (1 + spread) * s_bar,
    )


# --- regimes ---------------------------------------------------------------------------


def _best_split(x: Floats, min_run: int) -> int:
    """The point where the mean changes most clearly (largest two-sample CUSUM statistic)."""
    n = x.size
    k = np.arange(min_run, n - min_run + 1)
    c = np.concatenate(([0.0], np.cumsum(x)))
    left, right = c[k] / k, (c[n] - c[k]) / (n - k)
    return int(k[np.argmax(np.sqrt(k * (n - k) / n) * np.abs(left - right))])


def short_term_spread(x: Floats, block: int = 50) -> float:
    """Typical robust standard deviation inside blocks of `block` points: the noise and
    short wander of a process, without the level changes between blocks."""
    blocks = subgroups(x, block) if x.size >= block else x[None, :]
    med = np.median(blocks, axis=1, keepdims=True)
    return 1.4826 * float(np.median(np.median(np.abs(blocks - med), axis=1)))


def regimes(
    x: Floats, *, min_run: int = 200, separation: float = 5.0, floor: float = 0.0
) -> list[tuple[int, int]]:
    """Stretches of one set-point: (start, stop) of each, in order, covering all of `x`.

    Binary segmentation: a stretch is cut where its mean changes most, if both sides hold
    `min_run` points and the medians of the `min_run` points either side of the cut lie
    more than `separation` short-term spreads apart (`short_term_spread` of the whole
    series, at least `floor`). A set-point change moves the level by many times that; a
    process that wanders, or drifts by a sigma or two, does not and stays one regime
    (that is for EWMA and CUSUM to catch).
    """
    noise = max(short_term_spread(x), floor)
    cuts, todo = [], [(0, x.size)]
    while todo:
        a, b = todo.pop()
        if b - a < 2 * min_run:
            continue
        k = a + _best_split(x[a:b], min_run)
        # the levels just before and after the cut: a stretch that holds more than one
        # set-point does not blur a clean step into a small one
        step = float(np.median(x[k : k + min_run]) - np.median(x[k - min_run : k]))
        if abs(step) <= separation * noise:
            continue
        cuts.append(k)
        todo += [(a, k), (k, b)]
    edges = [0, *sorted(cuts), x.size]
    return list(pairwise(edges))


def lag1(x: Floats) -> float:
    """Lag-1 autocorrelation, clipped to 0..0.95 (negative adds no false alarms)."""
    y = x - x.mean()
    den = float(y @ y)
    r = float(y[1:] @ y[:-1]) / den if den > 0 else 0.0
    return min(max(r, 0.0), 0.95)


def drift_sigma(sigma: float, r: float) -> float:
    """Sigma for the drift detectors on autocorrelated points: EWMA and CUSUM add many
    points up, and a sum of AR(1) points varies (1 + r) / (1 - r) times as much."""
    return sigma * math.sqrt((1 + r) / (1 - r))


def within_sigma(x: Floats, n: int, floor: float = 0.0) -> float:
    """Sigma of one shot inside rational subgroups of n consecutive shots (R-bar / d2 up
    to 10, else S-bar / c4), at least `floor`: the sigma behind Cp and Cpk."""
    g = subgroups(x[~np.isnan(x)], n)
    if n <= 10:
        return _floored(float(np.mean(np.ptp(g, axis=1))) / _D2[n], floor)
    return _floored(float(np.mean(g.std(axis=1, ddof=1))) / c4(n), floor)


# --- run rules -----------------------------------------------------------------------


def _window_count(flags: Flags, k: int) -> NDArray[np.int64]:
    """How many of the last k points (this one included) are flagged; 0 before k points."""
    c = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    out = np.zeros(flags.size, dtype=np.int64)
    if flags.size >= k:
        out[k - 1 :] = c[k:] - c[:-k]
    return out


def _run(flags: Flags, k: int) -> Flags:
    return _window_count(flags, k) >= k


def _shifted(diff_flags: Flags, k: int) -> Flags:
    """Align a run over point-to-point differences with the point that ends it."""
    return np.concatenate(([False], _run(diff_flags, k)))


def nelson(z: Floats) -> dict[str, Flags]:
    """The eight Nelson rules on standardised points z = (x - center) / sigma."""
    above, below = z > 0, z < 0
    d = np.diff(z)
    rising, falling = d > 0, d < 0
    turns = np.sign(d[1:]) * np.sign(d[:-1]) < 0  # direction changes between differences
    return {
        "nelson1": np.abs(z) > 3,
        "nelson2": _run(above, 9) | _run(below, 9),
        "nelson3": _shifted(rising, 5) | _shifted(falling, 5),
        "nelson4": np.concatenate(([False, False], _run(turns, 12))),
        "nelson5": (_window_count(z > 2, 3) >= 2) | (_window_count(z < -2, 3) >= 2),
        "nelson6": (_window_count(z > 1, 5) >= 4) | (_window_count(z < -1, 5) >= 4),
        "nelson7": _run(np.abs(z) < 1, 15),
        "nelson8": _run(np.abs(z) > 1, 8),
    }


def western_electric(z: Floats) -> dict[str, Flags]:
    """The four Western Electric zone rules on standardised points."""
    return {
        "we1": np.abs(z) > 3,
        "we2": (_window_count(z > 2, 3) >= 2) | (_window_count(z < -2, 3) >= 2),
        "we3": (_window_count(z > 1, 5) >= 4) | (_window_count(z < -1, 5) >= 4),
        "we4": _run(z > 0, 8) | _run(z < 0, 8),
    }


RULE_TEXT = {
    "nelson1": "one point beyond 3 sigma",
    "nelson2": "nine points in a row on one side of the centre line",
    "nelson3": "six points in a row steadily rising or falling",
    "nelson4": "fourteen points in a row alternating up and down",
    "nelson5": "two of three points beyond 2 sigma on one side",
    "nelson6": "four of five points beyond 1 sigma on one side",
    "nelson7": "fifteen points in a row within 1 sigma (limits too wide or data stratified)",
    "nelson8": "eight points in a row beyond 1 sigma on both sides (mixture)",
    "we1": "one point beyond 3 sigma",
    "we2": "two of three points beyond 2 sigma on one side",
    "we3": "four of five points beyond 1 sigma on one side",
    "we4": "eight points in a row on one side of the centre line",
    "ewma": "EWMA beyond its limit: slow drift",
    "cusum_up": "CUSUM upward: slow drift up",
    "cusum_down": "CUSUM downward: slow drift down",
    "level_shift": "sustained level shift (a set-point change?): limits set again after it",
    "drift": "slow drift (EWMA or CUSUM)",
    "baseline_misfit": "a rule fires on most points: the baseline does not fit this process",
}


# Points a pattern rule spans: its onset is that many points back from where it completes.
RULE_SPAN = {
    "nelson1": 1,
    "nelson2": 9,
    "nelson3": 6,
    "nelson4": 14,
    "nelson5": 3,
    "nelson6": 5,
    "nelson7": 15,
    "nelson8": 8,
    "we1": 1,
    "we2": 3,
    "we3": 5,
    "we4": 8,
}


def onset(rule: str, first_hit: int, c_up: Floats, c_down: Floats, z: Floats) -> int:
    """Where the condition behind a rule's first hit began, as far as the data tells.

    A pattern rule began where its pattern starts. A drift (EWMA, CUSUM) began just
    after the last point where the CUSUM on its side was still zero: the change point.
    """
    if rule in RULE_SPAN:
        return max(0, first_hit - RULE_SPAN[rule] + 1)
    upward = rule == "cusum_up" or (rule != "cusum_down" and z[first_hit] > 0)
    walk = (c_up if upward else c_down)[: first_hit + 1]
    zeros = np.flatnonzero(walk <= 0)
    return min(first_hit, int(zeros[-1]) + 1) if zeros.size else 0


# --- slow drift ------------------------------------------------------------------------


def ewma(
    x: Floats, center: float, sigma: float, lam: float = 0.2, width: float = 3.0
) -> tuple[Floats, Floats, Floats, Flags]:
    """EWMA statistic and its time-varying limits; returns (z, lcl, ucl, out of control).

    z_t = lam x_t + (1 - lam) z_(t-1), started at the centre: a first-order filter.
    """
    z = np.asarray(lfilter([lam], [1.0, lam - 1.0], x - center), dtype=np.float64) + center
    t = np.arange(1, x.size + 1)
    half = width * sigma * np.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * t)))
    lcl, ucl = center - half, center + half
    return z, lcl, ucl, (z > ucl) | (z < lcl)


def cusum(
    x: Floats, center: float, sigma: float, k: float = 0.5, h: float = 5.0
) -> tuple[Floats, Floats, Flags, Flags]:
    """Tabular CUSUM (k, h in sigma); returns (C+, C-, up alarm, down alarm).

    C_t = max(0, C_{t-1} + y_t) is the walk S_t less its running minimum (from 0),
    so the whole series is two cumulative sums, no loop.
    """
    up_steps = (x - center) / sigma - k
    down_steps = (center - x) / sigma - k
    c_up = _reflected(up_steps)
    c_down = _reflected(down_steps)
    return c_up, c_down, c_up > h, c_down > h


def _reflected(steps: Floats) -> Floats:
    s = np.cumsum(steps)
    return s - np.minimum(np.minimum.accumulate(s), 0.0)


# --- capability ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capability:
    cp: float | None  # needs both spec limits
    cpk: float | None
    mean: float
    sigma: float


def capability(x: Floats, sigma: float, lsl: float | None, usl: float | None) -> Capability:
    """Cp and Cpk against spec limits with a given sigma: the within sigma of rational
    subgroups gives Cp/Cpk; the overall standard deviation (`performance`) Pp/Ppk."""
    mean = float(np.nanmean(x))
    if sigma <= 0:
        return Capability(None, None, mean, sigma)
    cp = (usl - lsl) / (6 * sigma) if lsl is not None and usl is not None else None
    sides = [usl - mean] if usl is not None else []
    if lsl is not None:
        sides.append(mean - lsl)
    cpk = min(sides) / (3 * sigma) if sides else None
    return Capability(cp, cpk, mean, sigma)


def performance(x: Floats, lsl: float | None, usl: float | None) -> Capability:
    """Pp and Ppk (in the cp, cpk fields): the overall sample standard deviation."""
    y = x[~np.isnan(x)]
    sd = float(np.std(y, ddof=1)) if y.size > 1 else 0.0
    return capability(y, sd, lsl, usl)
