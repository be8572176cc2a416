"""How many machines one simulator process keeps on schedule, publishing to Mosquitto.

For each speed (60x and real time) it doubles the number of machines, up to 288, and runs
the hall for a while; a hall keeps up when 99 % of its shots are published within `--lag`
seconds of their scheduled time. Each machine is its own MQTT connection, and paho's
select() loop cannot use file descriptors above 1024: one process holds about 330
machines. Photographs are the real holdout photographs where the data folder exists,
synthetic ones otherwise.

    .venv/bin/python benchmarks/bench_sim.py [--broker mqtt://127.0.0.1:1883]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from castline.messaging.address import BrokerAddress
from castline.messaging.topics import Kind, topic
from castline.settings import load
from castline.sim.fleet import FleetConfig
from castline.sim.runner import HallConfig, run_hall


def run(machines: int, speed: float, seconds: float, broker: str) -> tuple[float, float, int]:
    config = HallConfig(
        plant=f"bench-{uuid.uuid4().hex[:8]}",
        fleet=FleetConfig(machines=machines, seed=1),
        speed=speed,
        duration_s=seconds,
        first_shot=1,
        data=load().data,
    )
    try:
        report = asyncio.run(run_hall(config, broker, asyncio.Event()))
    finally:
        forget(config.plant, config.fleet.machine_ids(), broker)
    return report.lag_p99_s, report.shots / seconds, report.shots


def forget(plant: str, machines: list[str], broker: str) -> None:
    """Clear the run's retained states and availability from the shared broker."""
    address = BrokerAddress.parse(broker)
    host, port = address.host, address.port
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect(host, port)
    client.loop_start()
    for machine in machines:
        for kind in (Kind.STATE, Kind.AVAILABILITY):
            client.publish(topic(plant, machine, kind), b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def run_alone(machines: int, speed: float, seconds: float, broker: str) -> tuple[float, float, int]:
    """One step in a fresh process: paho's select() loop cannot use file descriptors
    above 1024, so a step must not inherit the sockets of the one before."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(run, machines, speed, seconds, broker).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--lag", type=float, default=1.0, help="p99 lag that still keeps up (s)")
    parser.add_argument("--max-machines", type=int, default=288)
    parser.add_argument("--first", type=int, default=9, help="machines of the first step")
    parser.add_argument("--speeds", default="60,1", help="comma-separated speeds to measure")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall-clock run per step")
    args = parser.parse_args()
    print(f"{'speed':>6} {'machines':>8} {'shots':>7} {'shots/s':>8} {'p99 lag':>9}  keeps up")
    for speed in (float(x) for x in args.speeds.split(",")):
        best = 0
        machines = args.first
        while machines <= args.max_machines:
            # Real time: a run must last a few cycles (30-90 s) to see each machine cast.
            seconds = args.seconds if speed > 1 else max(args.seconds, 60.0)
            started = time.monotonic()
            try:
                lag, rate, shots = run_alone(machines, speed, seconds, args.broker)
            except ConnectionError as exc:
                print(f"{speed:>5.0f}x {machines:>8}  no: {exc}", flush=True)
                break
            ok = lag <= args.lag
            print(
                f"{speed:>5.0f}x {machines:>8} {shots:>7} {rate:>8.1f} {lag * 1000:>7.0f} ms"
                f"  {'yes' if ok else 'no'}  ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
            if not ok:
                break
            best = machines
            machines *= 2
        print(f"speed {speed:.0f}x: largest hall on schedule: {best} machines")


if __name__ == "__main__":
    main()
