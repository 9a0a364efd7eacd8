"""The sync through real Celery workers on PostgreSQL and Redis, while things break.

Each test ends the same way: passes run (queued here, as beat would) until the catalog equals
the sandbox's truth (``assert_matches_truth``: every product field, calendar day and session),
and no change row says the same thing twice (``duplicate_changes``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Change, SyncRun
from supplier_sandbox.api import PRICES_PATH, PRODUCTS_PATH
from supplier_sandbox.faults import TRANSPORT_KINDS
from supplier_sandbox.quirks import QUIRKS
from supplier_sandbox.server import SandboxConfig
from tests.support.faults import (
    CeleryWorkers,
    converge,
    duplicate_changes,
    runs_summary,
    service_env,
)
from tests.support.ops import wait_until
from tests.support.servers import PrivateRedis
from tests.support.settings import make_settings
from worker.celery_app import create_celery

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]


def requests_to(sandbox: Any, path: str) -> int:
    return int(sandbox.state.traffic.stats()["by_path"].get(path, 0))


@pytest.fixture
def workers_for(
    fault_db: str, fault_redis: PrivateRedis, tmp_path: Path
) -> Iterator[Callable[..., CeleryWorkers]]:
    """Start Celery workers on the private servers; every one is stopped at the end."""
    made: list[CeleryWorkers] = []

    def make(sandbox: Any, *, concurrency: int = 2, **extra: str) -> CeleryWorkers:
        env = service_env(sandbox.url, fault_db, fault_redis.url, **extra)
        workers = CeleryWorkers(env, tmp_path, concurrency=concurrency)
        made.append(workers)
        return workers

    yield make
    for workers in made:
        workers.stop()


def celery_client(sandbox: Any, database_url: str, redis_url: str) -> Celery:
    return create_celery(make_settings(sandbox.url, database_url, redis_url=redis_url))


def nudger(app: Celery) -> Callable[[], None]:
    """What beat does: a product pass and a rolling price refresh."""

    def nudge() -> None:
        app.send_task("worker.tasks.product_pass")
        app.send_task("worker.tasks.rolling_price_refresh")

    return nudge


@pytest.mark.parametrize(
    "fault_sandbox", [SandboxConfig(products=150, seed=13, latency_ms=15)], indirect=True
)
def test_workers_killed_during_product_passes_and_the_price_fan_out_converge(
    fault_sandbox: Any,
    fault_db: str,
    fault_redis: PrivateRedis,
    fault_sessions: sessionmaker[Session],
    workers_for: Callable[..., CeleryWorkers],
) -> None:
    workers = workers_for(fault_sandbox, PAGE_SIZE="10")
    workers.start()
    workers.wait_ready()
    app = celery_client(fault_sandbox, fault_db, fault_redis.url)
    nudge = nudger(app)

    def kill_when(path: str, more: int, kill: Callable[[], None]) -> None:
        """Queue passes until ``more`` further requests reach ``path``, then kill."""
        start = requests_to(fault_sandbox, path)
        deadline = time.monotonic() + 60
        app.send_task("worker.tasks.product_pass")
        while requests_to(fault_sandbox, path) < start + more:
            assert time.monotonic() < deadline, (
                f"no progress on {path}\n{runs_summary(fault_sessions)}\n{workers.log_tail()}"
            )
            if path == PRICES_PATH:
                app.send_task("worker.tasks.rolling_price_refresh")
            else:
                app.send_task("worker.tasks.product_pass")
            time.sleep(1.0 if path == PRICES_PATH else 0.3)
        kill()

    def whole_worker() -> None:
        workers.kill_all()
        workers.start()
        workers.wait_ready()

    # Three kills during product passes (pool processes twice, the whole worker once) ...
    for kill in (workers.kill_pool, whole_worker, workers.kill_pool):
        kill_when(PRODUCTS_PATH, 3, kill)
    # ... and three during the price fan-out.
    for kill in (workers.kill_pool, whole_worker, workers.kill_pool):
        kill_when(PRICES_PATH, 15, kill)
    assert workers.kills >= 6

    converge(fault_sessions, fault_sandbox, nudge, timeout=120, diagnostics=workers.log_tail)
    assert duplicate_changes(fault_sessions) == []
    assert requests_to(fault_sandbox, PRICES_PATH) >= 150  # the fan-out did run, through kills


@pytest.mark.parametrize(
    "fault_sandbox", [SandboxConfig(products=120, seed=17, latency_ms=20)], indirect=True
)
def test_redis_restarted_during_a_pass_ends_it_cleanly_and_the_next_pass_converges(
    fault_sandbox: Any,
    fault_db: str,
    fault_redis: PrivateRedis,
    fault_sessions: sessionmaker[Session],
    workers_for: Callable[..., CeleryWorkers],
) -> None:
    workers = workers_for(fault_sandbox, PAGE_SIZE="5")
    workers.start()
    workers.wait_ready()
    app = celery_client(fault_sandbox, fault_db, fault_redis.url)
    app.send_task("worker.tasks.product_pass")
    assert wait_until(lambda: requests_to(fault_sandbox, PRODUCTS_PATH) >= 4, 60), (
        workers.log_tail()
    )
    hit = latest_run(fault_sessions)
    assert hit is not None and hit[1] == "running", hit
    fault_redis.restart(down_s=2.0)  # queue, lock and rate bucket gone with it

    # That pass ends: completed, or failed with its error on the run row; never left running.
    assert wait_until(lambda: ended(fault_sessions, hit[0]), 90), (
        f"{runs_summary(fault_sessions)}\n{workers.log_tail()}"
    )
    run = run_row(fault_sessions, hit[0])
    assert run.outcome in {"ok", "failed"}, run
    if run.outcome == "failed":
        assert run.error, run
    # The workers reconnect by themselves, and the next passes converge.
    converge(
        fault_sessions,
        fault_sandbox,
        nudger(celery_client(fault_sandbox, fault_db, fault_redis.url)),
        timeout=120,
        diagnostics=workers.log_tail,
    )
    assert duplicate_changes(fault_sessions) == []
    assert all(p.poll() is None for p in workers.processes), workers.log_tail()


@pytest.mark.parametrize(
    "fault_sandbox",
    [SandboxConfig(products=100, seed=19, quirks=frozenset(QUIRKS), fail_rate=0.1)],
    indirect=True,
)
def test_a_supplier_failing_one_request_in_ten_every_way_still_converges(
    fault_sandbox: Any,
    fault_db: str,
    fault_redis: PrivateRedis,
    fault_sessions: sessionmaker[Session],
    workers_for: Callable[..., CeleryWorkers],
) -> None:
    # Every transport fault the sandbox has, not only the quirks' own (busy, 5xx, reset, cut
    # bodies): 429 with Retry-After, timeouts, answers lost or late, envelopes refused, not JSON.
    fault_sandbox.state.traffic.fault_kinds = tuple(sorted(TRANSPORT_KINDS))
    workers = workers_for(fault_sandbox, PAGE_SIZE="20", READ_RETRIES="6", PRICE_MAX_AGE="20")
    workers.start()
    workers.wait_ready()
    app = celery_client(fault_sandbox, fault_db, fault_redis.url)
    converge(
        fault_sessions,
        fault_sandbox,
        nudger(app),
        timeout=150,
        raw_as_truth=False,
        diagnostics=workers.log_tail,
    )
    assert duplicate_changes(fault_sessions) == []
    failed = fault_sandbox.state.traffic.stats()["total"] - minimum_requests(fault_sandbox)
    assert failed > 0  # faults did fire (and were retried)


@pytest.mark.parametrize(
    "fault_sandbox", [SandboxConfig(products=150, seed=23, latency_ms=5)], indirect=True
)
def test_three_workers_at_once_reach_the_same_state_within_the_shared_rate_limit(
    fault_sandbox: Any,
    fault_db: str,
    fault_redis: PrivateRedis,
    fault_sessions: sessionmaker[Session],
    workers_for: Callable[..., CeleryWorkers],
) -> None:
    rate, burst = 20, 5
    workers = workers_for(
        fault_sandbox, PAGE_SIZE="10", SUPPLIER_RATE_LIMIT=str(rate), SUPPLIER_BURST=str(burst)
    )
    workers.start(3)
    workers.wait_ready()
    app = celery_client(fault_sandbox, fault_db, fault_redis.url)
    for _ in range(3):  # each worker may take one; the pass lock lets one run
        app.send_task("worker.tasks.product_pass")
    converge(fault_sessions, fault_sandbox, nudger(app), timeout=150, diagnostics=workers.log_tail)
    assert duplicate_changes(fault_sessions) == []
    with fault_sessions() as session:
        created = session.scalar(
            select(func.count()).select_from(Change).where(Change.kind == "created")
        )
    assert created == len(fault_sandbox.state.catalog.authorized_ids())
    # The bucket holds ``burst`` tokens and refills at ``rate``: at most rate + burst in any
    # second, plus a quarter second of arrival jitter between a worker and the supplier.
    peak = fault_sandbox.state.traffic.peak(1.0)
    assert peak <= rate * 1.25 + burst, peak
    assert fault_sandbox.state.traffic.stats()["total"] >= 150 + 15


def latest_run(sessions: sessionmaker[Session]) -> tuple[int, str] | None:
    with sessions() as session:
        row = session.execute(
            select(SyncRun.id, SyncRun.outcome)
            .where(SyncRun.kind == "products")
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def run_row(sessions: sessionmaker[Session], run_id: int) -> SyncRun:
    with sessions() as session:
        row = session.get(SyncRun, run_id)
        assert row is not None
        return row


def ended(sessions: sessionmaker[Session], run_id: int) -> bool:
    return run_row(sessions, run_id).outcome != "running"


def minimum_requests(sandbox: Any) -> int:
    products = len(sandbox.state.catalog.authorized_ids())
    return products // 20 + 1 + products
