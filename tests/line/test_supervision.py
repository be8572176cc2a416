"""The embedded broker is watched: killed, it comes back (or castline gives up and says
why); it never outlives castline; one left behind by an earlier castline is stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from castline.messaging import broker as broker_module
from castline.messaging import jetstream
from castline.messaging.broker import EmbeddedNats, free_port, port_free

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process checks read /proc")


def state_of(pid: int) -> str | None:
    """The process state letter ("Z": zombie), or None when no such process exists."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def wait_for(predicate: object, timeout: float = 20.0) -> None:
    assert callable(predicate)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


async def publish_until_acked(nc: NATS, payload: bytes, timeout: float = 30.0) -> int:
    """As a device does: retry (with one message id, so once stored) until JetStream acks."""
    end = time.monotonic() + timeout
    while True:
        try:
            ack = await nc.jetstream().publish(
                "castline.v1.p1.m1.shot", payload, timeout=2, headers={"Nats-Msg-Id": "after"}
            )
            return ack.seq
        except (NatsTimeout, NoRespondersError):
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats", port=free_port(), mqtt_port=free_port())
    server.start()
    yield server
    server.stop()


async def test_a_killed_broker_is_reaped_and_started_again(watched: EmbeddedNats) -> None:
    gave_up: list[str] = []
    watched.supervise(gave_up.append)
    nc = await nats.connect(watched.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await jetstream.ensure_stream(nc.jetstream())
    await nc.jetstream().publish("castline.v1.p1.m1.shot", b"before")
    first = watched.pid
    assert first is not None and watched.health().ok
    os.kill(first, signal.SIGKILL)

    wait_for(lambda: watched.health().restarts == 1 and watched.healthy)
    assert state_of(first) is None, "the killed server was left a zombie"
    health = watched.health()
    assert health.pid != first and health.last_exit == "was killed by SIGKILL"
    # clients reconnect, and JetStream kept what it had on disk
    assert await publish_until_acked(nc, b"after") == 2
    await nc.close()
    assert gave_up == []


def test_health_says_when_an_unwatched_broker_is_down(watched: EmbeddedNats) -> None:
    pid = watched.pid
    assert pid is not None and watched.health().status == "ok"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: watched.health().status == "down")
    assert not watched.healthy


def test_after_repeated_failures_it_gives_up_and_says_why(
    watched: EmbeddedNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_module, "BACKOFF_S", (0.2,))
    gave_up: list[str] = []
    done = threading.Event()

    def give_up(reason: str) -> None:
        gave_up.append(reason)
        done.set()

    watched.supervise(give_up, max_failures=2)
    pid = watched.pid
    assert pid is not None
    with socket.socket() as squatter:  # something else takes the port meanwhile
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: port_free(watched.port))
        squatter.bind(("127.0.0.1", watched.port))
        squatter.listen()
        assert done.wait(20), "the supervisor never gave up"
    assert watched.health().status == "failed" and not watched.healthy
    assert f"port {watched.port}" in gave_up[0] and "nats.log" in gave_up[0]
    assert state_of(pid) is None


def _spawn_castline_like(store: Path, ports: tuple[int, int], die_with_parent: bool) -> int:
    """A Python process that starts a broker the way castline does, prints the server's
    pid and then waits to be killed; returns the server's pid."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from castline.messaging.broker import EmbeddedNats
        server = EmbeddedNats(Path({str(store)!r}), port={ports[0]}, mqtt_port={ports[1]},
                              die_with_parent={die_with_parent})
        server.start()
        print(server.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    parent.kill()  # kill -9 of castline: no cleanup of its own runs
    parent.wait()
    return pid


def test_the_broker_dies_with_castline_even_on_kill_9(tmp_path: Path) -> None:
    ports = (free_port(), free_port())
    server = _spawn_castline_like(tmp_path / "nats", ports, die_with_parent=True)
    wait_for(lambda: state_of(server) in (None, "Z"), 15)
    wait_for(lambda: port_free(ports[0]) and port_free(ports[1]), 15)


def test_a_broker_left_behind_is_stopped_before_a_new_one_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As after a castline that could not take its server with it (not Linux, an old one)."""
    ports = (free_port(), free_port())
    store = tmp_path / "nats"
    stale = _spawn_castline_like(store, ports, die_with_parent=False)
    assert state_of(stale) not in (None, "Z") and not port_free(ports[0])
    server = EmbeddedNats(store, port=ports[0], mqtt_port=ports[1])
    try:
        server.start()
        assert server.healthy and server.pid != stale
        assert f"stopped nats-server (pid {stale})" in capsys.readouterr().out
        assert state_of(stale) in (None, "Z")
    finally:
        server.stop()


def test_a_foreign_process_on_the_port_is_not_killed(tmp_path: Path) -> None:
    """Only a nats-server started with this folder's config counts as ours."""
    store = tmp_path / "nats"
    store.mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (store / "nats.pid").write_text(str(sleeper.pid))
        assert broker_module.stop_stale(store) is None
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
