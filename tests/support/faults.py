"""Processes the fault suite starts and kills: Celery workers, the Procfile's web line; and the
checks it ends with (the catalog equals the sandbox's truth, no duplicate change rows)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Change, SyncRun
from tests.support.ops import BIN, ROOT, clean_env, free_port, wait_until
from tests.support.settings import SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY
from tests.support.sync import assert_matches_truth


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (a prefork pool, gunicorn's workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def sigkill(pids: list[int]) -> int:
    """SIGKILL each of ``pids``; how many were still there to kill."""
    killed = 0
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal a process started with ``start_new_session`` and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the group, SIGKILL it if it has not ended in ``timeout``; reap the leader."""
    if process.poll() is None:
        kill_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    kill_group(process, signal.SIGKILL)  # stragglers of the group, if any
    if process.poll() is None:
        process.wait(timeout=10)


def service_env(
    sandbox_url: str, database_url: str, redis_url: str, **extra: str
) -> dict[str, str]:
    """The environment a worker or the web process runs with in the fault suite."""
    values = {
        "ZZY_BASE_URL": sandbox_url,
        "ZZY_PARTNER_ID": str(SANDBOX_PARTNER_ID),
        "ZZY_SIGN_KEY": SANDBOX_SIGN_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SUPPLIER_RATE_LIMIT": "1000",
        "SUPPLIER_BURST": "100",
        "READ_RETRIES": "2",
        "HTTP_TIMEOUT_S": "3",
        "HTTP_CONNECT_TIMEOUT_S": "2",
        "PRICE_REFRESH_INTERVAL_S": "1",
        "PRICE_BATCH_SIZE": "500",
        "PASS_LOCK_TTL_S": "3",
        "LOG_LEVEL": "WARNING",
    }
    return clean_env(**{**values, **extra})


class CeleryWorkers:
    """``celery worker`` processes (prefork), each in its own process group, logging to files."""

    def __init__(self, env: dict[str, str], logs: Path, *, concurrency: int = 2) -> None:
        self.env = env
        self.logs = logs
        self.concurrency = concurrency
        self.processes: list[subprocess.Popen[bytes]] = []
        self.kills = 0
        self._started = 0

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            self._started += 1
            command = [
                str(BIN / "celery"), "-A", "worker.celery_app", "worker", "--pool=prefork",
                f"--concurrency={self.concurrency}", "--without-mingle", "--without-gossip",
                "--loglevel=WARNING", f"--hostname=fault{self._started}@%h",
            ]  # fmt: skip
            with open(self.logs / f"worker-{self._started}.log", "ab") as out:
                self.processes.append(
                    subprocess.Popen(
                        command,
                        env=self.env,
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

    def pool_pids(self) -> list[int]:
        return [child for p in self.processes if p.poll() is None for child in children(p.pid)]

    def wait_ready(self, timeout: float = 60) -> None:
        """Every worker has forked its pool."""
        ok = wait_until(
            lambda: all(len(children(p.pid)) >= self.concurrency for p in self.processes),
            timeout,
        )
        assert ok, "workers did not start:\n" + self.log_tail()

    def kill_pool(self) -> int:
        """SIGKILL every pool process (the masters fork new ones); how many were killed."""
        killed = sigkill(self.pool_pids())
        self.kills += killed
        return killed

    def kill_all(self) -> None:
        """SIGKILL every worker, master and pool: as if the host died."""
        for process in self.processes:
            kill_group(process)
            process.wait(timeout=10)
            self.kills += 1
        self.processes = []

    def stop(self) -> None:
        """At the end of a test: SIGKILL (a warm shutdown would wait for running tasks)."""
        for process in self.processes:
            kill_group(process)
            process.wait(timeout=10)
        self.processes = []

    def log_tail(self, chars: int = 3000) -> str:
        texts = []
        for path in sorted(self.logs.glob("worker-*.log")):
            texts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(texts)


def procfile_line(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.removeprefix(f"{name}:").strip()
    raise AssertionError(f"no {name} line in the Procfile")


class Web:
    """The Procfile's ``web`` line (gunicorn, gthread) on a free port, in its own group."""

    def __init__(self, env: dict[str, str], logs: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.kills = 0
        env = {**env, "WEB_PORT": str(self.port), "WEB_CONCURRENCY": str(workers)}
        with open(logs / "web.log", "ab") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", "exec " + procfile_line("web")],
                env=env,
                cwd=logs,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = logs / "web.log"

    def kill_workers(self, count: int = 2) -> int:
        """SIGKILL up to ``count`` of gunicorn's worker processes (the master forks new ones)."""
        killed = sigkill(children(self.process.pid)[:count])
        self.kills += killed
        return killed

    def stop(self) -> None:
        stop_group(self.process)


def converge(
    sessions: sessionmaker[Session],
    sandbox: Any,
    nudge: Callable[[], None],
    *,
    timeout: float,
    raw_as_truth: bool = True,
    diagnostics: Callable[[], str] = lambda: "",
) -> float:
    """Call ``nudge`` (queue a pass) until the catalog equals the sandbox's truth; seconds taken."""
    started = time.monotonic()
    deadline = started + timeout
    last: AssertionError | None = None
    next_nudge = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_nudge:
            nudge()
            next_nudge = time.monotonic() + 4
        try:
            assert_matches_truth(sessions, sandbox, raw_as_truth=raw_as_truth)
            return time.monotonic() - started
        except AssertionError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(
        f"the catalog did not converge in {timeout:.0f} s; last difference: {last!r}\n"
        + runs_summary(sessions)
        + "\n"
        + diagnostics()
    )


def duplicate_changes(sessions: sessionmaker[Session]) -> list[tuple[int, str, int | None, int]]:
    """Change rows that say the same thing twice: same product, kind and product Version.

    Holds for a catalog whose truth does not change while the test runs (so a product's
    prices are written once): a redelivered task or a pass run again after a kill must find
    the row already stored and write no second change for it.
    """
    with sessions() as session:
        rows = session.execute(
            select(Change.product_id, Change.kind, Change.version, func.count())
            .group_by(Change.product_id, Change.kind, Change.version)
            .having(func.count() > 1)
        ).all()
    return [(int(p), str(k), v, int(n)) for p, k, v, n in rows]


def runs_summary(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        runs = session.execute(
            select(SyncRun.id, SyncRun.kind, SyncRun.outcome, SyncRun.seen, SyncRun.error)
            .order_by(SyncRun.id.desc())
            .limit(8)
        ).all()
    return "recent runs: " + "; ".join(str(tuple(r)) for r in runs)
