"""The supplier as the sync and the callbacks see it: a Protocol that ``SupplierClient``
implements and that a fake in a test can implement too.

Counting requests and retries is the client's business; ``usage()`` is the observable it
offers (a snapshot), so a pass can report what it cost without reaching into the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple, Protocol

from worker.supplier.errors import SupplierError
from worker.supplier.payloads import PriceCalendar, Product, ProductPage

Stamp = Callable[[], datetime]


class PriceFetch(NamedTuple):
    """One product's calendar (or why not), and when its request started (the freshness key)."""

    product_id: int
    result: PriceCalendar | SupplierError
    started_at: datetime


@dataclass(frozen=True)
class Usage:
    """Requests sent and retries made so far; subtract two snapshots for what happened between."""

    requests: int = 0
    retries: int = 0

    def __sub__(self, earlier: Usage) -> Usage:
        return Usage(self.requests - earlier.requests, self.retries - earlier.retries)


class Supplier(Protocol):
    """The supplier's catalog reads (1.1.1, 1.1.2), typed; failures raise ``SupplierError``."""

    def iter_product_pages(
        self, page_size: int | None = None, *, stamp: Stamp = ...
    ) -> Iterator[ProductPage]:
        """Every authorized product, page by page, each page stamped before it was asked for."""
        ...

    def get_product(self, product_id: int) -> Product | None:
        """One product, or None when the supplier no longer returns it."""
        ...

    def get_price_calendar(self, product_id: int, start: date, end: date) -> PriceCalendar:
        """One product's price rules and sessions over ``[start, end]``."""
        ...

    def fetch_price_calendars(
        self, product_ids: Iterable[int], start: date, end: date, *, stamp: Stamp = ...
    ) -> Iterator[PriceFetch]:
        """Many calendars, in order, each with the time its request started."""
        ...

    def usage(self) -> Usage:
        """Requests and retries so far."""
        ...
