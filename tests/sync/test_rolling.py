"""The rolling price refresh: oldest first, in batches sized to the max age, not queued twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import Product as ProductRow
from tests.support.settings import make_settings
from worker.celery_app import QUEUE, ROLLING_PRIORITY, create_celery
from worker.coalesce import LocalCoalescer, RedisCoalescer, coalesce
from worker.runtime import build_runtime, set_runtime
from worker.supplier.client import SupplierClient
from worker.sync.prices import refresh_many
from worker.sync.products import sync_products
from worker.sync.rolling import due_for_refresh, rolling_batch_size


def test_batch_spreads_the_catalog_over_the_max_age() -> None:
    # 10,000 products, a tick a minute, 6 h: 10,000 * 1.25 / 360 per tick, done in ~4.8 h.
    assert rolling_batch_size(10_000, 60, 6 * 3600, 50) == 35
    assert rolling_batch_size(10_000, 60, 6 * 3600, 20) == 20
    assert rolling_batch_size(3, 60, 6 * 3600, 50) == 1
    assert rolling_batch_size(0, 60, 6 * 3600, 50) == 0


def test_least_recently_attempted_come_first_never_attempted_before_all(
    session_factory: sessionmaker[Session], supplier: SupplierClient, sandbox: Any
) -> None:
    result = sync_products(session_factory, supplier)
    ids = result.price_due
    refresh_many(session_factory, supplier, ids[5:], today=sandbox.state.today)
    now = utcnow()
    with session_factory.begin() as session:
        for age, pid in enumerate(ids[5:]):  # ids[5] is the youngest, ids[-1] the oldest
            session.execute(
                update(ProductRow)
                .where(ProductRow.product_id == pid)
                .values(
                    prices_refreshed_at=now - timedelta(minutes=age),
                    prices_attempted_at=now - timedelta(minutes=age),
                )
            )
    due = due_for_refresh(session_factory, interval_s=60, max_age=timedelta(minutes=30), cap=50)
    # 30 products over 30 one-minute ticks would be 2 a tick; the 5 never refreshed are overdue.
    assert due == sorted(ids[:5])
    due = due_for_refresh(session_factory, interval_s=60, max_age=timedelta(minutes=2), cap=12)
    assert due == sorted(ids[:5]) + list(reversed(ids[5:]))[:7]
    refresh_many(session_factory, supplier, ids[:5], today=sandbox.state.today)
    # Nothing overdue: the steady spread, ceil(30 * 1.25 / 30) = 2, oldest first.
    due = due_for_refresh(session_factory, interval_s=60, max_age=timedelta(minutes=30), cap=50)
    assert due == [ids[-1], ids[-2]]


def test_memory_coalescer_lets_one_through_per_window() -> None:
    clock = [0.0]
    coalescer = LocalCoalescer(clock=lambda: clock[0])
    assert coalesce(coalescer, "k", [1, 2, 1], 10) == [1, 2]
    assert coalesce(coalescer, "k", [1, 3], 10) == [3]
    clock[0] = 11
    assert coalesce(coalescer, "k", [1], 10) == [1]


def test_rolling_tick_queues_the_oldest_once_with_the_rolling_priority(
    redis_client: redis.Redis, redis_url: str, sqlite_url: str, sandbox: Any
) -> None:
    from worker.tasks import _rolling_price_refresh

    settings = make_settings(sandbox.url, sqlite_url, redis_url=redis_url, price_batch_size=7)
    create_celery(settings)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    try:
        sync_products(runtime.sessions, runtime.supplier)
        assert _rolling_price_refresh() == 7  # all 30 are overdue: the cap holds
        assert _rolling_price_refresh() == 0  # still queued: not queued again
        rolling_list = f"{QUEUE}\x06\x16{ROLLING_PRIORITY}"
        assert redis_client.llen(rolling_list) == 7 and redis_client.llen(QUEUE) == 0
        assert RedisCoalescer(redis_client).first_in("rolling-prices:10001", 1) is False
    finally:
        set_runtime(None)
        runtime.close()
