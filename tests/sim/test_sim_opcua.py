"""The machines' OPC UA servers, read by a real asyncua client while the hall runs."""

from __future__ import annotations

import asyncio

from asyncua import Client, ua

from castline.sim.fleet import FleetConfig
from castline.sim.opcua import EVENT_TYPE, NAMESPACE
from castline.sim.runner import HallConfig, run_hall

from .conftest import BROKER, Recorder, free_port


class Events:
    def __init__(self) -> None:
        self.received: list[object] = []

    def event_notification(self, event: object) -> None:
        self.received.append(event)


async def test_client_reads_counter_and_receives_cycle_events(
    plant: str, recorder: Recorder
) -> None:
    port = free_port()
    config = HallConfig(
        plant=plant,
        fleet=FleetConfig(machines=1, seed=2),
        speed=300,
        first_shot=1,
        camera_delay_s=0.05,
        opcua_port=port,
        image_size=96,
    )
    stop = asyncio.Event()
    hall = asyncio.create_task(run_hall(config, BROKER, stop))
    client = Client(f"opc.tcp://127.0.0.1:{port}/castline/")
    try:
        for _ in range(100):  # the server starts with the hall
            try:
                await client.connect()
                break
            except (TimeoutError, OSError):
                await asyncio.sleep(0.1)
        idx = await client.get_namespace_index(NAMESPACE)
        counter = client.get_node(ua.NodeId("Machine.Die.ShotCounter", idx))
        machine = client.get_node(ua.NodeId("Machine", idx))
        event_type = client.get_node(ua.NodeId(EVENT_TYPE, idx))
        handler = Events()
        subscription = await client.create_subscription(50, handler)
        await subscription.subscribe_events(machine, event_type)
        first = await counter.read_value()
        for _ in range(100):  # the machine may still be setting up when we connect
            if first > 0:
                break
            await asyncio.sleep(0.1)
            first = await counter.read_value()
        for _ in range(100):
            await asyncio.sleep(0.1)
            if len(handler.received) >= 3:
                break
        later = await counter.read_value()
        state = await client.get_node(ua.NodeId("Machine.State", idx)).read_value()
        category = await client.get_node(ua.NodeId("Machine.Iso22400Category", idx)).read_value()
        melt = client.get_node(ua.NodeId("Machine.LastCycle.melt_temp_c", idx))
        melt_value = await melt.read_value()
        units = await client.get_node(
            ua.NodeId("Machine.LastCycle.melt_temp_c.EngineeringUnits", idx)
        ).read_value()
        browsed = await client.nodes.objects.get_child(
            [f"{idx}:Machine", f"{idx}:Die", f"{idx}:ShotCounter"]
        )
        await client.disconnect()
    finally:
        stop.set()
        report = await hall
    assert later > first > 0
    assert browsed.nodeid == counter.nodeid
    assert state in ("running", "setup", "idle", "breakdown", "planned_stop")
    assert category in ("APT", "ADOT", "ADET", "PDOT")
    assert 550 <= melt_value <= 800 or melt_value == 0.0  # 0.0: a simulated drop-out
    assert units.DisplayName.Text == "°C"
    assert len(handler.received) >= 3
    numbers = [e.ShotNumber for e in handler.received]
    assert numbers == sorted(numbers) and numbers[-1] <= report.shots
    assert all(e.DieCode.startswith("8") and e.ShotCounter > 0 for e in handler.received)
    assert all(hasattr(e, "intensification_pressure_bar") for e in handler.received)
