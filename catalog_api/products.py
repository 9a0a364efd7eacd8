"""Products: the list with filters and keyset pagination, one product, and its calendar."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, jsonify, request

from catalog_api import booking, queries, representations
from catalog_api.context import db, state
from catalog_api.params import (
    calendar_range,
    decode_cursor,
    encode_cursor,
    parse_authorized,
    parse_bookable,
    parse_date,
    parse_id,
    parse_limit,
    parse_status,
    parse_updated_since,
)
from worker.supplier.contract import SUPPLIER_TZ

bp = Blueprint("products", __name__, url_prefix="/catalog/products")


@bp.get("")
def list_products() -> Response:
    args = request.args
    limit = parse_limit(args.get("limit"))
    where = queries.ProductFilter(
        product_status=parse_status(args.get("status")),
        scenic_id=parse_id("scenic_id", args.get("scenic_id")),
        is_authorized=parse_authorized(args.get("authorized")),
        updated_since=parse_updated_since(args.get("updated_since")),
    )
    after = decode_cursor(args.get("cursor"))
    rows = queries.list_products(db(), where, after, limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].product_id) if len(rows) > limit else None
    return jsonify(
        {"products": [representations.product(r) for r in page], "next_cursor": next_cursor}
    )


@bp.get("/<product_id>")
def get_product(product_id: str) -> Response:
    key = _product_key(product_id)
    session = db()
    row = queries.get_product(session, key)
    if row is None:
        abort(404, f"no product {key}")
    _count_read(key)
    first = state().clock().astimezone(SUPPLIER_TZ).date()
    last = first + timedelta(days=state().settings.price_window_days)
    body = representations.product(row)
    body["lowest_sale_price"] = representations.money(
        queries.lowest_sale_price(session, key, first, last)
    )
    body["price_window"] = {"from": first.isoformat(), "to": last.isoformat()}
    return _conditional(jsonify(body))


@bp.get("/<product_id>/calendar")
def get_calendar(product_id: str) -> Response:
    key = _product_key(product_id)
    today = state().clock().astimezone(SUPPLIER_TZ).date()
    first, last = calendar_range(
        parse_date("from", request.args.get("from")),
        parse_date("to", request.args.get("to")),
        today,
        state().settings.price_window_days,
    )
    only_bookable = parse_bookable(request.args.get("bookable"))
    session = db()
    days = queries.calendar(session, key, first, last)
    if not days and not queries.product_exists(session, key):
        abort(404, f"no product {key}")
    _count_read(key)
    booking_time, sells_by_session = queries.booking_terms(session, key)
    cutoff = booking.parse_booking_time(booking_time)
    deadlines = [
        booking.bookable_until(
            d.price.day,
            d.price.booking_days,
            cutoff,
            sells_by_session=sells_by_session,
            has_session=bool(d.sessions),
        )
        for d in days
    ]
    if only_bookable is not None:
        now = state().clock()  # evaluated at request time
        pairs = [
            (d, until)
            for d, until in zip(days, deadlines, strict=True)
            if booking.is_bookable(until, now) is only_bookable
        ]
    else:
        pairs = list(zip(days, deadlines, strict=True))
    return _conditional(
        jsonify(
            {
                "product_id": key,
                "from": first.isoformat(),
                "to": last.isoformat(),
                "days": [representations.calendar_day(d, until) for d, until in pairs],
            }
        )
    )


def _count_read(product_id: int) -> None:
    """Count a read of one product (the price refresh weighs products by reads)."""
    reads = state().reads
    if reads is not None:
        reads.add(product_id)


def _product_key(raw: str) -> int:
    key = parse_id("product_id", raw)
    assert key is not None
    return key


def _conditional(response: Response) -> Response:
    """A strong ETag over the body; a matching If-None-Match gets 304 without it."""
    response.add_etag()
    response.headers["Cache-Control"] = "no-cache"
    response.make_conditional(request)
    return response
