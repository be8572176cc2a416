"""What a QoS 1 PUBACK of the nats-server MQTT listener promises while a cluster node restarts.

    .venv/bin/python benchmarks/bench_mqtt_ack.py [--restart leader|follower] [--clients 20]

A three-node cluster (as the fault drill builds it) with the replicated stream CASTLINE; MQTT
clients on the two nodes that stay up publish QoS 1 shot messages as fast as they can; after
4 s the node that leads the stream (or, with `--restart follower`, one that does not) is
killed and started again 3 s later. Afterwards the stream is read back. Printed: messages
sent, acknowledged by the server (PUBACK), stored in the stream, and acknowledged but not
stored: lost, while the client was told the broker had them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nats
import paho.mqtt.client as mqtt

from bench_faults import start_cluster
from castline.messaging import jetstream
from castline.messaging.broker import EmbeddedNats

RESTART_AT_S, DOWN_S = 4.0, 3.0


async def replicated_stream(url: str) -> str:
    """The stream with three replicas, and the name of the node that leads it."""
    nc = await nats.connect(servers=url.split(","))
    js = nc.jetstream()
    try:
        for _ in range(150):  # the cluster elects its meta leader first
            try:
                await jetstream.ensure_stream(js, replicas=3)
                info = await js.stream_info(jetstream.STREAM)
                if info.cluster and info.cluster.leader:
                    return info.cluster.leader
            except Exception:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("the cluster did not elect a leader for the stream")
    finally:
        await nc.close()


async def stored(url: str) -> set[str]:
    """Every payload the stream holds."""
    nc = await nats.connect(servers=url.split(","))
    sub = await nc.jetstream().subscribe("castline.v1.>", ordered_consumer=True)
    payloads = set()
    while True:
        try:
            msg = await sub.next_msg(timeout=3)
        except Exception:  # nothing more within 3 s: read to the end
            break
        payloads.add(msg.data.decode())
    await nc.close()
    return payloads


def acknowledged(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (RuntimeError, ValueError):  # never sent (not connected at the time)
        return False


def restart(node: EmbeddedNats) -> None:
    node.stop(True)
    time.sleep(DOWN_S)
    node.start()


def run(restart_leader: bool, clients: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="castline-mqtt-ack-") as tmp:
        nodes = start_cluster(Path(tmp), mqtt=True)
        try:
            url = ",".join(node.url for node in nodes)
            leader = asyncio.run(replicated_stream(url))
            victim = next(n for n in nodes if (n.name == leader) == restart_leader)
            up = [n for n in nodes if n is not victim]
            sent, links = publish(up, clients, seconds, victim)
            time.sleep(8.0)  # the last PUBACKs, resends after a reconnect, the catch-up
            kept = asyncio.run(stored(url))
            acked = {body for body, info in sent if acknowledged(info)}
            for client in links:
                client.loop_stop()
                client.disconnect()
        finally:
            for node in nodes:
                node.stop()
    return {
        "restarted": "stream leader" if restart_leader else "a follower",
        "sent": len(sent),
        "acknowledged": len(acked),
        "stored": len(kept),
        "acknowledged_not_stored": len(acked - kept),
    }


def publish(
    up: list[EmbeddedNats], clients: int, seconds: float, victim: EmbeddedNats
) -> tuple[list[tuple[str, mqtt.MQTTMessageInfo]], list[mqtt.Client]]:
    links = []
    for c in range(clients):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ack{c}")
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", up[c % len(up)].mqtt_port or 0)
        client.loop_start()
        links.append(client)
    time.sleep(2.0)
    sent: list[tuple[str, mqtt.MQTTMessageInfo]] = []
    started, restarting = time.monotonic(), None
    while time.monotonic() - started < seconds:
        if restarting is None and time.monotonic() - started > RESTART_AT_S:
            restarting = threading.Thread(target=restart, args=(victim,))
            restarting.start()
        for c, client in enumerate(links):
            body = f"m{c}-{len(sent)}"
            sent.append((body, client.publish(f"castline/v1/p/m{c}/shot", body.encode(), qos=1)))
        time.sleep(0.02)
    if restarting is not None:
        restarting.join()
    return sent, links


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restart", choices=["leader", "follower"], default="leader")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=14.0)
    args = parser.parse_args()
    print(json.dumps(run(args.restart == "leader", args.clients, args.seconds), indent=2))


if __name__ == "__main__":
    main()
