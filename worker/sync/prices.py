"""Price refreshes: one product's window of rules, resolved days and sessions, kept current.

The window is ``window_days`` supplier dates (Asia/Shanghai) starting today. Each refresh
stores what it fetched under the product's row lock, in one of four ways:

- the stored calendar was fetched by a refresh that started later: nothing is stored (an
  older fetch never overwrites a newer one; ``prices_fetched_at`` is the start of the fetch
  whose calendar is stored);
- same window and same content hash: no rule, day, session or change row is written;
- the window moved (a new supplier day) and the days, sessions and rules both windows share
  are unchanged: days and sessions that left the window are deleted, those entering it are
  inserted, rules are replaced only if the set the supplier returns moved; no change row;
- anything else: rules, days and sessions are replaced, with one ``prices`` change row.

Every attempt, failed ones included, stamps ``prices_attempted_at``: the rolling refresh
takes the least recently attempted first, so products that always fail cannot hold the head
of the line. A refresh still failing after the client's retries records why in
``prices_error`` (cleared by the next success); ``sync`` reports such products as partial.

Fetch start times come from one clock for every worker, the database's (``worker.clock``),
never a worker's wall clock, so the older-fetch guard holds across hosts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import Change, ChangeKind, DailyPrice, Product
from models.catalog import PriceRule as PriceRuleRow
from models.catalog import Session as SessionRow
from worker.clock import clock_for
from worker.supplier.client import SupplierClient
from worker.supplier.errors import SupplierError
from worker.supplier.payloads import PriceCalendar, PriceRule, Seat
from worker.sync.calendar import ResolvedDay, last_covered_day, resolve_calendar

log = logging.getLogger(__name__)

# China keeps no daylight saving time, so a fixed offset is exact and needs no tz database.
SUPPLIER_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

# Comparable forms of a stored or fetched rule, day and session.
RuleKey = tuple[int, date, date | None, int, Decimal, Decimal, Decimal, int]
DayKey = tuple[date, Decimal, Decimal, Decimal, int | None, int]
SeatKey = tuple[date, str, str, str, int]


def supplier_today(now: datetime | None = None) -> date:
    """Today's date where the supplier is."""
    return (now or utcnow()).astimezone(SUPPLIER_TZ).date()


def price_window(today: date, window_days: int) -> tuple[date, date]:
    """The first and last day of the window (``window_days`` days from today)."""
    return today, today + timedelta(days=window_days - 1)


@dataclass(frozen=True)
class PriceContent:
    """What one fetch would store over its window, its hash, and when the fetch started."""

    calendar: PriceCalendar
    start: date
    end: date
    days: list[ResolvedDay]
    seats: list[Seat]
    content_hash: str
    fetched_at: datetime


@dataclass(frozen=True)
class PriceKeys:
    """A calendar as comparable keys: rules in response order, days by date, sessions sorted."""

    rules: list[RuleKey]
    days: list[DayKey]
    seats: list[SeatKey]


