"""The beat task reconciling orders whose Create or Pay answer was lost (a read, repeatable)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from worker.orders.service import reconcile_unknown
from worker.runtime import get_runtime
from worker.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Orders whose Create or Pay answer was lost: PersonQrCodes, with back-off per order."""
    return {
        "reconcile-orders": {
            "task": "worker.orders.tasks.reconcile_orders",
            "schedule": settings.order_reconcile_interval_s,
        }
    }


def _reconcile_orders() -> dict[str, int]:
    """Ask ``PersonQrCodes`` about unknown orders that are due (bounded back-off per order)."""
    runtime = get_runtime()
    return reconcile_unknown(runtime.sessions, runtime.supplier)


reconcile_orders = shared_task(name="worker.orders.tasks.reconcile_orders", ignore_result=True)(
    _reconcile_orders
)
