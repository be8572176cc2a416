"""A PostgreSQL server of castline's own, for fault drills: stop it, start it again.

The plant's database is not something a test may switch off, so the drills in the tests and
benchmarks start a throwaway server with the local PostgreSQL binaries (`initdb`, `pg_ctl`)
on a loopback port and a folder of their own, and stop and restart it mid-run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from castline.messaging.broker import free_port


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise PostgresMissing(
            f"{name} not found: install the PostgreSQL server (Debian: apt-get install postgresql)"
        )
    return found


class DrillPostgres:
    """A throwaway PostgreSQL on 127.0.0.1; `stop()` and `start()` as often as a drill needs."""

    def __init__(self, port: int | None = None) -> None:
        # Its own folder in the system's temporary directory, which every user can reach.
        self.root = Path(tempfile.mkdtemp(prefix="castline-drill-pg-"))
        self.port = port or free_port()
        self.data = self.root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self._as_user = ["runuser", "-u", self._service_user(), "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        if not self.data.exists():
            self._init()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when a database server restarts."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        """Stop the server if it runs and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _init(self) -> None:
        self.data.mkdir(mode=0o700)
        if self._as_user:
            user = pwd.getpwnam(self._as_user[2])
            for path in (self.root, self.data):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, name: str, *args: str) -> None:
        command = [*self._as_user, binary(name), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip()}")

    @staticmethod
    def _service_user() -> str:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        raise PostgresMissing("running as root and no 'postgres' user to run PostgreSQL as")
