"""Price refreshes: one product's window of rules, resolved days and sessions, replaced when it changed.

The window is ``window_days`` supplier dates (Asia/Shanghai) starting today. A refresh whose
content hash matches what is stored writes no rule, day, session or change row; it only
stamps ``prices_refreshed_at``, which is what lets the rolling refresh take the oldest first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import Change, ChangeKind, DailyPrice, Product
from models.catalog import PriceRule as PriceRuleRow
from models.catalog import Session as SessionRow
from worker.calendar import ResolvedDay, resolve_calendar
from worker.client import SupplierClient
from worker.errors import SupplierError
from worker.payloads import PriceCalendar, Seat

log = logging.getLogger(__name__)

# China keeps no daylight saving time, so a fixed offset is exact and needs no tz database.
SUPPLIER_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


def supplier_today(now: datetime | None = None) -> date:
    """Today's date where the supplier is."""
    return (now or utcnow()).astimezone(SUPPLIER_TZ).date()


def price_window(today: date, window_days: int) -> tuple[date, date]:
    """The first and last day of the window (``window_days`` days from today)."""
    return today, today + timedelta(days=window_days - 1)


@dataclass(frozen=True)
class PriceContent:
    """What one refresh would store, and its hash."""

    calendar: PriceCalendar
    days: list[ResolvedDay]
    seats: list[Seat]
    content_hash: str


