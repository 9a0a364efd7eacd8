"""What the supplier's contract fixes beyond the payload shapes: its time zone and "today", the
meaning of its status numbers, and keys that may come in any case.

Calendar dates in requests, answers and callbacks are days in Asia/Shanghai. China keeps no
daylight saving time, so a fixed offset is exact and needs no tz database.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

SUPPLIER_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


class ShelfStatus(IntEnum):
    """A product's ``ProductStatus`` (stored as is in ``products.product_status``)."""

    OFF_SHELF = 0
    ON_SHELF = 1


class NoticeStatus(IntEnum):
    """``order_product_notify``'s Status: what changed about a product."""

    OFF_SHELF = 0
    ON_SHELF = 1
    DETAILS = 2
    PRICES = 3

    @property
    def is_shelf_change(self) -> bool:
        return self in (NoticeStatus.OFF_SHELF, NoticeStatus.ON_SHELF)


def supplier_today(now: datetime | None = None) -> date:
    """Today's date where the supplier is."""
    return (now or datetime.now(UTC)).astimezone(SUPPLIER_TZ).date()


def casefold_key(mapping: Mapping[Any, Any], name: str) -> Any:
    """The key of ``mapping`` that matches ``name`` in any case (the exact one first); None if absent."""
    if name in mapping:
        return name
    lowered = name.lower()
    return next((key for key in mapping if str(key).lower() == lowered), None)


def casefold_get(mapping: Mapping[Any, Any], name: str) -> Any:
    """The value under ``name`` in any case (the contract lets keys come in any case); None if absent."""
    key = casefold_key(mapping, name)
    return None if key is None else mapping[key]
