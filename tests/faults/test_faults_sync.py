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
from sqlalchemy.orm import Session, sessionmaker

from supplier_sandbox.api import PRICES_PATH, PRODUCTS_PATH
from supplier_sandbox.server import SandboxConfig
from tests.support.faults import (
    CeleryWorkers,
    converge,
    duplicate_changes,
    runs_summary,
    service_env,
)
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
