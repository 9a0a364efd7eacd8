"""Thin Celery tasks around the sync functions: ids in, retries and ack policy, nothing else.

Every task is idempotent (running one twice stores the same thing), so ``acks_late`` is safe.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from sqlalchemy import select

from models.base import utcnow
from models.catalog import Product
from worker.celery_app import ROLLING_PRIORITY, URGENT_PRIORITY, get_app
from worker.coalesce import coalesce
from worker.locks import holding
from worker.runtime import get_runtime
from worker.settings import Settings
from worker.supplier.errors import SupplierUnavailable
from worker.sync.plan import PRICE_DUE_KINDS
from worker.sync.prices import refresh_prices
from worker.sync.products import sync_one_product, sync_products
from worker.sync.refresh_tick import due_now, refresh_budget_of
from worker.sync.rolling import drop_expired_days

log = logging.getLogger(__name__)

PASS_TIME_LIMIT_S = 900
RETRY = {
    "autoretry_for": (SupplierUnavailable,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 6,
}


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The sync's periodic tasks: the product pass and the rolling price refresh."""
    return {
        "product-pass": {
            "task": "worker.tasks.product_pass",
            "schedule": settings.product_pass_interval_s,
        },
        "rolling-price-refresh": {
            "task": "worker.tasks.rolling_price_refresh",
            "schedule": settings.price_refresh_interval_s,
        },
    }


def _send(name: str, args: list[Any], *, urgent: bool) -> None:
    get_app().send_task(name, args=args, priority=URGENT_PRIORITY if urgent else ROLLING_PRIORITY)


def queue_product_refresh(product_id: int, *, urgent: bool = True) -> None:
    """Enqueue a re-fetch of one product (1.1.1 ``productId=``); urgent ones overtake rolling work."""
    _send("worker.tasks.refresh_product", [product_id], urgent=urgent)


def queue_price_refresh(product_id: int, *, urgent: bool = True, background: bool = False) -> None:
    """Enqueue a price refresh of one product; urgent ones overtake rolling work, background
    ones draw on the background refresh's share of the supplier's budget."""
    queued_at = None if urgent else utcnow().isoformat()
    args: list[Any] = [product_id, queued_at]
    if background:
        args.append(True)
    _send("worker.tasks.refresh_product_prices", args, urgent=urgent)


def _product_pass() -> dict[str, Any]:
    """One product pass, unless another worker is running one."""
    runtime = get_runtime()
    settings = runtime.settings
    lock = runtime.pass_lock(ttl_s=settings.pass_lock_ttl_s)
    with holding(lock) as taken:
        if not taken:
            log.info("product pass skipped: another pass holds the lock")
            return {"outcome": "skipped"}
        result = sync_products(
            runtime.sessions, runtime.supplier, max_deauthorize_share=settings.deauthorize_max_share
        )
    for product_id in result.price_due:
        queue_price_refresh(product_id, urgent=False)
    return {"outcome": result.outcome, "run_id": result.run_id, "price_due": len(result.price_due)}


def _rolling_price_refresh() -> int:
    """Queue this tick's price refreshes and drop days that left the window.

    The scheduler (``worker.sync.refresh_tick``) picks a tick's share of the background
    budget by ``PRICE_REFRESH_POLICY``, plus every product at ``PRICE_MAX_AGE`` (or never
    refreshed, or reset by a notice or a refused order); those are queued first and skip the
    background bucket (the ceiling beats the budget), the others draw on it.
    """
    runtime = get_runtime()
    settings = runtime.settings
    drop_expired_days(runtime.sessions)
    budget = refresh_budget_of(settings)
    visits = due_now(runtime.sessions, budget)
    # A backlog must not make every tick queue the same products again; a planned visit's
    # window is no longer than the shortest interval, so the plan's fastest still go. Forced
    # visits (the ceiling, a reset) have their own key: a reset is not held back by a planned
    # visit just queued.
    window = settings.price_refresh_interval_s * 5
    # At most PRICE_BATCH_SIZE forced a tick (most overdue first): on a fresh catalog every
    # product is "never refreshed", and a queue of all of them would hold notices back.
    forced_ids = [v.product_id for v in visits if v.forced][: settings.price_batch_size]
    forced = coalesce(runtime.coalescer, "rolling-prices", forced_ids, window)
    planned = coalesce(
        runtime.coalescer,
        "planned-prices",
        [v.product_id for v in visits if not v.forced],
        min(window, settings.price_refresh_min_interval_s),
    )
    # Forced visits skip the background bucket but stay rolling work, behind notices and orders.
    for product_id in forced:
        queue_price_refresh(product_id, urgent=False)
    for product_id in planned:
        queue_price_refresh(product_id, urgent=False, background=True)
    return len(forced) + len(planned)


def _refresh_product_prices(
    product_id: int, queued_at: str | None = None, background: bool = False
) -> bool:
    """Refresh one product's prices; a rolling one already overtaken by a newer refresh is skipped."""
    runtime = get_runtime()
    if queued_at is not None and _refreshed_since(
        runtime.sessions, product_id, datetime.fromisoformat(queued_at)
    ):
        return False
    if background:
        runtime.background_limiter.acquire()
    return refresh_prices(
        runtime.sessions,
        runtime.supplier,
        product_id,
        window_days=runtime.settings.price_window_days,
    )


def _refresh_product(product_id: int) -> str:
    """Re-fetch one product; queue its prices when it is new, moved or back."""
    runtime = get_runtime()
    kind = sync_one_product(runtime.sessions, runtime.supplier, product_id)
    if kind in PRICE_DUE_KINDS:
        queue_price_refresh(product_id, urgent=True)
    return kind


def _refreshed_since(sessions: Any, product_id: int, moment: datetime) -> bool:
    with sessions() as session:
        stamp = session.scalar(
            select(Product.prices_refreshed_at).where(Product.product_id == product_id)
        )
    return stamp is not None and stamp >= moment


# Registered by name so ``send_task`` needs no import of this module.
product_pass = shared_task(
    name="worker.tasks.product_pass",
    soft_time_limit=PASS_TIME_LIMIT_S - 60,
    time_limit=PASS_TIME_LIMIT_S,
)(_product_pass)
rolling_price_refresh = shared_task(
    name="worker.tasks.rolling_price_refresh", soft_time_limit=50, time_limit=60
)(_rolling_price_refresh)
refresh_product_prices = shared_task(
    name="worker.tasks.refresh_product_prices",
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
    **RETRY,
)(_refresh_product_prices)
refresh_product = shared_task(
    name="worker.tasks.refresh_product", acks_late=True, soft_time_limit=60, time_limit=90, **RETRY
)(_refresh_product)
