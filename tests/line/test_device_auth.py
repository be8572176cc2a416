"""Devices log in, and only the line speaks for the line: through the real nats-server,
its MQTT listener, paho, mosquitto_pub and nats-py, with and without TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from typer.testing import CliRunner

from castline.messaging import jetstream, uplink
from castline.messaging.broker import AUTH_FILE, EmbeddedNats, free_port, port_free
from castline.messaging.device_cli import device_app
from castline.messaging.devices import (
    CREDENTIALS_FILE,
    Login,
    Registry,
    Role,
    TlsFiles,
    client_tls,
    connect_options,
    provision,
    url_with_login,
)
from castline.messaging.mqtt_bridge import MqttBridge
from castline.settings import SettingsError, load
from tests.conftest import missing

from .conftest import until

PLANT = "p1"


@dataclass
class Secured:
    broker: EmbeddedNats
    home: Path
    line: Login
    m1: Login
    m2: Login


def start_secured(home: Path, tls: TlsFiles | None = None) -> Secured:
    registry = provision(home, PLANT, ["m1", "m2"])
    broker = EmbeddedNats(
        home / "nats",
        port=free_port(),
        mqtt_port=free_port(),
        authorization=registry.authorization(),
        tls=tls,
    )
    broker.start()
    return Secured(
        broker,
        home,
        registry.service(Role.LINE),
        registry.device(PLANT, "m1"),
        registry.device(PLANT, "m2"),
    )


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    server = start_secured(tmp_path / "home")
    yield server
    server.broker.stop()


class MqttDevice:
    """A paho client that records what the broker answers and delivers."""

    def __init__(
        self, port: int, login: Login | None, context: ssl.SSLContext | None = None
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.granted: dict[int, list[int]] = {}
        self.refused: str | None = None
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if login is not None:
            self.client.username_pw_set(login.user, login.password)
        if context is not None:
            self.client.tls_set_context(context)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *_: self.connected.clear()
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.refused = str(reason)
        else:
            self.connected.set()
        self.answered.set()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, codes: list[ReasonCode], _p: Properties
    ) -> None:
        self.granted[mid] = [code.value for code in codes]

    def subscribe(self, topic: str) -> list[int]:
        _, mid = self.client.subscribe(topic, qos=1)
        for _ in range(100):
            if mid in self.granted:
                return self.granted[mid]
            threading.Event().wait(0.05)
        raise AssertionError(f"no SUBACK for {topic}")

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def answered(device: MqttDevice) -> MqttDevice:
    assert device.answered.wait(10), "the broker did not answer the MQTT CONNECT"
    return device


async def line_client(server: Secured) -> NATS:
    return await nats.connect(
        servers=[server.broker.url], allow_reconnect=False, **connect_options(server.line)
    )


class Inbox:
    """Everything a line client sees on castline's subjects."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def record(self, msg: Msg) -> None:
        self.subjects.append(msg.subject)


# --- who may connect ---------------------------------------------------------------------


async def test_anonymous_and_wrong_logins_are_refused(secured: Secured) -> None:
    port = secured.broker.mqtt_port
    assert port is not None
    for login in (None, Login("p1.m1", "wrong"), Login("nobody", "x")):
        device = answered(MqttDevice(port, login))
        device.close()
        assert device.refused is not None and not device.connected.is_set()
        assert "authori" in device.refused.lower()
    with pytest.raises(Exception, match=r"(?i)authoriz"):
        await nats.connect(secured.broker.url, allow_reconnect=False, max_reconnect_attempts=0)


