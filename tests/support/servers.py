"""Private PostgreSQL and Redis servers on free ports, for tests that kill and restart them.

The shared servers (5432, 6379) are never touched: each of these is a throwaway cluster or
process in a temporary folder, started once per session and removed at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.ops import free_port, wait_until


def _find_initdb() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1])
    which = shutil.which("initdb")
    return Path(which) if which else None


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parents[1].name)
    except ValueError:
        return 0.0


class PrivatePostgres:
    """A PostgreSQL cluster of its own: ``initdb`` into a temporary folder, trust auth, no fsync.

    PostgreSQL refuses to run as root: under root the cluster belongs to the ``postgres`` user
    and every command runs as that user.
    """

    def __init__(self) -> None:
        initdb = _find_initdb()
        if initdb is None:
            raise FileNotFoundError("initdb not found (install PostgreSQL's server binaries)")
        self.bin = initdb.parent
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        )
        self.restarts = 0

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, command: list[str], timeout: float = 60) -> None:
        result = subprocess.run(
            self._as + command, capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({result.returncode}): {result.stdout}{result.stderr}\n"
                + self.server_log()
            )

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=300"
        )

    def start(self) -> None:
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                self._options(),
                "start",
            ]
        )

    def restart(self, mode: str = "fast") -> None:
        """Stop (``fast``: sessions cut; ``immediate``: a crash, recovery at start) and start."""
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop"])
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        try:
            self._run(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop"]
            )
        except (RuntimeError, subprocess.TimeoutExpired):
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


class PrivateRedis:
    """A ``redis-server`` of its own on a free port, no persistence; restartable on that port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found")
        self.binary = binary
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="faults-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.root / "server.log", "ab") as out:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.root),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_until(self.answers, 20, 0.05):
            raise RuntimeError(f"redis-server did not answer on {self.port}")

    def answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: every key is gone (no persistence), every connection cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self, down_s: float = 0.0) -> None:
        self.kill()
        time.sleep(down_s)
        self.start()
        self.restarts += 1

    def flush(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=5)
        client.flushall()
        client.close()

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
