"""Bridge a plant's existing MQTT broker (Mosquitto, EMQX, ...) into castline's NATS.

Inbound: what machines, cameras and cells publish on the plant broker under `castline/v1/`
is stored in castline's JetStream stream. The bridge acknowledges an MQTT message to the
plant broker only after JetStream confirmed it (QoS 1, manual acks, persistent session),
so a bridge that dies loses nothing: the plant broker redelivers. JetStream de-duplicates
the redelivery by a message id made of topic and payload.
A message that can never be stored (a topic that is no NATS subject, a payload over the
server's bound, a request JetStream refuses) is parked with its reason
(`messaging/parking.py`) and acknowledged: one bad client never stops the flow. Anything
else is carried, and the line dead-letters what it refuses, with its reason.
Outbound: castline's verdicts go back to the plant broker for the robot cells.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

import nats
import paho.mqtt.client as mqtt
from nats.aio.msg import Msg
from nats.errors import BadHeaderError, BadSubjectError, MaxPayloadError
from nats.js.errors import BadRequestError

from castline.domain.ids import shown
from castline.messaging import jetstream, limits, parking, topics
from castline.messaging.address import BrokerAddress
from castline.messaging.connect import connect_until_stopped
from castline.messaging.topics import Kind

log = logging.getLogger(__name__)
# Messages on their way into JetStream at once: one at a time, a stream leader's election
# (seconds) holds every part behind it past its deadline.
IN_FLIGHT = 256
STORE_TIMEOUT_S = 1.0  # asked again after this: well inside a part's verdict deadline
RETRY_S = 0.2  # between tries of a store JetStream could not take right now
PARKED_HEAD = 64 * limits.KIB  # of a parked payload: enough to see what sent it
SUBJECT = re.compile(r"[^\x00-\x20\x7f.*>]+(\.[^\x00-\x20\x7f.*>]+)*")
# Refusals that the same request would get again: parked, never retried.
REFUSED_FOR_GOOD = (BadRequestError, MaxPayloadError, BadSubjectError, BadHeaderError)
INBOUND = (
    Kind.SHOT,
    Kind.IMAGE,
    Kind.STATE,
    Kind.CELL,
    Kind.TRUTH,
    Kind.AVAILABILITY,
    Kind.DOWNSTREAM,
)


def message_id(topic: str, payload: bytes) -> str:
    return hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()


def refusal(topic: str, size: int, max_payload: int) -> str | None:
    """Why a message cannot be carried into JetStream at all, or None. What can be is
    carried, even if the line will refuse it: its dead letter, with the line's reason, is
    where people look."""
    if not SUBJECT.fullmatch(topics.to_subject(topic)):
        return f"topic {shown(topic)} cannot be a NATS subject (an empty level, a space, * or >)"
    if size > max_payload:
        return f"message of {size} bytes is over the NATS server's max_payload ({max_payload})"
    return None


class MqttBridge:
    def __init__(
        self,
        mqtt_url: str,
        nats_url: str,
        plant: str = "+",
        client_id: str = "castline-bridge",
        connect_options: dict[str, Any] | None = None,
    ) -> None:
        self.address = BrokerAddress.parse(mqtt_url)
        self.nats_url = nats_url
        self.connect_options = connect_options or {}  # the bridge's login, TLS
        self.plant = plant
        self.client_id = client_id
        self.forwarded = 0  # acknowledged to the plant broker (stored or parked)
        self.parked = 0
        self.returned = 0
        self._queue: asyncio.Queue[mqtt.MQTTMessage] = asyncio.Queue()

    def _client(self, loop: asyncio.AbstractEventLoop) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            manual_ack=True,
        )
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        client.reconnect_delay_set(1, 5)

        def on_connect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
            log.info("bridge connected to %s:%d (%s)", self.address.host, self.address.port, rc)
            c.subscribe([(topics.wildcard(kind, self.plant), 1) for kind in INBOUND])

        def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            loop.call_soon_threadsafe(self._queue.put_nowait, message)

        client.on_connect = on_connect
        client.on_message = on_message
        return client

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        nc = await connect_until_stopped(
            self.nats_url, stop, "castline-bridge", **self.connect_options
        )
        if nc is None:
            return  # stopped before the broker answered
        js = nc.jetstream()
        await jetstream.ensure_stream(js)
        client = self._client(loop)

        async def verdict_out(msg: Msg) -> None:
            info = client.publish(topics.to_mqtt(msg.subject), msg.data, qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                self.returned += 1

        sub = await nc.subscribe(
            f"castline.out.v1.{self.plant.replace('+', '*')}.*.verdict", cb=verdict_out
        )
        client.connect_async(self.address.host, self.address.port, keepalive=30)
        client.loop_start()
        if ready:
            ready.set()
        stored: asyncio.Queue[tuple[mqtt.MQTTMessage, asyncio.Task[None]]]
        stored = asyncio.Queue(maxsize=IN_FLIGHT)
        acking = asyncio.create_task(self._ack_in_order(client, stored))
        try:
            while not stop.is_set():
                try:
                    message = await asyncio.wait_for(self._queue.get(), timeout=0.5)
                except TimeoutError:
                    continue
                while stored.full() and not stop.is_set():  # JetStream is behind
                    await asyncio.sleep(0.1)
                if stop.is_set():
                    break  # not acknowledged: the plant broker sends it again
                storing = asyncio.create_task(self._store(js, nc.max_payload, message))
                stored.put_nowait((message, storing))
        finally:
            acking.cancel()  # what is not acknowledged yet the plant broker sends again
            while not stored.empty():
                stored.get_nowait()[1].cancel()
            await sub.unsubscribe()
            client.loop_stop()
            client.disconnect()
            await nc.drain()

    async def _store(
        self, js: nats.js.JetStreamContext, max_payload: int, message: mqtt.MQTTMessage
    ) -> None:
        """Until JetStream has it (a retry of what it already has is dropped by the id),
        or until it is parked, if it can never be stored."""
        payload = bytes(message.payload)
        refused = refusal(message.topic, len(payload), max_payload)
        if refused is not None:
            await self._park(js, message.topic, payload, refused)
            return
        subject = topics.to_subject(message.topic)
        headers = {"Nats-Msg-Id": message_id(message.topic, payload)}
        while True:
            try:
                await js.publish(subject, payload, headers=headers, timeout=STORE_TIMEOUT_S)
                return
            except REFUSED_FOR_GOOD as exc:
                await self._park(js, message.topic, payload, f"JetStream refused it: {exc}")
                return
            except Exception as exc:
                log.warning("JetStream could not take %s (%s); retrying", subject, exc)
                await asyncio.sleep(RETRY_S)

    async def _park(
        self, js: nats.js.JetStreamContext, topic: str, payload: bytes, reason: str
    ) -> None:
        """Parked with its reason and the head of its payload, once JetStream is there."""
        where = shown(topic)
        log.warning("parked a message on %s: %s", where, reason)
        reason = f"{reason} (bridged from MQTT, {len(payload)} bytes)"
        while True:
            try:
                await parking.park(js, topic, payload[:PARKED_HEAD], reason)
                self.parked += 1
                return
            except Exception as exc:
                log.warning("could not park the message on %s (%s); retrying", where, exc)
                await asyncio.sleep(RETRY_S)

    async def _ack_in_order(
        self,
        client: mqtt.Client,
        stored: asyncio.Queue[tuple[mqtt.MQTTMessage, asyncio.Task[None]]],
    ) -> None:
        """MQTT acknowledges QoS 1 messages in the order they came: each once it is stored."""
        while True:
            message, storing = await stored.get()
            await storing
            client.ack(message.mid, message.qos)
            self.forwarded += 1
