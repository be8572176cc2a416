"""Replay of the real KAMP shots: real rows, in their real order, over the real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import islice, pairwise
from pathlib import Path

import pandas as pd

from castline.domain.states import MachineState
from castline.messaging.schema import ShotMessage, TruthMessage, decode
from castline.sim import kamp
from castline.sim.fleet import ShotEvent, StateEvent
from castline.sim.replay import Replay
from castline.sim.runner import HallConfig, run_hall

from .conftest import BROKER, Recorder

START = datetime(2026, 3, 2, tzinfo=UTC)


@cache
def frame(process: Path) -> pd.DataFrame:
    return kamp.read(process)


@cache
def raw_rows(kamp_data: Path) -> pd.DataFrame:
    """The CSV rows read plainly, ordered by their own timestamps."""
    frames = [pd.read_csv(p) for p in sorted((kamp_data / "process").glob("*_group_*.csv"))]
    rows = pd.concat(frames, ignore_index=True)
    rows["t"] = pd.to_datetime(rows["datetime"])
    return rows.sort_values(["t", "id"], kind="stable").reset_index(drop=True)


def test_replay_streams_real_rows_in_order(kamp_data: Path) -> None:
    replay = Replay(frame(kamp_data / "process"), START, first_shot=1)
    shots = [e for e in islice(replay.events(), 3000) if isinstance(e, ShotEvent)]
    rows = raw_rows(kamp_data).head(len(shots))
    assert [s.die for s in shots] == rows["mold_code"].astype(str).tolist()
    assert [s.params["melt_temp_c"] for s in shots] == rows["molten_temp"].astype(float).tolist()
    assert [s.truth.defective for s in shots] == rows["passorfail"].astype(bool).tolist()
    assert [s.trial for s in shots] == (rows["tryshot_signal"] == "D").tolist()
    local = [(s.recorded_at + timedelta(hours=9)).replace(tzinfo=None) for s in shots]
    assert local == rows["t"].dt.to_pydatetime().tolist()
    # Compressed time: in order, no gap longer than the cap.
    times = [s.at for s in shots]
    assert times == sorted(times)
    assert max(b - a for a, b in pairwise(times)) <= timedelta(minutes=10)


def test_replay_machines_and_states_come_from_the_data(kamp_data: Path) -> None:
    replay = Replay(frame(kamp_data / "process"), START, first_shot=1)
    assert replay.machines == [f"kamp-{d}" for d in ("8412", "8573", "8600", "8722", "8917")]
    states = [e for e in replay.events() if isinstance(e, StateEvent)]
    assert {s.state for s in states} == {MachineState.RUNNING, MachineState.IDLE}
    stopped = raw_rows(kamp_data)["working"].ne(kamp.RUNNING).sum()
    assert 0 < sum(s.state is MachineState.IDLE for s in states) <= stopped


async def test_replay_over_mqtt_keeps_the_real_order(
    kamp_data: Path, plant: str, recorder: Recorder
) -> None:
    config = HallConfig(
        plant=plant,
        speed=3000,
        duration_s=3,
        first_shot=1,
        camera_delay_s=0.05,
        data=kamp_data.parent,
        replay=True,
        image_size=96,
    )
    report = await run_hall(config, BROKER, asyncio.Event())
    recorder.wait_offline(5)
    shots = [decode(t, p)[1] for t, p in recorder.of("shot")]
    assert len(shots) == report.shots >= 20
    assert all(isinstance(s, ShotMessage) for s in shots)
    # Each machine is its own MQTT connection: order holds per machine, not across them.
    seen: dict[str, list[tuple[datetime, float | None]]] = {}
    for s in shots:
        at = datetime.fromisoformat(s.model_extra["recorded_at"])
        seen.setdefault(s.die, []).append((at, s.params["melt_temp_c"]))
    rows = raw_rows(kamp_data).head(len(shots))
    for die, got in seen.items():
        mine = rows[rows["mold_code"].astype(str) == die]
        want = [
            ((t - timedelta(hours=9)).to_pydatetime().replace(tzinfo=UTC), float(m))
            for t, m in zip(mine["t"], mine["molten_temp"], strict=True)
        ]
        assert got == want, die
    truths = [decode(t, p)[1] for t, p in recorder.of("truth")]
    assert all(isinstance(t, TruthMessage) for t in truths)
    assert sum(t.defective for t in truths) == int(rows["passorfail"].sum())
