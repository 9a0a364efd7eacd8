"""The beat task reconciling orders whose Create or Pay answer was lost (a read, repeatable)."""

from __future__ import annotations

from celery import shared_task

from worker.orders.service import reconcile_unknown
from worker.runtime import get_runtime


def _reconcile_orders() -> dict[str, int]:
    """Ask ``PersonQrCodes`` about unknown orders that are due (bounded back-off per order)."""
    runtime = get_runtime()
    return reconcile_unknown(runtime.sessions, runtime.supplier)


reconcile_orders = shared_task(name="worker.orders.tasks.reconcile_orders", ignore_result=True)(
    _reconcile_orders
)
