"""Root cause finds a planted cause; the quality model beats chance on the real time split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from castline.analytics import mapping, predict, rootcause


def planted(n: int = 4000, seed: int = 5) -> pd.DataFrame:
    """Shots where a cold melt (< 660 °C) makes NG likely; other parameters are noise."""
    rng = np.random.default_rng(seed)
    melt = rng.normal(690, 20, n)
    frame = pd.DataFrame(
        {
            "melt_temp_c": melt,
            "die_temp_fixed_c": rng.normal(200, 15, n),
            "intensification_pressure_bar": rng.normal(320, 10, n),
            "cycle_time_s": rng.normal(60, 3, n),
        }
    )
    p_ng = np.where(melt < 660, 0.25, 0.02)
    frame["ng"] = (rng.random(n) < p_ng).astype(float)
    frame["defect_type"] = np.where(frame["ng"] == 1, "cold_shut", None)
    return frame


def test_root_cause_finds_the_planted_cause() -> None:
    frame = planted()
    findings = rootcause.rank(frame)
    top = findings[0]
    assert top.parameter == "melt_temp_c" and top.side == "<"
    assert 640 <= top.threshold <= 675
    assert top.significant and top.risk_ratio > 3
    assert top.ci_inside[0] > top.ci_outside[1]
    assert "melt temperature <" in top.text and "higher" in top.text
    assert not any(f.significant for f in findings[1:])  # noise parameters stay quiet
    (link,) = rootcause.defect_links(frame, findings)
    assert link["defect_type"] == "cold_shut" and link["confirmed"] == ["melt_temp_c"]


def test_wilson_interval_holds_the_rate() -> None:
    low, high = rootcause.wilson(10, 100)
    assert low < 0.1 < high
    assert rootcause.wilson(0, 50)[0] == 0.0


def test_risk_alarm_comes_before_inspection_sees_the_rise() -> None:
    # The process drifts slowly from shot 1000; NG follows the drift with a delay in
    # probability only, so the model's risk climbs before defects pile up.
    rng = np.random.default_rng(8)
    n = 3000
    drift = np.clip((np.arange(n) - 1000) / 1500, 0, None)
    risk = 0.02 + 0.3 * drift**2 + rng.normal(0, 0.002, n)
    ng = (rng.random(n) < risk).astype(float)
    out = predict.lead_times(np.clip(risk, 0, 1), ng, base_rate=0.02)
    assert out["rises_seen_by_inspection"] >= 1
    assert out["preceded_by_risk_alarm"] >= 1
    assert out["median_lead_shots"] is not None and out["median_lead_shots"] > 0


@pytest.mark.slow
def test_quality_model_beats_chance_on_the_real_time_split(kamp_data: Path) -> None:
    folder = kamp_data / "process"
    train = predict.load_export(folder / "train_group_8600.csv", mapping.KAMP)
    test = predict.load_export(folder / "test_group_8600.csv", mapping.KAMP)
    assert train["at"].max() < test["at"].min()  # a split by time, not by chance
    model = predict.QualityModel.fit("8600", train, quick=True)
    result = predict.evaluate(model, test)
    assert result["roc_auc"] > 0.7
    assert result["precision_at_5pct"] > 2 * result["test_ng"] / result["test_shots"]
