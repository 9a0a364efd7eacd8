"""Thin Celery tasks for the callback inbox: inbox row ids in, nothing personal in arguments.

``relay_inbox`` runs on beat every ``RELAY_INTERVAL_S``; ``beat_schedule`` declares it here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import Celery, shared_task

from callbacks.processing import LEASE_S, Catalog, process_message, run_follow_up
from callbacks.relay import run_relay
from models.base import utcnow
from worker.celery_app import URGENT_PRIORITY  # notifications overtake rolling work
from worker.runtime import Runtime, get_runtime
from worker.settings import Settings

log = logging.getLogger(__name__)

PROCESS_TASK = "callbacks.tasks.process_inbox"
FOLLOW_UP_TASK = "callbacks.tasks.follow_up_refresh"
RELAY_TASK = "callbacks.tasks.relay_inbox"
RELAY_INTERVAL_S = 60.0
STALE_AFTER_S = 60.0  # a pending row untouched this long has lost its task (or failed)
# A notice's work is one supplier read (its client gives up within 40 s) and a transaction:
# past the soft limit the task fails and is retried by the relay; past the hard limit the child
# is killed. processing.LEASE_S covers the hard limit, so no running attempt is parked.
SOFT_TIME_LIMIT_S = 120
TIME_LIMIT_S = 150


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The callbacks' periodic task: re-queue lost or failed inbox rows, park repeated failures."""
    return {"relay-inbox": {"task": RELAY_TASK, "schedule": RELAY_INTERVAL_S}}


def celery_for(settings: Settings, **options: Any) -> Celery:
    """The project's Celery app (the sync's factory), configured for ``settings``."""
    from worker.celery_app import create_celery

    return create_celery(settings, **options)


def sender_for(app: Celery) -> Callable[[int], None]:
    """Publish one ``process_inbox`` message, once (no publish retries: the relay is the retry)."""

    def send(inbox_id: int) -> None:
        app.send_task(PROCESS_TASK, args=[inbox_id], priority=URGENT_PRIORITY, retry=False)

    return send


def catalog_for(runtime: Runtime) -> Catalog:
    """The catalog sync's functions bound to this process's sessions and supplier client."""
    from worker.sync.prices import refresh_prices
    from worker.sync.products import set_shelf_status, sync_one_product
    from worker.sync.refresh_history import reset_clock
    from worker.tasks import queue_product_refresh

    window = runtime.settings.price_window_days
    return Catalog(
        set_shelf_status=lambda pid, status: set_shelf_status(runtime.sessions, pid, status),
        refresh_product=lambda pid: sync_one_product(runtime.sessions, runtime.supplier, pid),
        refresh_prices=lambda pid: refresh_prices(
            runtime.sessions,
            runtime.supplier,
            reset_clock(runtime.sessions, pid),
            window_days=window,
        ),
        queue_product_refresh=lambda pid: queue_product_refresh(pid, urgent=True),
    )


def _process_inbox(inbox_id: int) -> str:
    """Apply one inbox row (idempotent); its trailing refresh is queued before it is done."""
    runtime = get_runtime()
    settings = runtime.settings
    outcome = process_message(
        runtime.sessions,
        inbox_id,
        catalog=catalog_for(runtime),
        coalescer=runtime.coalescer,
        window_s=settings.product_notice_coalesce_s,
        max_attempts=settings.inbox_max_attempts,
        follow_up=_publish_follow_up,
        secrets=[settings.zzy_sign_key.get_secret_value()],
        lease_s=LEASE_S,
        retry_base_s=STALE_AFTER_S,
    )
    return outcome.state


def _publish_follow_up(inbox_id: int, delay_s: float) -> None:
    """Queue the trailing refresh; raises when the broker would not take it."""
    follow_up_refresh.apply_async(args=[inbox_id], countdown=delay_s, priority=URGENT_PRIORITY)


def _follow_up_refresh(inbox_id: int) -> str:
    """The trailing refresh of a coalesced product notice; a failure leaves the row to retry."""
    runtime = get_runtime()
    settings = runtime.settings
    return run_follow_up(
        runtime.sessions,
        inbox_id,
        catalog=catalog_for(runtime),
        coalescer=runtime.coalescer,
        window_s=settings.product_notice_coalesce_s,
        max_attempts=settings.inbox_max_attempts,
        secrets=[settings.zzy_sign_key.get_secret_value()],
        lease_s=LEASE_S,
        retry_base_s=STALE_AFTER_S,
    )


def _relay_inbox(
    stale_after_s: float = STALE_AFTER_S, now: datetime | None = None
) -> dict[str, int]:
    """Re-queue rows not processed in time; park those out of attempts; prune the replay cache."""
    runtime = get_runtime()
    settings = runtime.settings
    with runtime.sessions.begin() as session:
        plan = run_relay(
            session,
            now=now or utcnow(),
            stale_after_s=stale_after_s,
            max_attempts=settings.inbox_max_attempts,
            signature_ttl_s=2 * settings.callback_tolerance_s + 60,
        )
    for inbox_id in plan.requeue:
        process_inbox.apply_async(args=[inbox_id], priority=URGENT_PRIORITY)
    if plan.requeue or plan.parked:
        log.info("relay: re-queued %s, parked %s", len(plan.requeue), len(plan.parked))
    return {"requeued": len(plan.requeue), "parked": len(plan.parked)}


_LIMITS: dict[str, Any] = {"soft_time_limit": SOFT_TIME_LIMIT_S, "time_limit": TIME_LIMIT_S}
process_inbox = shared_task(name=PROCESS_TASK, acks_late=True, ignore_result=True, **_LIMITS)(
    _process_inbox
)
follow_up_refresh = shared_task(name=FOLLOW_UP_TASK, acks_late=True, ignore_result=True, **_LIMITS)(
    _follow_up_refresh
)
relay_inbox = shared_task(name=RELAY_TASK, ignore_result=True, expires=RELAY_INTERVAL_S)(
    _relay_inbox
)
