"""The simulated hall over the real Mosquitto: what a subscriber receives, and the robot cells."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import replace

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from castline.domain.verdict import Verdict
from castline.messaging.schema import (
    CellMessage,
    ImageMessage,
    InvalidMessage,
    ShotMessage,
    StateMessage,
    TruthMessage,
    VerdictMessage,
    decode,
)
from castline.messaging.topics import output_topic
from castline.sim.faults import Fault
from castline.sim.fleet import FleetConfig
from castline.sim.runner import CellReport, HallConfig, run_hall

from .conftest import BROKER, Recorder


def config(plant: str, **changes: object) -> HallConfig:
    fleet = FleetConfig(machines=3, seed=3, base_defect_rate=0.3)
    base = HallConfig(
        plant=plant,
        fleet=fleet,
        speed=600,
        duration_s=3,
        first_shot=1,
        camera_delay_s=0.05,
        verdict_deadline_s=0.5,
        image_size=128,
    )
    return replace(base, **changes)


def decoded(recorder: Recorder, kind: str) -> list:
    return [decode(t, p)[1] for t, p in recorder.of(kind)]


async def test_shots_images_states_and_truth_reach_a_subscriber(
    plant: str, recorder: Recorder
) -> None:
    report = await run_hall(config(plant), BROKER, asyncio.Event())
    recorder.wait_offline(3)
    shots = decoded(recorder, "shot")
    truths = decoded(recorder, "truth")
    images = decoded(recorder, "image")
    states = decoded(recorder, "state")
    assert all(isinstance(s, ShotMessage) for s in shots)
    assert len(shots) == report.shots >= 30
    # One truth per shot, a photograph per shot except those still in the camera at the end.
    assert sorted((t.machine, t.shot_number) for t in truths) == sorted(
        (s.machine, s.shot_number) for s in shots
    )
    assert all(isinstance(t, TruthMessage) for t in truths)
    assert sum(t.defective for t in truths) == report.defective > 0
    assert len(images) == report.images and report.shots - 3 <= len(images) <= report.shots
    assert all(isinstance(i, ImageMessage) and i.image_bytes()[:2] == b"\xff\xd8" for i in images)
    assert {(i.machine, i.shot_number) for i in images} <= {
        (s.machine, s.shot_number) for s in shots
    }
    assert all(isinstance(s, StateMessage) for s in states)
    assert {s.machine for s in states} == {"dcm-01", "dcm-02", "dcm-03"}
    assert {s.machine for s in shots} == {"dcm-01", "dcm-02", "dcm-03"}
    availability = [(t.split("/")[3], p) for t, p in recorder.of("availability")]
    assert {m for m, p in availability if p == b"offline"} == {"dcm-01", "dcm-02", "dcm-03"}
    # No one sent verdicts: every part the cells handled went to the quarantine rack.
    cells = decoded(recorder, "cell")
    assert cells and all(isinstance(c, CellMessage) for c in cells)
    assert all(c.action == "quarantine_rack" and c.verdict is None for c in cells)
    assert report.total.missing_verdicts == len(cells) == report.total.quarantined
    # Parts the cells expect: every shot published, and a few planned when the run ended.
    assert report.shots <= report.total.parts + report.waiting <= report.shots + 3


def test_states_are_retained(plant: str, recorder: Recorder) -> None:
    asyncio.run(run_hall(config(plant, duration_s=1), BROKER, asyncio.Event()))
    late = Recorder(plant)
    late.client.connect("127.0.0.1", 1883)
    late.client.loop_start()
    late.ready.wait(10)
    late.settle(quiet_s=0.5)
    late.client.disconnect()
    late.client.loop_stop()
    retained = {t.split("/")[3] for t, _, r in late.messages if r and t.endswith("/state")}
    assert retained == {"dcm-01", "dcm-02", "dcm-03"}


async def test_robot_cells_count_escapes_false_rejects_and_missing_verdicts(
    plant: str, recorder: Recorder
) -> None:
    # A stand-in line: OK for every part of dcm-01, NG for dcm-02, silence for dcm-03.
    answers = {"dcm-01": Verdict.OK, "dcm-02": Verdict.NG}
    line = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)

    def answer(client: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        _, image = decode(message.topic, message.payload)
        verdict = answers.get(image.machine)
        if verdict is not None:
            reply = VerdictMessage(
                plant=plant,
                machine=image.machine,
                shot_number=image.shot_number,
                verdict=verdict,
                decided_at=image.ts,
            )
            client.publish(output_topic(plant, image.machine), reply.to_json(), qos=1)

    subscribed = asyncio.Event()
    loop = asyncio.get_running_loop()
    line.on_message = answer
    line.on_connect = lambda c, *_: c.subscribe(f"castline/v1/{plant}/+/image/+", qos=1)
    line.on_subscribe = lambda *_: loop.call_soon_threadsafe(subscribed.set)
    line.connect("127.0.0.1", 1883)
    line.loop_start()
    await asyncio.wait_for(subscribed.wait(), 10)
    try:
        report: CellReport = await run_hall(config(plant), BROKER, asyncio.Event())
    finally:
        line.disconnect()
        line.loop_stop()
    recorder.wait_offline(3)
    defective = {(t.machine, t.shot_number): t.defective for t in decoded(recorder, "truth")}
    for shot in decoded(recorder, "shot"):  # a warm-up casting is scrap by rule
        defective[(shot.machine, shot.shot_number)] |= shot.trial
    cells = decoded(recorder, "cell")
    by_machine: dict[str, list[CellMessage]] = {}
    for c in cells:
        by_machine.setdefault(c.machine, []).append(c)
    ok, ng, silent = by_machine["dcm-01"], by_machine["dcm-02"], by_machine["dcm-03"]
    assert all(c.action == "next_station" and c.verdict is Verdict.OK for c in ok)
    assert all(c.action == "reject_chute" and c.verdict is Verdict.NG for c in ng)
    assert all(c.action == "quarantine_rack" and c.verdict is None for c in silent)
    escapes = sum(defective[("dcm-01", c.shot_number)] for c in ok)
    false_rejects = sum(not defective[("dcm-02", c.shot_number)] for c in ng)
    assert escapes > 0 and false_rejects > 0
    assert report.cells["dcm-01"].escapes == escapes
    assert report.cells["dcm-01"].missing_verdicts == 0
    assert report.cells["dcm-02"].false_rejects == false_rejects
    assert report.cells["dcm-03"].missing_verdicts == len(silent) > 0
    assert report.cells["dcm-03"].escapes == 0


async def test_duplicate_and_malformed_faults(plant: str, recorder: Recorder) -> None:
    faults = (Fault.DUPLICATE, Fault.MALFORMED)
    report = await run_hall(
        config(plant, faults=faults, fault_rate=1.0, duration_s=2), BROKER, asyncio.Event()
    )
    recorder.wait_offline(3)
    raw_shots = recorder.of("shot")
    assert len(raw_shots) == 2 * report.shots > 0
    reasons = []
    for t, p in raw_shots:
        try:
            decode(t, p)
        except InvalidMessage as exc:
            reasons.append(exc.reason)
        else:
            raise AssertionError(f"a malformed shot record decoded: {p[:80]!r}")
    assert len(reasons) == len(raw_shots)
    images = Counter(json.loads(p)["shot_number"] for t, p in recorder.of("image") if "dcm-01" in t)
    assert images and set(images.values()) == {2}
    assert report.faults["duplicate"] == report.faults["malformed"] == report.shots


async def test_disconnects_and_out_of_order_lose_no_shot(plant: str, recorder: Recorder) -> None:
    faults = (Fault.DISCONNECT, Fault.OUT_OF_ORDER)
    report = await run_hall(config(plant, faults=faults, fault_rate=0.15), BROKER, asyncio.Event())
    recorder.wait_offline(3)
    assert report.faults["disconnect"] > 0 and report.faults["out_of_order"] > 0
    shots = [decode(t, p)[1] for t, p in recorder.of("shot")]
    assert len({(s.machine, s.shot_number) for s in shots}) == report.shots
    # Dropped connections: the broker sent the last will, and the machine came back online.
    online = [t for t, p in recorder.of("availability") if p == b"online"]
    assert len(online) > 3
    # Some photographs came before their shot record on the same connection.
    first: dict[tuple[str, int], str] = {}
    for t, p, _ in recorder.messages:
        if t.endswith("/shot") or "/image/" in t:
            body = json.loads(p)
            first.setdefault((body["machine"], body["shot_number"]), t)
    assert any("/image/" in t for t in first.values())


async def test_late_and_missing_photographs_leave_parts_without_verdict(
    plant: str, recorder: Recorder
) -> None:
    faults = (Fault.LATE, Fault.CAMERA_STOP)
    report = await run_hall(config(plant, faults=faults, fault_rate=0.2), BROKER, asyncio.Event())
    recorder.wait_offline(3)
    images = {(m.machine, m.shot_number) for m in decoded(recorder, "image")}
    shots = {(m.machine, m.shot_number) for m in decoded(recorder, "shot")}
    assert report.faults["camera_stop"] > 0 and report.faults["late"] > 0
    assert len(images) < len(shots) - 3  # the camera stopped for a few shots now and then
    assert report.images == len(images)


def test_the_command_runs_the_hall_and_prints_the_cells_counters(
    plant: str, recorder: Recorder
) -> None:
    from typer.testing import CliRunner

    from castline.cli import app

    args = ["sim", "--machines", "2", "--speed", "600", "--duration", "1.5", "--plant", plant]
    args += ["--broker", BROKER]
    result = CliRunner().invoke(app, [*args, "--data", "no-such-folder"])
    assert result.exit_code == 0, result.output
    assert "robot cells:" in result.output and "escapes" in result.output
    recorder.wait_offline(2)
    assert recorder.of("shot")
    bad = CliRunner().invoke(app, ["sim", "--fault", "lightning", "--plant", plant])
    assert bad.exit_code != 0 and "camera_stop" in bad.output
