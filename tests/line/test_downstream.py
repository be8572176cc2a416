"""Downstream stations' results through the real broker (device logins) into a running
line, on both databases: they join their part by code or by key, an hour after it was
cast or before its shot is known, and an NG for a part castline passed is an escape."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from castline.analytics import queries
from castline.analytics.kpis import kpi_table
from castline.cli import app
from castline.domain.shot import PartKey
from castline.domain.verdict import Verdict
from castline.line.runtime import LineRuntime
from castline.messaging.broker import EmbeddedNats, free_port
from castline.messaging.devices import Login, Registry, Role, connect_options, provision
from castline.messaging.schema import DownstreamMessage, ShotMessage
from castline.settings import Settings
from castline.store import database
from castline.store import tables as t
from castline.store.repository import Store

from .conftest import until

PLANT = "p1"
CAST = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
LATER = CAST + timedelta(hours=1)  # the X-ray sees the parts an hour after casting


class Client:
    """A device logged in to the broker's MQTT listener with its own credentials."""

    def __init__(self, port: int, login: Login) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.username_pw_set(login.user, login.password)
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(10), f"{login.user} could not connect"

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        assert not getattr(reason, "is_failure", False), f"refused: {reason}"
        self.connected.set()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[EmbeddedNats, Registry]]:
    registry = provision(tmp_path / "home", PLANT, ["m1", "xray1"])
    registry.device("p2", "xray9")  # a station of another plant
    broker = EmbeddedNats(
        tmp_path / "nats",
        port=free_port(),
        mqtt_port=free_port(),
        authorization=registry.authorization(),
    )
    broker.start()
    yield broker, registry
    broker.stop()


def shot(n: int, code: str) -> bytes:
    msg = ShotMessage(plant=PLANT, machine="m1", shot_number=n, die="D1", ts=CAST, data_matrix=code)
    return msg.to_json()


def result(part: dict[str, object], outcome: str, test: str = "xray", **more: object) -> bytes:
    body: dict[str, object] = {"v": 1, "plant": PLANT, "station": "xray1", "part": part}
    body |= {"test": test, "result": outcome, "ts": LATER.isoformat()} | more
    return json.dumps(body).encode()


def escaped(store: Store) -> set[int]:
    return {row["shot_number"] for row in store.downstream_escapes(PLANT)}


async def test_results_join_their_parts_and_count_escapes(
    tmp_path: Path,
    secured: tuple[EmbeddedNats, Registry],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, registry = secured
    database.upgrade(engine)
    store = Store(engine)
    settings = Settings(home=tmp_path / "home", verdict_deadline_s=5.0)
    line = connect_options(registry.service(Role.LINE))
    runtime = LineRuntime(settings, engine, broker.url, connect_options=line)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 15)
    machine = Client(broker.mqtt_port, registry.device(PLANT, "m1"))
    station = Client(broker.mqtt_port, registry.device(PLANT, "xray1"))
    stranger = Client(broker.mqtt_port, registry.device("p2", "xray9"))
    own = f"castline/v1/{PLANT}/xray1/downstream"
    try:
        for n in (1, 2, 3):
            machine.publish(f"castline/v1/{PLANT}/m1/shot", shot(n, f"DMC-{n}"))
        await until(lambda: store.count(t.shots) == 3)
        for n in (1, 2, 3):  # castline passed all three
            store.record_verdict(PartKey(PLANT, "m1", n), Verdict.OK, CAST)
        assert escaped(store) == set()

        # An hour later: by code, by part key; malformed ones; another plant's station.
        station.publish(own, result({"data_matrix": "DMC-2"}, "NG", defect_type="porosity"))
        station.publish(own, result({"machine": "m1", "shot_number": 3}, "NG", test="leak"))
        station.publish(own, result({"machine": "m1", "shot_number": 1}, "OK"))
        station.publish(own, result({"machine": "m1", "shot_number": 1}, "MAYBE"))
        station.publish(own, result({"shot_number": 1}, "OK"))
        station.publish(own, result({"data_matrix": "DMC-1"}, "OK", plant="p2"))
        stranger.publish(own, result({"data_matrix": "DMC-1"}, "NG"))  # refused by the broker
        station.publish(own, result({"data_matrix": "DMC-1"}, "OK"))  # the broker keeps order
        await until(lambda: store.count(t.downstream_results) == 4)
        await until(lambda: store.count(t.dead_letters) == 3)
        assert escaped(store) == {2, 3}
        reasons = " | ".join(d["reason"] for d in store.dead_letters())
        assert "result" in reasons and "name the part" in reasons and "payload names p2" in reasons
        assert all(r["station"] == "xray1" for r in store.downstream_results(PLANT))

        # Before its shot: kept unmatched, joins when the shot comes, then counts.
        station.publish(own, result({"data_matrix": "DMC-4"}, "NG", defect_type="cold_shut"))
        await until(lambda: store.count(t.downstream_results) == 5)
        assert [r["ref"] for r in store.downstream_results(PLANT, unmatched=True)] == ["dmc:DMC-4"]
        machine.publish(f"castline/v1/{PLANT}/m1/shot", shot(4, "DMC-4"))
        await until(lambda: store.count(t.shots) == 4)
        store.record_verdict(PartKey(PLANT, "m1", 4), Verdict.OK, CAST)
        await until(lambda: not store.downstream_results(PLANT, unmatched=True), timeout=20)
        assert escaped(store) == {2, 3, 4}
        assert runtime.downstream.joined_later == 1
        station.publish(own, result({"data_matrix": "DMC-2"}, "NG", defect_type="porosity"))
        await asyncio.sleep(0.5)  # the same result again is one record
        assert not task.done(), "the line stopped"
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        for client in (machine, station, stranger):
            client.close()
    assert store.count(t.downstream_results) == 5
    (plant,) = kpi_table(engine, PLANT, CAST, LATER, by="total", level="plant")
    assert (plant["escapes"], plant["gq"], plant["sq"]) == (3, 1, 3)
    assert plant["escape_rate"] == pytest.approx(0.75)
    labels = queries.shots(engine, PLANT).set_index("shot_number")["ng"]
    assert labels.to_dict() == {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}  # root cause's NG label

    monkeypatch.setenv("CASTLINE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    shown = CliRunner().invoke(app, ["trace", "--dmc", "DMC-2", "--json"])
    assert shown.exit_code == 0, shown.output
    (found,) = json.loads(shown.output)["downstream"]
    assert (found["station"], found["test"], found["result"]) == ("xray1", "xray", "NG")
    assert found["defect_type"] == "porosity" and found["tested_at"] == LATER.isoformat()
    text = CliRunner().invoke(app, ["trace", PLANT, "m1", "3"])
    assert "downstream leak at xray1" in text.output and ": NG" in text.output


def test_a_message_names_its_station_and_part_strictly() -> None:
    msg = DownstreamMessage.model_validate_json(result({"data_matrix": "X"}, "NG"))
    assert msg.station == "xray1" and msg.to_result().part.data_matrix == "X"
    assert json.loads(msg.to_json())["station"] == "xray1"  # as it came, not "machine"
