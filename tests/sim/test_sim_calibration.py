"""Calibration: the fitting rules, the kept constants against the real KAMP data, and the
simulated series against the constants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from castline.sim import kamp
from castline.sim.calibrate import fit, fit_parameter
from castline.sim.calibration import PROFILES
from castline.sim.process import ProcessModel


def ar1_series(n: int, mean: float, std: float, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.empty(n)
    z[0] = rng.normal()
    for i in range(1, n):
        z[i] = phi * z[i - 1] + np.sqrt(1 - phi * phi) * rng.normal()
    return mean + std * z


def test_fit_recovers_a_known_series_and_its_dropouts() -> None:
    values = ar1_series(20000, 700.0, 10.0, 0.8, seed=2)
    values[::50] = 0.0  # a sensor answering zero: 2 % drop-outs
    frame = pd.DataFrame({"melt_temp_c": values, "source": "a.csv"})
    found = fit_parameter(frame, "melt_temp_c")
    assert found.mean == pytest.approx(700.0, abs=0.5)
    assert found.std == pytest.approx(10.0, rel=0.05)
    assert found.ar1 == pytest.approx(0.8, abs=0.03)
    assert found.dropout == pytest.approx(0.02, abs=0.001)


def test_simulated_series_reproduce_the_constants() -> None:
    profile = PROFILES[1]
    process = ProcessModel(profile, np.random.default_rng(4), profile.params["cycle_time_s"].mean)
    shots = pd.DataFrame([process.next_shot({}) for _ in range(20000)])
    for name in ("melt_temp_c", "die_temp_fixed_c", "intensification_pressure_bar"):
        want = profile.params[name]
        got = shots[name]
        assert got.mean() == pytest.approx(want.mean, abs=0.1 * want.std + 1e-9), name
        assert got.std() == pytest.approx(want.std, rel=0.1), name
        assert got.autocorr(1) == pytest.approx(want.ar1, abs=0.05), name


def test_constants_are_the_fit_of_the_real_data(kamp_data: Path) -> None:
    fresh = fit(kamp.read(kamp_data / "process"))
    assert [p.die for p in fresh] == [p.die for p in PROFILES]
    for new, kept in zip(fresh, PROFILES, strict=True):
        assert new.shots == kept.shots
        assert new.fail_rate == pytest.approx(kept.fail_rate, abs=1e-4)
        for name, f in kept.params.items():
            g = new.params[name]
            assert (g.mean, g.std, g.ar1) == pytest.approx((f.mean, f.std, f.ar1), abs=1e-3)
            assert g.dropout == pytest.approx(f.dropout, abs=1e-4)


def test_constants_resemble_the_raw_kamp_columns(kamp_data: Path) -> None:
    frame = kamp.read(kamp_data / "process")
    for profile in PROFILES:
        rows = frame[(frame["die"] == profile.die) & (frame["tryshot_signal"] != "D")]
        for column, (name, factor) in kamp.COLUMNS.items():
            raw = rows[column].astype(float) * factor
            f = profile.params[name]
            # Drop-outs removed, the mean sits near the raw median, the spread within the raw one.
            assert abs(f.mean - raw.median()) <= f.std + 0.02 * abs(raw.median()), (
                profile.die,
                name,
            )
            assert f.std <= 1.01 * raw.std() + 1e-9, (profile.die, name)


def test_kamp_speeds_become_metres_per_second(kamp_data: Path) -> None:
    frame = kamp.read(kamp_data / "process")
    assert frame["fast_shot_velocity_mps"].median() == pytest.approx(
        frame["high_section_speed"].median() / 1000
    )
    assert frame["recorded_at"].is_monotonic_increasing