def price_content(
    calendar: PriceCalendar, start: date, end: date, fetched_at: datetime
) -> PriceContent:
    """Resolve a calendar fetched at ``fetched_at`` over the window and hash what it would store."""
    days = resolve_calendar(calendar.daily_price_stock, start, end)
    seats = [seat for seat in calendar.product_seats if start <= seat.time <= end]
    body = {
        "rules": [rule.model_dump(mode="json") for rule in calendar.daily_price_stock],
        "days": [[str(part) for part in _day_key(d)] for d in days],
        "seats": [seat.model_dump(mode="json") for seat in seats],
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return PriceContent(calendar, start, end, days, seats, digest, fetched_at)


def _rule_key(rule: PriceRule) -> RuleKey:
    return (
        rule.price_type,
        rule.begin_time,
        rule.end_time,
        rule.daily_stock,
        rule.market_price,
        rule.price,
        rule.sale_price,
        rule.booking_day,
    )


def _day_key(day: ResolvedDay) -> DayKey:
    return (
        day.day,
        day.price,
        day.sale_price,
        day.market_price,
        day.stock,
        day.booking_days,
    )


def _seat_key(seat: Seat) -> SeatKey:
    return (
        seat.time,
        seat.seats_start_time,
        seat.seats_end_time,
        seat.seats_code,
        seat.seats_num,
    )


def content_keys(content: PriceContent) -> PriceKeys:
    """The comparable form of what a fetch would store."""
    return PriceKeys(
        rules=[_rule_key(rule) for rule in content.calendar.daily_price_stock],
        days=[_day_key(day) for day in content.days],
        seats=sorted(_seat_key(seat) for seat in content.seats),
    )


def _rule_touches(rule: RuleKey, first: date, last: date) -> bool:
    """Whether a rule covers any day of ``[first, last]``."""
    price_type, begin, end = rule[0], rule[1], rule[2]
    covered_until = last_covered_day(price_type, begin, end)
    return begin <= last and (covered_until is None or covered_until >= first)


def keys_within(keys: PriceKeys, first: date, last: date) -> PriceKeys:
    """The part of a calendar that bears on the days ``[first, last]``."""
    return PriceKeys(
        rules=[rule for rule in keys.rules if _rule_touches(rule, first, last)],
        days=[day for day in keys.days if first <= day[0] <= last],
        seats=[seat for seat in keys.seats if first <= seat[0] <= last],
    )


def only_window_moved(
    held: PriceKeys,
    held_window: tuple[date, date],
    fetched: PriceKeys,
    window: tuple[date, date],
) -> bool:
    """True when two calendars over different windows agree on every day both windows share.

    Windows that share no day prove nothing, so they count as a change.
    """
    first, last = max(held_window[0], window[0]), min(held_window[1], window[1])
    if first > last:
        return False
    return keys_within(held, first, last) == keys_within(fetched, first, last)


def store_prices(
    sessions: sessionmaker[Session],
    product_id: int,
    content: PriceContent,
    *,
    now: datetime | None = None,
) -> bool:
    """Store one product's fetched calendar in one transaction; True when it changed.

    See the module docstring for the four outcomes; only a change writes a change row.
    """
    with sessions.begin() as session:
        return _store(session, product_id, content, now or utcnow())


def _store(session: Session, product_id: int, content: PriceContent, now: datetime) -> bool:
    """Within the caller's transaction, under the product's row lock."""
    row = session.execute(
        select(
            Product.version,
            Product.prices_hash,
            Product.prices_fetched_at,
            Product.prices_attempted_at,
            Product.prices_window_start,
            Product.prices_window_end,
        )
        .where(Product.product_id == product_id)
        .with_for_update()
    ).first()
    if row is None:
        return False
    # A later window (a batch that crossed the supplier's midnight) or, for the same window, a
    # later fetch is already stored: this one is older news.
    held = (row.prices_window_start, row.prices_fetched_at)
    if held[0] is not None and held[1] is not None and held > (content.start, content.fetched_at):
        log.info("prices of product %s: a later fetch is already stored", product_id)
        return False
    changed = _write_calendar(
        session,
        product_id,
        content,
        row.prices_hash,
        (row.prices_window_start, row.prices_window_end),
    )
    attempted = max(row.prices_attempted_at or content.fetched_at, content.fetched_at)
    session.execute(
        update(Product)
        .where(Product.product_id == product_id)
        .values(
            prices_refreshed_at=now,
            prices_error=None,
            prices_fetched_at=content.fetched_at,
            prices_attempted_at=attempted,
            prices_hash=content.content_hash,
            prices_window_start=content.start,
            prices_window_end=content.end,
        )
    )
    if changed:
        session.add(
            Change(
                product_id=product_id, kind=ChangeKind.PRICES, version=row.version, created_at=now
            )
        )
    return changed


def _write_calendar(
    session: Session,
    product_id: int,
    content: PriceContent,
    held_hash: str | None,
    held_window: tuple[date | None, date | None],
) -> bool:
    """Write what moved; True when the calendar changed, False when nothing or only the window did."""
    window = (content.start, content.end)
    if held_hash == content.content_hash and held_window == window:
        return False
    first, last = held_window
    if first is not None and last is not None:
        held = _held_keys(session, product_id)
        fetched = content_keys(content)
        if only_window_moved(held, (first, last), fetched, window):
            _move_window(session, product_id, content, (first, last))
            if held.rules != fetched.rules:
                _replace_rules(session, product_id, content)
            return False
    for table in (PriceRuleRow, DailyPrice, SessionRow):
        session.execute(delete(table).where(table.product_id == product_id))
    _insert_rules(session, product_id, content)
    _insert_days(session, product_id, content.days, content.seats)
    return True


def _held_keys(session: Session, product_id: int) -> PriceKeys:
    """What is stored for one product, in the form ``content_keys`` gives a fetch."""
    rules = session.execute(
        select(
            PriceRuleRow.price_type,
            PriceRuleRow.begin_date,
            PriceRuleRow.end_date,
            PriceRuleRow.daily_stock,
            PriceRuleRow.market_price,
            PriceRuleRow.price,
            PriceRuleRow.sale_price,
            PriceRuleRow.booking_day,
        )
        .where(PriceRuleRow.product_id == product_id)
        .order_by(PriceRuleRow.position)
    )
    days = session.execute(
        select(
            DailyPrice.day,
            DailyPrice.price,
            DailyPrice.sale_price,
            DailyPrice.market_price,
            DailyPrice.stock,
            DailyPrice.booking_days,
        )
        .where(DailyPrice.product_id == product_id)
        .order_by(DailyPrice.day)
    )
    seats = session.execute(
        select(
            SessionRow.day,
            SessionRow.start_time,
            SessionRow.end_time,
            SessionRow.seats_code,
            SessionRow.seats_num,
        ).where(SessionRow.product_id == product_id)
    )
    return PriceKeys(
        rules=[tuple(r) for r in rules],  # type: ignore[misc]
        days=[tuple(d) for d in days],  # type: ignore[misc]
        seats=sorted(tuple(s) for s in seats),  # type: ignore[misc]
    )


def _move_window(
    session: Session, product_id: int, content: PriceContent, held_window: tuple[date, date]
) -> None:
    """Delete days and sessions that left the window, insert those that entered it."""
    for table in (DailyPrice, SessionRow):
        session.execute(
            delete(table).where(
                table.product_id == product_id,
                or_(table.day < content.start, table.day > content.end),
            )
        )
    first, last = held_window
    _insert_days(
        session,
        product_id,
        [d for d in content.days if not first <= d.day <= last],
        [s for s in content.seats if not first <= s.time <= last],
    )


def _replace_rules(session: Session, product_id: int, content: PriceContent) -> None:
    session.execute(delete(PriceRuleRow).where(PriceRuleRow.product_id == product_id))
    _insert_rules(session, product_id, content)


def _insert_rules(session: Session, product_id: int, content: PriceContent) -> None:
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
    if rules:
        session.execute(insert(PriceRuleRow), rules)


def _insert_days(
    session: Session, product_id: int, days: Sequence[ResolvedDay], seats: Sequence[Seat]
) -> None:
    day_rows = [
        {
            "product_id": product_id,
            "day": d.day,
            "price": d.price,
            "sale_price": d.sale_price,
            "market_price": d.market_price,
            "stock": d.stock,
            "booking_days": d.booking_days,
        }
        for d in days
    ]
    seat_rows = [
        {
            "product_id": product_id,
            "day": s.time,
            "start_time": s.seats_start_time,
            "end_time": s.seats_end_time,
            "seats_code": s.seats_code,
            "seats_num": s.seats_num,
        }
        for s in seats
    ]
    if day_rows:
        session.execute(insert(DailyPrice), day_rows)
    if seat_rows:
        session.execute(insert(SessionRow), seat_rows)


def record_attempts(
    session: Session, product_ids: Sequence[int], started_at: datetime, error: str | None = None
) -> None:
    """Stamp failed refreshes as attempted (and why they failed), so the rolling refresh moves
    on to other products and ``status`` can show what is still failing."""
    if not product_ids:
        return
    attempted = Product.prices_attempted_at
    values: dict[str, Any] = {"prices_attempted_at": started_at}
    if error is not None:
        values["prices_error"] = error[:1000]
    session.execute(
        update(Product)
        .where(
            Product.product_id.in_(list(product_ids)),
            or_(attempted.is_(None), attempted < started_at),
        )
        .values(**values)
    )


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
    """Fetch one product's window (1.1.2) and store it; True when the calendar changed.

    Idempotent. Unknown and deauthorized products are skipped without a request. A failed
    fetch is still recorded as an attempt. Raises ``SupplierError`` (``SupplierUnavailable``
    is worth retrying; ``SupplierBadPayload`` means a calendar that cannot be stored).
    """
    if not _is_authorized(sessions, product_id):
        return False
    start, end = price_window(today or supplier_today(), window_days)
    started = clock_for(sessions).now()
    try:
        calendar = supplier.get_price_calendar(product_id, start, end)
    except SupplierError as exc:
        with sessions.begin() as session:
            record_attempts(session, [product_id], started, str(exc))
        raise
    return store_prices(sessions, product_id, price_content(calendar, start, end, started))


@dataclass
class PriceBatch:
    """What a batch of refreshes did."""

    refreshed: int = 0
    changed: int = 0
    errors: int = 0
    failed: list[int] = field(default_factory=list)  # still failing after the retries
    retries: int = 0


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
    which spares the embedded SQLite a connection and commit per product. A product whose
    fetch fails (unreachable, rejected, or a calendar that does not validate) is counted in
    ``errors`` and recorded as attempted; the others are stored all the same.
    """
    start, end = price_window(today or supplier_today(), window_days)
    batch = PriceBatch()
    retries_before = supplier.retries_sent
    pending: list[tuple[int, PriceContent]] = []
    failed: list[tuple[int, datetime, str]] = []

    def flush() -> None:
        with sessions.begin() as session:
            now = utcnow()
            for product_id, content in pending:
                batch.changed += _store(session, product_id, content, now)
            for product_id, started, error in failed:
                record_attempts(session, [product_id], started, error)
        if on_done is not None:
            for product_id in [pid for pid, _ in pending] + [pid for pid, _, _ in failed]:
                on_done(product_id)
        pending.clear()
        failed.clear()

    stamp = clock_for(sessions).now
    for product_id, fetched, started in _fetch_bounded(supplier, product_ids, start, end, stamp):
        if isinstance(fetched, SupplierError):
            batch.errors += 1
            batch.failed.append(product_id)
            log.warning("prices of product %s not refreshed: %s", product_id, fetched)
            failed.append((product_id, started, str(fetched)))
        else:
            batch.refreshed += 1
            pending.append((product_id, price_content(fetched, start, end, started)))
        if len(pending) + len(failed) >= chunk:
            flush()
    if pending or failed:
        flush()
    batch.retries = supplier.retries_sent - retries_before
    return batch


def _fetch_bounded(
    supplier: SupplierClient,
    product_ids: Iterable[int],
    start: date,
    end: date,
    stamp: Callable[[], datetime],
    size: int = 256,
) -> Iterator[tuple[int, PriceCalendar | SupplierError, datetime]]:
    """The client's pool submits everything it is given at once; feed it slices to bound memory.

    Each result carries the time its own request started, the key of the older-fetch guard.
    """
    ids = list(product_ids)
    for offset in range(0, len(ids), size):
        chunk = ids[offset : offset + size]
        for fetch in supplier.fetch_price_calendars(chunk, start, end, stamp=stamp):
            yield fetch.product_id, fetch.result, fetch.started_at


def rolling_batch_size(authorized: int, interval_s: float, max_age_s: float, cap: int) -> int:
    """How many to refresh per tick so each product is refreshed well within ``max_age_s``."""
    if authorized <= 0:
        return 0
    ticks = max(max_age_s / interval_s, 1.0)
    return max(1, min(cap, math.ceil(authorized * 1.25 / ticks)))


def _attempted_before(cutoff: datetime) -> ColumnElement[bool]:
    attempted = Product.prices_attempted_at
    return or_(attempted.is_(None), attempted < cutoff)


def oldest_prices(session: Session, limit: int) -> list[int]:
    """Authorized products least recently attempted (never attempted first).

    Ordered by the last attempt, not the last success: a product whose refresh keeps failing
    goes to the back of the line after each try instead of holding the front forever.
    """
    never_first = Product.prices_attempted_at.is_(None).desc()
    return list(
        session.scalars(
            select(Product.product_id)
            .where(Product.is_authorized.is_(True))
            .order_by(never_first, Product.prices_attempted_at, Product.product_id)
            .limit(limit)
        )
    )


def due_for_refresh(
    sessions: sessionmaker[Session], *, interval_s: float, max_age: timedelta, cap: int
) -> list[int]:
    """The next rolling batch: the least recently attempted, enough to spread the catalog over
    ``max_age`` and to catch up on overdue ones, never more than ``cap`` (no burst).

    Overdue means not attempted within ``max_age``: failing products are retried at the
    rolling pace, not every tick.
    """
    authorized = Product.is_authorized.is_(True)
    cutoff = utcnow() - max_age
    with sessions() as session:
        total = session.scalar(select(func.count()).where(authorized)) or 0
        overdue = (
            session.scalar(select(func.count()).where(authorized, _attempted_before(cutoff))) or 0
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
