"""The background price refresh end to end: a sandbox repricing silently in real time, two
Celery workers, and the rolling tick (the beat's task) run here once a second.

Checks that the request rate stays under PRICE_REFRESH_SHARE of the limit, that no price gets
older than PRICE_MAX_AGE, that products that change often are visited more often than those
that rarely do, and that a reset (what a price notice does) makes a product due at once.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from models.base import utcnow
from models.catalog import Product
from models.freshness import PriceRefresh, PriceSchedule
from supplier_sandbox.server import SandboxConfig
from tests.support.settings import make_settings
from tests.support.sync import make_client
from tests.sync.test_celery_worker import celery_worker, worker_env
from worker.celery_app import create_celery
from worker.runtime import build_runtime, set_runtime
from worker.supplier.client import PRICES_PATH
from worker.sync.prices import refresh_many
from worker.sync.products import sync_products
from worker.sync.refresh_history import reset_clock
from worker.tasks import _rolling_price_refresh

RATE_LIMIT = 2.0
SHARE = 0.5
MAX_AGE_S = 24.0
RUN_S = 30.0
WARM_UP_ROUNDS = 6  # refreshes of the whole catalog 2 s apart: some history to learn from

FRESHNESS = {
    "supplier_rate_limit": RATE_LIMIT,
    "supplier_burst": 1,
    "price_refresh_share": SHARE,
    "price_max_age": MAX_AGE_S,
    "price_refresh_interval_s": 1.0,
    "price_refresh_min_interval_s": 1.0,
    "price_replan_interval_s": 3.0,
    "price_refresh_policy": "adaptive",
}


@pytest.fixture
def sandbox_config() -> Any:
    # Mean rate one change per 20 s: the two fastest products here change every 6 and 10 s,
    # the two slowest about once a minute and a half.
    return SandboxConfig(products=12, seed=7, reprice_rates="pareto:1.3,20", reprice_seed=3)


def _stamps(sessions: Any) -> dict[int, datetime | None]:
    with sessions() as session:
        return dict(
            session.execute(
                select(Product.product_id, Product.prices_refreshed_at).where(
                    Product.is_authorized.is_(True)
                )
            ).all()
        )


def test_adaptive_refresh_keeps_the_budget_and_the_ceiling_and_follows_change(
    redis_client: redis.Redis, redis_url: str, sqlite_url: str, sandbox: Any, tmp_path: Path
) -> None:
    settings = make_settings(sandbox.url, sqlite_url, redis_url=redis_url, **FRESHNESS)
    create_celery(settings)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    sessions = runtime.sessions
    env = {
        **worker_env(sandbox.url, sqlite_url, redis_url, f"sqlite:///{tmp_path / 'b.db'}"),
        **{key.upper(): str(value) for key, value in FRESHNESS.items()},
        "SUPPLIER_BURST": "1",
    }
    try:
        sync_products(sessions, runtime.supplier)
        unthrottled = make_client(sandbox.url)
        for _ in range(WARM_UP_ROUNDS):
            refresh_many(sessions, unthrottled, sandbox.state.catalog.authorized_ids())
            time.sleep(2)
        unthrottled.close()
        rates = {
            int(pid): rate
            for pid, rate in httpx.get(sandbox.url + "/_admin/reprices", timeout=5)
            .json()["rates"]
            .items()
        }
        by_rate = sorted(rates, key=rates.__getitem__)
        cold, hot = by_rate[:2], by_rate[-2:]
        oldest_age = 0.0
        reset_checked = False
        with (
            celery_worker(env, tmp_path / "w1.log") as first,
            celery_worker(env, tmp_path / "w2.log") as second,
        ):
            assert first.poll() is None and second.poll() is None
            time.sleep(3)  # both workers up
            started_at = utcnow()
            before = sandbox.state.traffic.stats()["by_path"].get(PRICES_PATH, 0)
            began = time.monotonic()
            while time.monotonic() - began < RUN_S:
                _rolling_price_refresh()
                now = utcnow()
                ages = [(now - at).total_seconds() for at in _stamps(sessions).values() if at]
                oldest_age = max([oldest_age, *ages])
                if not reset_checked and time.monotonic() - began > RUN_S / 2:
                    reset_checked = _reset_makes_it_due(sessions, cold[0])
                time.sleep(1.0)
            spent = sandbox.state.traffic.stats()["by_path"].get(PRICES_PATH, 0) - before
            elapsed = time.monotonic() - began
    finally:
        set_runtime(None)
        runtime.close()

    budget = RATE_LIMIT * SHARE
    # Under the share (one burst's slack), and most of it spent.
    assert spent <= budget * elapsed + 4, f"{spent} requests in {elapsed:.0f} s"
    assert spent >= 0.4 * budget * elapsed, f"only {spent} requests in {elapsed:.0f} s"
    # The ceiling held (a tick and a queue hop of slack).
    assert oldest_age <= MAX_AGE_S + 4, f"a price got {oldest_age:.1f} s old"
    with runtime.sessions() as session:
        counts = Counter(
            session.scalars(
                select(PriceRefresh.product_id).where(PriceRefresh.refreshed_at >= started_at)
            ).all()
        )
    assert sum(counts[p] for p in hot) > sum(counts[p] for p in cold), (counts, rates)
    assert reset_checked, "the reset product was not refreshed at once"


def _reset_makes_it_due(sessions: Any, product_id: int) -> bool:
    """Reset a product just refreshed, whose next visit is seconds away, and see a worker
    refresh it at once (within about two ticks)."""
    with sessions() as session:
        interval = session.scalar(
            select(PriceSchedule.interval_s).where(PriceSchedule.product_id == product_id)
        )
    if interval is None or interval < 5:
        return False
    refreshed = _stamps(sessions)[product_id]
    if refreshed is None or (utcnow() - refreshed).total_seconds() > 1:
        return False  # try again next tick, right after one of its visits
    reset_at = utcnow()
    reset_clock(sessions, product_id)
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        _rolling_price_refresh()
        time.sleep(0.5)
        stamp = _stamps(sessions)[product_id]
        if stamp is not None and stamp > reset_at:
            assert (stamp - refreshed).total_seconds() < interval
            return True
    raise AssertionError(f"product {product_id} not refreshed within 3.5 s of its reset")