def price_content(calendar: PriceCalendar, start: date, end: date) -> PriceContent:
    """Resolve a fetched calendar over the window and hash what consumers would see."""
    days = resolve_calendar(calendar.daily_price_stock, start, end)
    seats = [seat for seat in calendar.product_seats if start <= seat.time <= end]
    body = {
        "rules": [rule.model_dump(mode="json") for rule in calendar.daily_price_stock],
        "days": [
            [
                d.day.isoformat(),
                str(d.price),
                str(d.sale_price),
                str(d.market_price),
                d.stock,
                d.booking_days,
            ]
            for d in days
        ],
        "seats": [seat.model_dump(mode="json") for seat in seats],
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return PriceContent(calendar, days, seats, digest)


def store_prices(
    sessions: sessionmaker[Session],
    product_id: int,
    content: PriceContent,
    *,
    now: datetime | None = None,
) -> bool:
    """Replace one product's rules, days and sessions in one transaction if the hash moved."""
    with sessions.begin() as session:
        return _store(session, product_id, content, now or utcnow())


def _store(session: Session, product_id: int, content: PriceContent, now: datetime) -> bool:
    """Within the caller's transaction: replace when the hash moved, else only stamp freshness."""
    row = session.execute(
        select(Product.prices_hash, Product.version)
        .where(Product.product_id == product_id)
        .with_for_update()
    ).first()
    if row is None:
        return False
    stamp = update(Product).where(Product.product_id == product_id)
    if row.prices_hash == content.content_hash:
        session.execute(stamp.values(prices_refreshed_at=now))
        return False
    for table in (PriceRuleRow, DailyPrice, SessionRow):
        session.execute(delete(table).where(table.product_id == product_id))
    _insert_content(session, product_id, content)
    session.execute(stamp.values(prices_refreshed_at=now, prices_hash=content.content_hash))
    session.add(
        Change(product_id=product_id, kind=ChangeKind.PRICES, version=row.version, created_at=now)
    )
    return True


def _insert_content(session: Session, product_id: int, content: PriceContent) -> None:
    rules: list[dict[str, Any]] = [
        {
            "product_id": product_id,
            "position": position,
            "price_type": rule.price_type,
            "begin_date": rule.begin_time,
            "end_date": rule.end_time,
            "daily_stock": rule.daily_stock,
            "market_price": rule.market_price,
            "price": rule.price,
            "sale_price": rule.sale_price,
            "booking_day": rule.booking_day,
        }
        for position, rule in enumerate(content.calendar.daily_price_stock)
    ]
    days = [
        {
            "product_id": product_id,
            "day": d.day,
            "price": d.price,
            "sale_price": d.sale_price,
            "market_price": d.market_price,
            "stock": d.stock,
            "booking_days": d.booking_days,
        }
        for d in content.days
    ]
    seats = [
        {
            "product_id": product_id,
            "day": s.time,
            "start_time": s.seats_start_time,
            "end_time": s.seats_end_time,
            "seats_code": s.seats_code,
            "seats_num": s.seats_num,
        }
        for s in content.seats
    ]
    for table, values in ((PriceRuleRow, rules), (DailyPrice, days), (SessionRow, seats)):
        if values:
            session.execute(insert(table), values)


def _is_authorized(sessions: sessionmaker[Session], product_id: int) -> bool:
    with sessions() as session:
        return bool(
            session.scalar(select(Product.is_authorized).where(Product.product_id == product_id))
        )


def refresh_prices(
    sessions: sessionmaker[Session],
    supplier: SupplierClient,
    product_id: int,
    *,
    today: date | None = None,
    window_days: int = 60,
) -> bool:
    """Fetch one product's window (1.1.2) and store it if it changed; True when it was written.

    Idempotent. Unknown and deauthorized products are skipped without a request.
    Raises ``SupplierError`` (``SupplierUnavailable`` is worth retrying).
    """
    if not _is_authorized(sessions, product_id):
        return False
    start, end = price_window(today or supplier_today(), window_days)
    calendar = supplier.get_price_calendar(product_id, start, end)
    return store_prices(sessions, product_id, price_content(calendar, start, end))


@dataclass
class PriceBatch:
    """What a batch of refreshes did."""

    refreshed: int = 0
    changed: int = 0
    errors: int = 0


def refresh_many(
    sessions: sessionmaker[Session],
    supplier: SupplierClient,
    product_ids: Iterable[int],
    *,
    today: date | None = None,
    window_days: int = 60,
    on_done: Callable[[int], None] | None = None,
    chunk: int = 50,
) -> PriceBatch:
    """Refresh many products in-process, fetching with the client's bounded concurrency.

    Stores ``chunk`` products per transaction (each product's replacement is still atomic),
    which spares the embedded SQLite a connection and commit per product.
    """
    start, end = price_window(today or supplier_today(), window_days)
    batch = PriceBatch()
    pending: list[tuple[int, PriceContent]] = []

    def flush() -> None:
        with sessions.begin() as session:
            now = utcnow()
            for product_id, content in pending:
                batch.changed += _store(session, product_id, content, now)
        if on_done is not None:
            for product_id, _ in pending:
                on_done(product_id)
        pending.clear()

    for product_id, fetched in _fetch_bounded(supplier, product_ids, start, end):
        if isinstance(fetched, SupplierError):
            batch.errors += 1
            log.warning("prices of product %s not refreshed: %s", product_id, fetched)
            if on_done is not None:
                on_done(product_id)
            continue
        batch.refreshed += 1
        pending.append((product_id, price_content(fetched, start, end)))
        if len(pending) >= chunk:
            flush()
    if pending:
        flush()
    return batch


def _fetch_bounded(
    supplier: SupplierClient, product_ids: Iterable[int], start: date, end: date, size: int = 256
) -> Iterator[tuple[int, PriceCalendar | SupplierError]]:
    """The client's pool submits everything it is given at once; feed it slices to bound memory."""
    ids = list(product_ids)
    for offset in range(0, len(ids), size):
        yield from supplier.fetch_price_calendars(ids[offset : offset + size], start, end)


def rolling_batch_size(authorized: int, interval_s: float, max_age_s: float, cap: int) -> int:
    """How many to refresh per tick so each product is refreshed well within ``max_age_s``."""
    if authorized <= 0:
        return 0
    ticks = max(max_age_s / interval_s, 1.0)
    return max(1, min(cap, math.ceil(authorized * 1.25 / ticks)))


def oldest_prices(session: Session, limit: int) -> list[int]:
    """Authorized products whose prices are oldest (never refreshed first)."""
    never_first = Product.prices_refreshed_at.is_(None).desc()
    return list(
        session.scalars(
            select(Product.product_id)
            .where(Product.is_authorized.is_(True))
            .order_by(never_first, Product.prices_refreshed_at, Product.product_id)
            .limit(limit)
        )
    )


def due_for_refresh(
    sessions: sessionmaker[Session], *, interval_s: float, max_age: timedelta, cap: int
) -> list[int]:
    """The next rolling batch: the oldest prices, enough to spread the catalog over ``max_age``
    and to catch up on overdue ones, never more than ``cap`` (no burst)."""
    authorized = Product.is_authorized.is_(True)
    cutoff = utcnow() - max_age
    with sessions() as session:
        total = session.scalar(select(func.count()).where(authorized)) or 0
        overdue = (
            session.scalar(
                select(func.count()).where(
                    authorized,
                    or_(
                        Product.prices_refreshed_at.is_(None), Product.prices_refreshed_at < cutoff
                    ),
                )
            )
            or 0
        )
        spread = rolling_batch_size(total, interval_s, max_age.total_seconds(), cap)
        size = min(cap, max(spread, overdue))
        return oldest_prices(session, size) if size else []


def drop_expired_days(sessions: sessionmaker[Session], today: date | None = None) -> int:
    """Delete calendar days and sessions that fell out of the window; returns rows deleted."""
    today = today or supplier_today()
    with sessions.begin() as session:
        deleted = 0
        for table in (DailyPrice, SessionRow):
            result = session.execute(delete(table).where(table.day < today))
            deleted += getattr(result, "rowcount", 0) or 0
        return deleted


def refresh_batch(
    sessions: sessionmaker[Session],
    supplier: SupplierClient,
    product_ids: Sequence[int],
    *,
    window_days: int,
) -> PriceBatch:
    """One rolling tick done in-process (the CLI and embedded use); tasks fan out instead."""
    drop_expired_days(sessions)
    return refresh_many(sessions, supplier, product_ids, window_days=window_days)
