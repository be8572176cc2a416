"""Ctrl-C like a terminal sends it: SIGINT to castline's process group must not reach the
embedded broker, so castline stops the line first and the broker last."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from castline.messaging.broker import EmbeddedNats, free_port


def test_the_broker_runs_in_a_session_of_its_own(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "nats", port=free_port(), mqtt_port=None) as server:
        assert server.pid is not None
        assert os.getpgid(server.pid) != os.getpgid(0)
        assert os.getsid(server.pid) == server.pid


def test_sigint_to_the_group_stops_the_owner_first_and_the_broker_after(tmp_path: Path) -> None:
    """A process that owns a broker gets SIGINT on its group, as from a terminal: the
    broker still serves while the owner shuts down, then the owner stops it; exit 0."""
    port = free_port()
    script = textwrap.dedent(f"""
        import signal, sys, time
        from pathlib import Path
        from castline.messaging.broker import EmbeddedNats, port_free
        broker = EmbeddedNats(Path({str(tmp_path / "nats")!r}), port={port}, mqtt_port=None)
        broker.start()
        broker.supervise()
        try:  # before the pid is told: the test's SIGINT may come right after it
            print(broker.pid, flush=True)
            while True:
                time.sleep(0.05)
        except KeyboardInterrupt:
            alive = not port_free({port}, "127.0.0.1")  # the broker outlived the Ctrl-C
            broker.stop()
            print("broker alive at interrupt:", alive, flush=True)
            sys.exit(0 if alive else 3)
    """)
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert owner.stdout is not None
    broker_pid = int(owner.stdout.readline())
    started = time.monotonic()
    os.killpg(owner.pid, signal.SIGINT)  # the whole foreground group, like Ctrl-C
    assert owner.wait(timeout=30) == 0, owner.stdout.read()
    # Ctrl-C to exit takes about 4 s for a whole `castline up` (docs/web.md); here only a
    # bound that a loaded machine cannot trip: the stop must not hang.
    assert time.monotonic() - started < 20
    assert "broker alive at interrupt: True" in owner.stdout.read()
    assert not Path(f"/proc/{broker_pid}").exists()  # stopped (and reaped) by its owner
