"""The simulated X-ray station: which castings it tests, what it finds, how it names them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from castline.cli import app
from castline.domain.verdict import Verdict
from castline.messaging.schema import DownstreamMessage
from castline.sim.cell import Action
from castline.sim.downstream import DownstreamConfig, Station

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_the_station_tests_castings_sent_on_an_hour_later() -> None:
    station = Station(DownstreamConfig(rate=1.0, hidden_rate=0.0), "p1", seed=1)
    passed_bad = Action(7, "next_station", Verdict.OK, cavity=2, defective=True)
    found = station.test("m1", passed_bad, NOW, code="m1-7-2")
    assert found is not None and found.ng and found.at == NOW + timedelta(hours=1)
    message = DownstreamMessage.model_validate_json(found.payload)  # what castline reads
    assert (message.station, message.result, message.part.data_matrix) == (
        "xray-01",
        "NG",
        "m1-7-2",
    )
    good = station.test("m1", Action(8, "next_station", Verdict.OK), NOW, code=None)
    assert good is not None and not good.ng
    body = json.loads(good.payload)
    assert body["part"] == {"machine": "m1", "shot_number": 8, "cavity": 1}
    rejected = Action(9, "reject_chute", Verdict.NG, defective=True)
    assert station.test("m1", rejected, NOW, code=None) is None  # never reaches the X-ray
    assert (station.planned, station.ng) == (2, 1)


def test_porosity_only_the_x_ray_sees_and_a_share_tested() -> None:
    station = Station(DownstreamConfig(rate=0.5, hidden_rate=0.2), "p1", seed=2)
    tests = [
        station.test("m1", Action(n, "next_station", Verdict.OK), NOW, None) for n in range(2000)
    ]
    done = [found for found in tests if found is not None]
    assert 900 < len(done) < 1100
    hidden = [json.loads(found.payload) for found in done if found.ng]
    assert 120 < len(hidden) < 280
    assert {h["defect_type"] for h in hidden} <= {"gas_porosity", "shrinkage_porosity"}


@pytest.mark.parametrize("bad", [{"rate": 1.5}, {"hidden_rate": -0.1}, {"delay_s": -1.0}])
def test_a_wrong_station_setting_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DownstreamConfig(**bad)


def test_the_option_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path))
    wrong = CliRunner().invoke(app, ["sim", "--downstream-rate", "2", "--dry-run"])
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output
    right = CliRunner().invoke(app, ["sim", "--downstream-rate", "0.05", "--dry-run"])
    assert right.exit_code == 0, right.output
