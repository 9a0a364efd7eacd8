"""Embedded mode (no Redis): the Procfile's four worker processes share one supplier budget."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.ops import BIN, clean_env, wait_until
from tests.support.settings import SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY, make_settings
from worker.celery_app import create_celery

RATE = 8.0


@pytest.fixture
def sandbox_config() -> Any:
    from supplier_sandbox.server import SandboxConfig

    return SandboxConfig(products=24, seed=3)


def test_four_embedded_worker_processes_stay_under_the_supplier_rate_limit(
    sandbox: Any, sqlite_url: str, tmp_path: Path
) -> None:
    stamps: list[float] = []
    guard = threading.Lock()
    count = sandbox.state.traffic.count

    def timed(path: str) -> None:  # the sandbox's own record of when each request arrived
        with guard:
            stamps.append(time.monotonic())
        count(path)

    sandbox.state.traffic.count = timed
    broker = f"sqlite:///{tmp_path}/broker.db"
    env = clean_env(
        ZZY_BASE_URL=sandbox.url,
        ZZY_PARTNER_ID=str(SANDBOX_PARTNER_ID),
        ZZY_SIGN_KEY=SANDBOX_SIGN_KEY,
        DATABASE_URL=sqlite_url,
        BROKER_DB_URL=broker,
        SUPPLIER_RATE_LIMIT=str(RATE),
        SUPPLIER_BURST="1",
        LOG_LEVEL="WARNING",
    )
    log_path = tmp_path / "worker.log"
    command = [
        str(BIN / "celery"), "-A", "worker.celery_app", "worker", "--concurrency", "4",
        "--without-mingle", "--without-gossip", "--without-heartbeat",
    ]  # fmt: skip
    ids = [p["ProductId"] for p in sandbox.state.catalog.true_products()]
    sender = create_celery(make_settings(sandbox.url, sqlite_url, broker_db_url=broker))
    for product_id in ids:  # each: the product, then (queued by it) its prices
        sender.send_task("worker.tasks.refresh_product", args=[product_id])
    with log_path.open("wb") as log:  # started after the queue exists in the broker file
        worker = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        expected = 2 * len(ids)
        assert wait_until(lambda: len(stamps) >= expected, 60), log_path.read_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    measured = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    busiest = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
    print(f"four processes: {len(stamps)} requests at {measured:.2f} req/s, busiest second "
          f"{busiest}, limit {RATE}")  # fmt: skip
    assert measured <= RATE * 1.05, f"{measured:.2f} req/s against a limit of {RATE}"
    assert busiest <= RATE + 1
