"""Per-shot process parameters of one die: calibrated AR(1) series with sensor drop-outs.

Each parameter is the die's calibrated mean plus a standardised AR(1) series scaled by its
standard deviation, so consecutive shots resemble each other as in the real line. The
fleet adds its episodes (melt drift, cold die, lost vacuum) as offsets in the parameter's
unit. Readings then lose values at the calibrated drop-out rate.
"""

from __future__ import annotations

import math

import numpy as np

from castline.domain.units import BY_NAME
from castline.sim.calibration import DieProfile, Fit

# Vacuum is not in the KAMP data: an assumed healthy vacuum system, documented as such.
VACUUM = Fit(mean=60.0, std=8.0, ar1=0.8, dropout=0.0)
# Cycle times are scaled from the real die's to the simulated machine's nominal time.
_TIMES = ("cycle_time_s", "production_cycle_time_s")


class ProcessModel:
    """The true parameters of each shot of one die, and what its sensors report."""

    def __init__(self, profile: DieProfile, rng: np.random.Generator, cycle_time_s: float):
        self.fits = dict(profile.params) | {"vacuum_mbar": VACUUM}
        self._rng = rng
        self._scale = cycle_time_s / profile.params["cycle_time_s"].mean
        # Start each series from its stationary distribution.
        self._z = {name: float(rng.normal()) for name in self.fits}

    def next_shot(self, offsets: dict[str, float]) -> dict[str, float]:
        """True values of the next shot; `offsets` shift parameters (in their units)."""
        values = {}
        for name, fit in self.fits.items():
            phi = fit.ar1
            z = phi * self._z[name] + math.sqrt(1 - phi * phi) * float(self._rng.normal())
            self._z[name] = z
            value = fit.mean + fit.std * z + offsets.get(name, 0.0)
            if name in _TIMES:
                value *= self._scale
            values[name] = _plausible(name, value)
        return values

    def readings(self, true: dict[str, float]) -> dict[str, float | None]:
        """What the machine reports: a drop-out is either nothing (None) or a zero reading."""
        out: dict[str, float | None] = {}
        for name, value in true.items():
            if self._rng.random() < self.fits[name].dropout:
                out[name] = None if self._rng.random() < 0.5 else 0.0
            else:
                out[name] = round(value, 4)
        return out

    def z(self, name: str, value: float) -> float:
        """How many standard deviations a true value lies from the die's calibrated mean."""
        fit = self.fits[name]
        mean = fit.mean * (self._scale if name in _TIMES else 1.0)
        return (value - mean) / fit.std if fit.std > 0 else 0.0


def _plausible(name: str, value: float) -> float:
    """A true value stays physical: the tails of a normal series must not go below zero."""
    if name in BY_NAME:
        return min(max(value, BY_NAME[name].low), BY_NAME[name].high)
    return max(value, 0.0)