def test_mosquitto_clients_without_login_are_refused(secured: Secured) -> None:
    if shutil.which("mosquitto_pub") is None:
        missing("mosquitto_pub (Debian mosquitto-clients) not installed; `make test` installs it")
    port = str(secured.broker.mqtt_port)
    topic = f"castline/v1/{PLANT}/m1/verdict"
    anonymous = subprocess.run(
        ["mosquitto_pub", "-p", port, "-t", topic, "-m", '{"verdict":"OK"}', "-q", "1"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert anonymous.returncode != 0 and "not authori" in anonymous.stderr.lower()
    sub = subprocess.run(
        ["mosquitto_sub", "-p", port, "-t", "castline/#", "-C", "1", "-W", "3"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert sub.returncode != 0 and "not authori" in sub.stderr.lower()


async def test_a_device_cannot_use_core_nats(secured: Secured) -> None:
    """Device users are MQTT users: their login does not open a NATS connection."""
    with pytest.raises(Exception, match=r"(?i)authoriz"):
        await nats.connect(
            secured.broker.url,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            **connect_options(secured.m1),
        )


# --- what a device may do ----------------------------------------------------------------


async def test_a_device_sends_its_shot_and_reads_its_verdicts(secured: Secured) -> None:
    nc = await line_client(secured)
    seen = Inbox()
    await nc.subscribe("castline.>", cb=seen.record)
    await nc.flush()
    port = secured.broker.mqtt_port
    assert port is not None
    device = answered(MqttDevice(port, secured.m1))
    try:
        assert device.subscribe(f"castline/out/v1/{PLANT}/m1/verdict") == [1]
        assert device.subscribe(f"castline/v1/{PLANT}/m1/verdict") == [1]
        device.publish(f"castline/v1/{PLANT}/m1/shot", b'{"shot_number": 1}')
        device.publish(f"castline/v1/{PLANT}/m1/image/front", b"jpeg")
        await until(lambda: len(seen.subjects) >= 2, 10)
        assert seen.subjects[:2] == [
            f"castline.v1.{PLANT}.m1.shot",
            f"castline.v1.{PLANT}.m1.image.front",
        ]
        await nc.publish(f"castline.out.v1.{PLANT}.m1.verdict", b"NG")
        await nc.publish(f"castline.v1.{PLANT}.m1.verdict", b"NG")
        await nc.flush()
        await until(lambda: len(device.messages) >= 2, 10)
        assert sorted(t for t, _ in device.messages) == [
            f"castline/out/v1/{PLANT}/m1/verdict",
            f"castline/v1/{PLANT}/m1/verdict",
        ]
    finally:
        device.close()
        await nc.close()


async def test_a_device_cannot_pose_as_the_line_or_another_machine(secured: Secured) -> None:
    """What the testers did (`OK` on a machine's verdict topic) never reaches anyone."""
    nc = await line_client(secured)
    seen = Inbox()
    await nc.subscribe("castline.>", cb=seen.record)
    await nc.flush()
    port = secured.broker.mqtt_port
    assert port is not None
    cell = answered(MqttDevice(port, secured.m1))  # the robot cell listening for verdicts
    attacker = answered(MqttDevice(port, secured.m2))
    try:
        assert cell.subscribe(f"castline/v1/{PLANT}/m1/verdict") == [1]
        assert cell.subscribe(f"castline/out/v1/{PLANT}/m1/verdict") == [1]
        forged = [
            f"castline/v1/{PLANT}/m1/verdict",  # another machine's verdict
            f"castline/out/v1/{PLANT}/m1/verdict",
            f"castline/v1/{PLANT}/m2/verdict",  # its own verdict
            f"castline/out/v1/{PLANT}/m2/verdict",
            f"castline/v1/{PLANT}/m1/shot",  # another machine's shot
            "castline/v1/other/m2/shot",  # another plant
            f"castline/v1/{PLANT}/m2/*",  # a NATS wildcard as a topic level
            "$JS/API/STREAM/DELETE/CASTLINE",
        ]
        for topic in forged:
            attacker.publish(topic, b'{"verdict":"OK"}')
        attacker.publish(f"castline/v1/{PLANT}/m2/shot", b"last")  # allowed, comes after
        await until(lambda: f"castline.v1.{PLANT}.m2.shot" in seen.subjects, 10)
        await asyncio.sleep(0.3)
        # Only its own namespace gets through (`*` there is a literal level the line
        # dead-letters; NATS wildcards in a published subject match no subscription's
        # literal level, so no robot cell hears it).
        assert seen.subjects == [f"castline.v1.{PLANT}.m2.*", f"castline.v1.{PLANT}.m2.shot"]
        assert cell.messages == []
        assert attacker.subscribe(f"castline/v1/{PLANT}/m1/verdict") == [128]
        assert attacker.subscribe(f"castline/out/v1/{PLANT}/m1/verdict") == [128]
        assert attacker.subscribe("castline/#") == [128]
        assert attacker.subscribe("#") == [128]
    finally:
        cell.close()
        attacker.close()
        await nc.close()


@pytest.fixture
async def line_nc(secured: Secured) -> AsyncIterator[NATS]:
    nc = await line_client(secured)
    yield nc
    await nc.close()


async def test_the_stream_keeps_device_messages_for_the_line(
    secured: Secured, line_nc: NATS
) -> None:
    js = line_nc.jetstream()
    await jetstream.ensure_stream(js, max_bytes=64 * 1024**2)
    port = secured.broker.mqtt_port
    assert port is not None
    device = answered(MqttDevice(port, secured.m1))
    try:
        device.publish(f"castline/v1/{PLANT}/m1/shot", b"{}")
        for _ in range(100):
            if (await jetstream.stream_usage(js)).messages == 1:
                break
            await asyncio.sleep(0.05)
        usage = await jetstream.stream_usage(js)
        assert usage.messages == 1 and usage.max_bytes == 64 * 1024**2 and usage.alarm is None
    finally:
        device.close()


# --- credentials on disk and the device command --------------------------------------------


def test_secrets_are_private_and_the_server_sees_only_hashes(secured: Secured) -> None:
    credentials = secured.home / CREDENTIALS_FILE
    auth = secured.broker.store_dir / AUTH_FILE
    for path in (credentials, auth):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    server_view = auth.read_text() + secured.broker.config_path.read_text()
    for login in (secured.line, secured.m1, secured.m2):
        assert login.password not in server_view
    assert server_view.count('"$2b$') == 3
    assert "no_auth_user" not in server_view


def test_device_add_prints_a_working_login_and_reloads_the_running_broker(
    secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASTLINE_HOME", str(secured.home))
    monkeypatch.setenv("CASTLINE_PLANT", PLANT)
    result = CliRunner().invoke(device_app, ["add", "m9"])
    assert result.exit_code == 0, result.output
    lines = dict(
        line.split(": ", 1) for line in result.output.splitlines() if line.startswith("MQTT ")
    )
    login = Login(lines["MQTT username"], lines["MQTT password"])
    assert login.user == f"{PLANT}.m9"
    assert f"pid {secured.broker.pid}" in result.output
    stored = Registry.load(secured.home).accounts[login.user]
    assert stored.password is None  # only its hash is kept
    port = secured.broker.mqtt_port
    assert port is not None
    device = answered(MqttDevice(port, login))
    assert device.refused is None, "the broker did not take the new device"

    listed = CliRunner().invoke(device_app, ["list"])
    assert f"{PLANT}.m9" in listed.output and "castline.v1.p1.m9.>" in listed.output

    removed = CliRunner().invoke(device_app, ["remove", "m9"])
    assert removed.exit_code == 0, removed.output
    for _ in range(100):  # the connected device is cut off
        if not device.connected.is_set():
            break
        threading.Event().wait(0.05)
    device.close()
    assert not device.connected.is_set()
    again = answered(MqttDevice(port, login))
    again.close()
    assert again.refused is not None
    assert CliRunner().invoke(device_app, ["remove", "m9"]).exit_code == 1


# --- TLS ---------------------------------------------------------------------------------


def _write_pki(folder: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "castline test plant CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "castline broker")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(names, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True)
    files = TlsFiles(folder / "server.pem", folder / "server.key", folder / "ca.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert files.ca is not None
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return files


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Secured, TlsFiles]]:
    files = _write_pki(tmp_path / "pki")
    server = start_secured(tmp_path / "home", tls=files)
    yield server, files
    server.broker.stop()


async def test_tls_clients_connect_with_the_plant_ca(tls_server: tuple[Secured, TlsFiles]) -> None:
    server, files = tls_server
    assert server.broker.url.startswith("tls://")
    nc = await nats.connect(
        servers=[server.broker.url], allow_reconnect=False, **connect_options(server.line, files)
    )
    seen = Inbox()
    await nc.subscribe("castline.>", cb=seen.record)
    await nc.flush()
    port = server.broker.mqtt_port
    assert port is not None
    device = answered(MqttDevice(port, server.m1, client_tls(files.ca)))
    try:
        assert device.connected.is_set(), device.refused
        device.publish(f"castline/v1/{PLANT}/m1/shot", b"{}")
        await until(lambda: seen.subjects == [f"castline.v1.{PLANT}.m1.shot"], 10)
    finally:
        device.close()
        await nc.close()


async def test_plain_connections_are_refused_when_tls_is_on(
    tls_server: tuple[Secured, TlsFiles],
) -> None:
    server, _ = tls_server
    port = server.broker.mqtt_port
    assert port is not None
    plain = MqttDevice(port, server.m1)
    await asyncio.sleep(2.0)
    plain.close()
    assert not plain.connected.is_set()
    # NATS: the server says TLS is required and answers a plain CONNECT by closing
    with socket.create_connection(("127.0.0.1", server.broker.port), timeout=5) as sock:
        info = json.loads(sock.recv(4096).decode().removeprefix("INFO ").strip())
        assert info["tls_required"] is True
        login = json.dumps({"user": server.line.user, "pass": server.line.password})
        sock.sendall(f"CONNECT {login}\r\nPING\r\n".encode())
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert b"PONG" not in answer
    # a client that does not trust the plant's CA is refused too (the system CAs do not)
    with pytest.raises(Exception, match=r"(?i)certificate|ssl"):
        await nats.connect(
            servers=[server.broker.url],
            allow_reconnect=False,
            max_reconnect_attempts=0,
            **connect_options(server.line, TlsFiles(Path("x"), Path("y"), None)),
        )


async def test_the_uplink_runs_over_tls_checked_against_the_plant_ca(tmp_path: Path) -> None:
    """A plant's leaf node reaches the hub's TLS leafnode listener, trusting only the CA."""
    files = _write_pki(tmp_path / "pki")
    leaf_port = free_port()
    hub = EmbeddedNats(
        tmp_path / "hub", free_port(), None, name="hub", domain="hub", leaf_port=leaf_port,
        tls=files,
    )  # fmt: skip
    registry = provision(tmp_path / "plant", PLANT)
    plant = EmbeddedNats(
        tmp_path / "plant" / "nats", free_port(), None, name=PLANT, domain=PLANT,
        leaf_remotes=(f"tls://127.0.0.1:{leaf_port}",), authorization=registry.authorization(),
        tls=files,
    )  # fmt: skip
    hub.start()
    plant.start()
    try:
        pc = await nats.connect(plant.url, **connect_options(registry.service(Role.LINE), files))
        await jetstream.ensure_stream(pc.jetstream())
        hc = await nats.connect(hub.url, **connect_options(None, files))
        for _ in range(100):
            if await uplink.plant_reachable(hc, PLANT, timeout=0.5):
                break
        assert await uplink.plant_reachable(hc, PLANT)
        with socket.create_connection(("127.0.0.1", leaf_port), timeout=5) as sock:
            info = json.loads(sock.recv(4096).decode().removeprefix("INFO ").strip())
        assert info["tls_required"] is True  # the link the plant came in on is TLS
        await hc.close()
        await pc.close()
    finally:
        plant.stop()
        hub.stop()


async def test_the_bridge_login_forwards_devices_and_verdicts_only(secured: Secured) -> None:
    """`castline line bridge` as the `bridge` user: a plant broker's shots in, verdicts out,
    what can never be stored parked; it cannot publish a verdict nor speak for another
    plant."""
    if port_free(1883):
        missing("Mosquitto is not running on 127.0.0.1:1883")
    plant = f"b{uuid.uuid4().hex[:8]}"
    registry = Registry.load(secured.home)
    login = registry.service(Role.BRIDGE, plant)
    registry.save()
    secured.broker.reload(registry.authorization())
    await asyncio.sleep(0.5)
    nc = await line_client(secured)
    await jetstream.ensure_stream(nc.jetstream())
    seen = Inbox()
    await nc.subscribe("castline.>", cb=seen.record)
    await nc.flush()

    stop = asyncio.Event()
    url = url_with_login(secured.broker.url, login)
    bridge = MqttBridge("mqtt://127.0.0.1:1883", url, plant, client_id=f"bridge-{plant}")
    ready = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop, ready))
    await asyncio.wait_for(ready.wait(), 10)
    await asyncio.sleep(0.5)
    plant_side = answered(MqttDevice(1883, None))  # the plant's own (anonymous) broker
    try:
        assert plant_side.subscribe(f"castline/out/v1/{plant}/m1/verdict") == [1]
        plant_side.publish(f"castline/v1/{plant}/m1/shot", b"{}")
        await until(lambda: f"castline.v1.{plant}.m1.shot" in seen.subjects, 10)
        plant_side.publish(f"castline/v1/{plant}/m 1/shot", b"{}")  # no NATS subject: parked
        await until(lambda: bridge.parked == 1, 10)
        await nc.publish(f"castline.out.v1.{plant}.m1.verdict", b"NG")
        await until(lambda: len(plant_side.messages) == 1, 10)

        raw = await nats.connect(
            secured.broker.url, allow_reconnect=False, **connect_options(login)
        )
        for subject in (
            f"castline.out.v1.{plant}.m1.verdict",
            f"castline.v1.{plant}.m1.verdict",
            "castline.v1.otherplant.m1.shot",
        ):
            await raw.publish(subject, b"forged")
        await raw.publish(f"castline.v1.{plant}.m1.state", b"last")
        await raw.flush()
        await until(lambda: f"castline.v1.{plant}.m1.state" in seen.subjects, 10)
        await raw.close()
        assert [s for s in seen.subjects if "verdict" in s] == [
            f"castline.out.v1.{plant}.m1.verdict"
        ]
        assert not any("otherplant" in s for s in seen.subjects)
    finally:
        plant_side.close()
        stop.set()
        await task
        await nc.close()


def test_tls_settings_come_as_a_pair(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CASTLINE_TLS_KEY: give tls_cert and tls_key both"):
        load(tls_cert=tmp_path / "c.pem")
    files = load(tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem").tls
    assert files == TlsFiles(tmp_path / "c.pem", tmp_path / "k.pem", None)
    assert load().tls is None
