"""Every retry is bounded, and a slow client cannot stall the receiver.

- A worker killed (SIGKILL) while processing a row: Celery redelivers the task each time
  (``acks_late``, ``task_reject_on_worker_lost``), but the claim stops at
  ``INBOX_MAX_ATTEMPTS``, and parks the row once the last attempt's lease has run out.
- The Procfile's ``web`` line under slow-body clients: a concurrent valid notice is answered
  within a second; the slow ones are cut off at ``CALLBACK_BODY_TIMEOUT_S``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callbacks.app import create_app
from callbacks.intake import SUCCESS
from callbacks.processing import LEASE_S
from callbacks.tasks import celery_for, sender_for
from models.base import utcnow
from models.db import make_engine, make_session_factory
from models.inbox import InboxMessage
from tests.support.callbacks import (
    PATH,
    SIGN_KEY,
    FakeCatalog,
    Sent,
    encode,
    envelope,
    run,
    serving,
    signed,
    wait_for,
)
from tests.support.faults import children
from tests.support.settings import make_settings

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class KillingSupplier:
    """A supplier whose every request kills the worker child that made it (SIGKILL)."""

    def __init__(self) -> None:
        self.requests = 0
        self.worker_pid: int | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if outer.worker_pid is not None:
                    for child in children(outer.worker_pid):
                        os.kill(child, signal.SIGKILL)
                time.sleep(0.5)
                self.send_response(500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def killing_supplier() -> Iterator[KillingSupplier]:
    supplier = KillingSupplier()
    yield supplier
    supplier.close()


def test_a_worker_killed_while_processing_a_row_runs_it_at_most_max_attempts_times(
    database_url: str,
    redis_url: str,
    redis_client: Any,  # emptied: no lock left behind by another test's killed worker
    killing_supplier: KillingSupplier,
    tmp_path: Path,
) -> None:
    max_attempts = 3
    queue = f"kill-test-{uuid.uuid4().hex[:10]}"
    settings = make_settings(
        killing_supplier.url,
        database_url,
        redis_url=redis_url,
        inbox_max_attempts=max_attempts,
        read_retries=0,
    )
    env = {
        **os.environ,
        "ZZY_BASE_URL": killing_supplier.url,
        "ZZY_PARTNER_ID": "9258",
        "ZZY_SIGN_KEY": SIGN_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INBOX_MAX_ATTEMPTS": str(max_attempts),
        "READ_RETRIES": "0",
    }
    worker = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "worker.celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "-Q",
            queue,
            "--loglevel",
            "WARNING",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    killing_supplier.worker_pid = worker.pid
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    try:
        app = create_app(settings, send=sender_for(celery_for(settings, queue=queue)))
        with serving(app) as url:
            body = encode(envelope("order_product_notify", {"ProductId": 11063, "Status": 2}))
            reply = httpx.post(url + PATH, content=body, headers=signed(), timeout=10)
        assert reply.json() == SUCCESS
        reached = wait_for(lambda: killing_supplier.requests >= max_attempts, 90)
        if not reached:
            worker.terminate()
            _, errors = worker.communicate(timeout=20)
            import redis as redis_lib

            with sessions() as session:
                states = [
                    (r.status, r.attempts, r.last_error)
                    for r in session.scalars(select(InboxMessage))
                ]
            queued = redis_lib.Redis.from_url(redis_url).llen(queue)
            pytest.fail(
                f"{killing_supplier.requests} requests; rows {states}; queued {queued}; "
                f"worker said: {errors[-3000:]!r}"
            )
        time.sleep(8)  # time enough for more redeliveries, were they not bounded
        assert killing_supplier.requests == max_attempts
        with sessions() as session:
            row = session.scalars(select(InboxMessage)).one()
        # The last attempt's lease has not run out: not parked yet (it could still be running).
        assert (row.status, row.attempts) == ("pending", max_attempts)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    # Once the lease has run out, the claim itself parks it; the supplier is not called again.
    later = utcnow() + timedelta(seconds=LEASE_S + 1)
    outcome = run(sessions, row.id, FakeCatalog(), max_attempts=max_attempts, now=lambda: later)
    assert outcome.state == "failed" and "gave up" in outcome.detail
    with sessions() as session:
        parked = session.get(InboxMessage, row.id)
        assert parked is not None and (parked.status, parked.attempts) == ("failed", max_attempts)
    assert killing_supplier.requests == max_attempts
    engine.dispose()


def test_an_exhausted_row_is_not_parked_while_its_last_attempt_may_still_run(
    app: Any, sessions: sessionmaker[Session], sent: Sent
) -> None:
    from callbacks.relay import run_relay

    with serving(app) as url:
        httpx.post(
            url + PATH,
            content=encode(envelope("order_product_notify", {"ProductId": 1, "Status": 2})),
            headers=signed(),
            timeout=10,
        )
    inbox_id = sent.ids[0]
    assert run(sessions, inbox_id, FakeCatalog(fail=True), max_attempts=2).state == "retry"
    with sessions.begin() as session:  # the second attempt is claimed, and runs long
        session.get(InboxMessage, inbox_id).attempts = 2  # type: ignore[union-attr]
        session.get(InboxMessage, inbox_id).next_attempt_at = utcnow() + timedelta(  # type: ignore[union-attr]
            seconds=LEASE_S
        )
    for minutes in (1, 2):
        with sessions.begin() as session:
            plan = run_relay(
                session,
                now=utcnow() + timedelta(minutes=minutes),
                stale_after_s=60,
                max_attempts=2,
                signature_ttl_s=600,
            )
        assert plan.parked == [] and plan.requeue == []
    with sessions.begin() as session:
        plan = run_relay(
            session,
            now=utcnow() + timedelta(seconds=LEASE_S + 1),
            stale_after_s=60,
            max_attempts=2,
            signature_ttl_s=600,
        )
    assert plan.parked == [inbox_id]


def test_the_relay_selects_due_rows_before_applying_its_limit(
    app: Any, sessions: sessionmaker[Session], sent: Sent
) -> None:
    from callbacks.relay import run_relay

    with serving(app) as url:
        for product in range(6):
            httpx.post(
                url + PATH,
                content=encode(
                    envelope("order_product_notify", {"ProductId": product, "Status": 2})
                ),
                headers=signed(timestamp_ms=int(time.time() * 1000) + product),
                timeout=10,
            )
    *backlog, due = sent.ids
    with sessions.begin() as session:  # five rows tried and backing off; one lost task
        for inbox_id in backlog:
            row = session.get(InboxMessage, inbox_id)
            assert row is not None
            row.attempts, row.updated_at = 4, utcnow() - timedelta(minutes=30)
            row.next_attempt_at = utcnow() + timedelta(minutes=10)
        lost = session.get(InboxMessage, due)
        assert lost is not None
        lost.next_attempt_at = utcnow() - timedelta(seconds=1)
    with sessions.begin() as session:
        plan = run_relay(
            session, now=utcnow(), stale_after_s=60, max_attempts=5, signature_ttl_s=600, limit=2
        )
    assert plan.requeue == [due]


# --- slow clients against the Procfile's web process ----------------------------------------


def _procfile_web() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise AssertionError("no web line in the Procfile")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _slow_client(port: int, headers: dict[str, str], declared: int) -> socket.socket:
    """Send the headers and the first bytes of a body, then stall."""
    client = socket.create_connection(("127.0.0.1", port), timeout=30)
    lines = [f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {declared}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"OrderNotifyHeader"')
    return client


def _status_of(client: socket.socket) -> int:
    data = client.recv(4096)
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(match.group(1)) if match else 0


def test_slow_body_clients_do_not_delay_a_concurrent_valid_notice(
    sqlite_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "WEB_PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "ZZY_BASE_URL": "http://127.0.0.1:9",
        "ZZY_PARTNER_ID": "9258",
        "ZZY_SIGN_KEY": SIGN_KEY,
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "CALLBACK_BODY_TIMEOUT_S": "3",
    }
    process = subprocess.Popen(
        ["bash", "-c", "exec " + _procfile_web()],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    slow: list[socket.socket] = []
    try:

        def up() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(up, 30), "web did not come up"
        # Signed slow bodies (they pass the header check) and unsigned ones.
        slow = [_slow_client(port, signed(), 2000) for _ in range(4)]
        slow += [_slow_client(port, {"Content-Type": "application/json"}, 2000) for _ in range(4)]
        time.sleep(0.3)
        started = time.monotonic()
        reply = httpx.post(
            base + PATH,
            content=encode(envelope("order_product_notify", {"ProductId": 5, "Status": 2})),
            headers=signed(),
            timeout=10,
        )
        elapsed = time.monotonic() - started
        assert reply.json() == SUCCESS
        assert elapsed < 1.0, f"a valid notice waited {elapsed:.2f} s behind slow clients"
        # Unsigned ones were refused without reading their bodies; signed ones are cut off.
        assert [_status_of(c) for c in slow[4:]] == [401] * 4
        cut_off = time.monotonic()
        assert [_status_of(c) for c in slow[:4]] == [408] * 4
        assert time.monotonic() - cut_off < 5
    finally:
        for client in slow:
            client.close()
        process.terminate()
        process.communicate(timeout=15)


def test_callback_tasks_have_time_limits_inside_the_claim_lease() -> None:
    from callbacks.tasks import follow_up_refresh, process_inbox

    for task in (process_inbox, follow_up_refresh):
        assert 0 < task.soft_time_limit < task.time_limit < LEASE_S


def test_worker_sessions_on_postgresql_bound_statements_and_lock_waits(pg_url: str) -> None:
    from sqlalchemy import text

    from worker.runtime import build_runtime

    runtime = build_runtime(make_settings("http://127.0.0.1:9", pg_url))
    try:
        with runtime.sessions() as session:
            statement = session.execute(text("SHOW statement_timeout")).scalar()
            lock = session.execute(text("SHOW lock_timeout")).scalar()
    finally:
        runtime.close()
    assert (statement, lock) == ("1min", "10s")
