"""Dies of several cavities in the simulator: the option, and the robot cell that handles
each cavity's casting on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from castline.cli import app
from castline.domain.verdict import Verdict
from castline.sim.cell import RobotCell
from castline.sim.runner import data_matrix


@pytest.mark.parametrize("given", ["D1=0", "D1=17", "D1", "bad die=2", "D1=two"])
def test_a_wrong_cavities_option_is_one_line(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path))
    done = CliRunner().invoke(app, ["sim", "--cavities", given, "--dry-run"])
    assert done.exit_code == 2 and "Traceback" not in done.output
    assert "--cavities" in done.output and "DIE=N" in done.output


def test_the_cavities_option_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path))
    done = CliRunner().invoke(app, ["sim", "--cavities", "D1=2", "--dry-run"])
    assert done.exit_code == 0, done.output


def test_the_cell_handles_each_cavity_s_casting() -> None:
    cell = RobotCell("m1")
    cell.expect(7, False, deadline=10.0, cavity=1)
    cell.expect(7, True, deadline=10.0, cavity=2)
    first = cell.on_verdict(7, Verdict.OK, cavity=1)
    second = cell.on_verdict(7, Verdict.OK, cavity=2)  # the defective one, passed
    assert first is not None and second is not None
    assert (second.cavity, second.defective, second.action) == (2, True, "next_station")
    assert cell.counters.escapes == 1 and cell.counters.parts == 2
    assert cell.on_verdict(7, Verdict.OK, cavity=2) is None
    assert cell.counters.late_verdicts == 1 and cell.counters.unknown_verdicts == 0
    assert data_matrix("m1", 7) == "m1-000000000007"  # cavity 1's code names the shot
    assert data_matrix("m1", 7, 2) == "m1-000000000007-2"
