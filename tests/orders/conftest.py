"""Fixtures for orders end to end: the sandbox, the callback receiver on loopback and a real
Celery worker on Redis, with one product shaped by each test and synced into the catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from callbacks.app import create_app
from callbacks.tasks import sender_for
from tests.callbacks import conftest as callback_fixtures
from tests.support.callbacks import PATH, serving
from tests.support.settings import make_settings
from worker.runtime import Runtime, get_runtime

# The callback tests' fixtures: a unique Celery queue and a real worker on it.
celery_queue = callback_fixtures.celery_queue
start_celery = callback_fixtures.start_celery

# A plain product: on shelf, no limits, refunds allowed, one price rule over 60 days.
PLAIN = {
    "ProductStatus": 1,
    "EntranceMode": 0,
    "CustomerSet": 2,
    "MaxNumberByOrder": 5,
    "MaxNumberByMobile": 0,
    "LimitDayByMobile": 0,
    "MaxNumberByCardID": 0,
    "LimitDayByCardID": 0,
    "MinAge": 0,
    "MaxAge": 0,
    "RefundSet": 1,
    "TotoalStock": 0,
    "BookingTime": None,
}
UNIT_PRICE = "88.50"


def rules(today: date, *, stock: int = 100, booking_day: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "PriceType": 1,
            "BeginTime": today.isoformat(),
            "EndTime": (today + timedelta(days=60)).isoformat(),
            "DailyStock": stock,
            "MarketPrice": "120.00",
            "Price": UNIT_PRICE,
            "SalePrice": "99.00",
            "BookingDay": booking_day,
        }
    ]


@dataclass
class Stack:
    sandbox: Any
    runtime: Runtime
    today: date
    _used: set[int]

    @property
    def book(self) -> Any:
        return self.sandbox.state.orders

    def product(
        self, *, sessions: bool = False, stock: int = 100, booking_day: int = 0, **changes: Any
    ) -> int:
        """An authorized product shaped by ``changes``, synced with its prices into our catalog."""
        from worker.sync.prices import refresh_prices
        from worker.sync.products import sync_one_product

        catalog = self.sandbox.state.catalog
        product_id = next(
            pid
            for pid in catalog.authorized_ids()
            if pid not in self._used and catalog.has_seats(pid) == sessions
        )
        self._used.add(product_id)
        catalog.bump_version(product_id, {**PLAIN, **changes})
        catalog.reprice(product_id, rules=rules(self.today, stock=stock, booking_day=booking_day))
        sync_one_product(self.runtime.sessions, self.runtime.supplier, product_id)
        refresh_prices(self.runtime.sessions, self.runtime.supplier, product_id)
        return product_id

    def supplier_orders(self, origin_order_id: str) -> list[dict[str, Any]]:
        return [o for o in self.book.orders() if o["origin_order_id"] == origin_order_id]

    def requests(self, path: str) -> int:
        return int(self.sandbox.state.traffic.stats()["by_path"].get(path, 0))


@pytest.fixture
def http_timeout_s() -> float:
    """The supplier timeout of the stack; a test may parametrize it."""
    return 2.0


@pytest.fixture
def stack(
    sandbox: Any,
    sqlite_url: str,
    redis_url: str,
    start_celery: Callable[..., Any],
    http_timeout_s: float,
) -> Iterator[Stack]:
    """The sandbox sending signed notices to our receiver, applied by a real Celery worker."""
    settings = make_settings(
        sandbox.url, sqlite_url, redis_url=redis_url, http_timeout_s=http_timeout_s
    )
    celery = start_celery(settings)
    runtime = get_runtime()
    app = create_app(settings, send=sender_for(celery))
    with serving(app) as url:
        sandbox.state.update_settings({"callback_url": url + PATH})
        yield Stack(sandbox, runtime, sandbox.state.today, set())
