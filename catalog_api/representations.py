"""Rows to JSON-ready dicts: snake_case keys, money as decimal strings, ISO 8601 dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from catalog_api.queries import PRODUCT_FIELDS, AnyRow, CalendarDay
from models.catalog import Change
from worker.supplier.contract import ShelfStatus

__all__ = ["PRODUCT_FIELDS", "calendar_day", "change", "money", "product"]

CENT = Decimal("0.01")


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(Decimal(value).quantize(CENT))


def timestamp(value: datetime | None) -> str | None:
    """UTC with a ``Z``, to the microsecond as stored."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day(value: date) -> str:
    return value.isoformat()


def product(row: AnyRow) -> dict[str, Any]:
    """A product row as selected by ``queries.PRODUCT_COLUMNS``."""
    body = {name: getattr(row, name) for name in PRODUCT_FIELDS}
    # One convention for stock everywhere: null is unlimited (the supplier's TotoalStock 0).
    body["total_stock"] = row.total_stock or None
    body.update(
        status="on_shelf" if row.product_status == ShelfStatus.ON_SHELF else "off_shelf",
        authorized=row.is_authorized,
        updated_at=timestamp(row.updated_at),
        prices_refreshed_at=timestamp(row.prices_refreshed_at),
        deauthorized_at=timestamp(row.deauthorized_at),
    )
    return body


def calendar_day(entry: CalendarDay, bookable_until: datetime | None = None) -> dict[str, Any]:
    """A calendar day; ``bookable_until`` in Asia/Shanghai with its offset, null when never."""
    price = entry.price
    return {
        "date": day(price.day),
        "price": money(price.price),
        "sale_price": money(price.sale_price),
        "market_price": money(price.market_price),
        "stock": price.stock,
        "booking_days": price.booking_days,
        "bookable_until": bookable_until.isoformat() if bookable_until is not None else None,
        "sessions": [
            {
                "start_time": s.start_time,
                "end_time": s.end_time,
                "seats_code": s.seats_code,
                "seats_num": s.seats_num,
            }
            for s in entry.sessions
        ],
    }


def change(row: Change) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "product_id": row.product_id,
        "kind": row.kind,
        "version": row.version,
        "created_at": timestamp(row.created_at),
        "detail": row.detail,
    }
