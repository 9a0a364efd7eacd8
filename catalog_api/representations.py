"""Rows to JSON-ready dicts: snake_case keys, money as decimal strings, ISO 8601 dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from catalog_api.queries import CalendarDay
from models.catalog import Change, Product

CENT = Decimal("0.01")

# Every contract field, under the model's snake_case names, in contract order.
PRODUCT_FIELDS: tuple[str, ...] = (
    "product_id",
    "version",
    "product_code",
    "is_ticket",
    "ticket_get_address",
    "product_name",
    "product_desc",
    "entrance_mode",
    "product_kind",
    "adult_number",
    "child_number",
    "max_number_by_order",
    "max_number_by_mobile",
    "limit_day_by_mobile",
    "max_number_by_card_id",
    "limit_day_by_card_id",
    "customer_set",
    "total_stock",
    "product_status",
    "refund_set",
    "scenic_spots",
    "scenic_id",
    "out_id",
    "min_age",
    "max_age",
    "effective_time_mode",
    "effective_time",
    "become_effective_time",
    "begin_effective_time",
    "end_effective_time",
    "booking_time",
)


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(Decimal(value).quantize(CENT))


def timestamp(value: datetime | None) -> str | None:
    """UTC with a ``Z``, to the microsecond as stored."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day(value: date) -> str:
    return value.isoformat()


def product(row: Product) -> dict[str, Any]:
    body = {name: getattr(row, name) for name in PRODUCT_FIELDS}
    body.update(
        status="on_shelf" if row.product_status == 1 else "off_shelf",
        authorized=row.is_authorized,
        updated_at=timestamp(row.updated_at),
        prices_refreshed_at=timestamp(row.prices_refreshed_at),
        deauthorized_at=timestamp(row.deauthorized_at),
    )
    return body


def calendar_day(entry: CalendarDay) -> dict[str, Any]:
    price = entry.price
    return {
        "date": day(price.day),
        "price": money(price.price),
        "sale_price": money(price.sale_price),
        "market_price": money(price.market_price),
        "stock": price.stock,
        "booking_days": price.booking_days,
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
