"""The tasks through a real Celery worker process: on Redis (priorities hold) and on the
server-less SQLAlchemy broker (the embedded default)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.catalog import Change
from models.catalog import Product as ProductRow
from models.db import make_engine, make_session_factory
from tests.support.settings import SANDBOX_PARTNER_ID, SANDBOX_SIGN_KEY, make_settings
from tests.support.sync import make_client
from worker.celery_app import create_celery
from worker.sync.products import sync_products
from worker.tasks import queue_price_refresh, queue_product_refresh

CELERY = str(Path(sys.executable).with_name("celery"))
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def celery_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``celery worker`` in its own process: one solo process, so it takes one message at a time."""
    command = [
        CELERY, "-A", "worker.celery_app", "worker", "--pool=solo", "--concurrency=1",
        "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=INFO",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_env(
    sandbox_url: str, database_url: str, redis_url: str, broker_db_url: str
) -> dict[str, str]:
    return {
        "ZZY_BASE_URL": sandbox_url,
        "ZZY_PARTNER_ID": str(SANDBOX_PARTNER_ID),
        "ZZY_SIGN_KEY": SANDBOX_SIGN_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BROKER_DB_URL": broker_db_url,
        "SUPPLIER_RATE_LIMIT": "1000",
        "SUPPLIER_BURST": "100",
    }


def wait_for(check: Callable[[], bool], log: Path, timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("worker did not finish in time; its log:\n" + log.read_text()[-4000:])


def refreshed_at(sessions: sessionmaker[Session]) -> dict[int, Any]:
    with sessions() as session:
        rows = session.execute(select(ProductRow.product_id, ProductRow.prices_refreshed_at))
        return {pid: at for pid, at in rows if at is not None}


def test_worker_on_redis_serves_urgent_refreshes_before_rolling_ones(
    redis_client: redis.Redis, redis_url: str, sqlite_url: str, sandbox: Any, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    client = make_client(sandbox.url)
    sync_products(sessions, client)
    client.close()
    catalog = sandbox.state.catalog
    ids = catalog.authorized_ids()
    rolling, urgent, bumped = ids[:12], ids[20], ids[25]
    catalog.bump_version(bumped, {"ProductName": "改名"})
    create_celery(make_settings(sandbox.url, sqlite_url, redis_url=redis_url))
    # Queued while no worker runs: rolling first, the urgent ones last.
    for pid in rolling:
        queue_price_refresh(pid, urgent=False)
    queue_price_refresh(urgent, urgent=True)
    queue_product_refresh(bumped, urgent=True)

    log = tmp_path / "worker.log"
    broker_db = f"sqlite:///{tmp_path / 'unused-broker.db'}"
    with celery_worker(worker_env(sandbox.url, sqlite_url, redis_url, broker_db), log):
        wait_for(lambda: set(rolling) | {urgent, bumped} <= set(refreshed_at(sessions)), log)

    stamps = refreshed_at(sessions)
    assert stamps[urgent] < min(stamps[pid] for pid in rolling), (
        "urgent refresh waited behind rolling ones"
    )
    # The product refresh (urgent) queued its price refresh as urgent too: ahead of the rest.
    assert stamps[bumped] < max(stamps[pid] for pid in rolling)
    with sessions() as session:
        row = session.get(ProductRow, bumped)
        assert row is not None and row.product_name == "改名"
        kinds = session.scalars(
            select(Change.kind).where(Change.product_id == bumped).order_by(Change.seq)
        ).all()
    assert kinds == ["created", "updated", "prices"]
    engine.dispose()


def test_worker_on_the_serverless_sqlite_broker_runs_tasks(
    sqlite_url: str, sandbox: Any, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_session_factory(engine)
    client = make_client(sandbox.url)
    sync_products(sessions, client)
    client.close()
    pid = sandbox.state.catalog.authorized_ids()[3]
    sandbox.state.catalog.bump_version(pid, {"ProductName": "嵌入式"})
    broker_db = f"sqlite:///{tmp_path / 'broker.db'}"
    app = create_celery(make_settings(sandbox.url, sqlite_url, broker_db_url=broker_db))
    assert app.conf.broker_url.startswith("sqla+sqlite:///")
    queue_product_refresh(pid)

    log = tmp_path / "worker.log"
    with celery_worker(worker_env(sandbox.url, sqlite_url, "", broker_db), log):
        wait_for(lambda: pid in refreshed_at(sessions), log)
    with sessions() as session:
        row = session.get(ProductRow, pid)
        assert row is not None and row.product_name == "嵌入式"
    engine.dispose()
