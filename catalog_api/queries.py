"""Plain read queries over the local catalog. Each takes a session and returns rows or values;
none writes, commits or knows about HTTP.

The change feed (``changes_after``) is the one subtle part: on PostgreSQL a ``seq`` is drawn
from a sequence when a row is inserted, but transactions commit in any order, so ``seq`` 11 can
be visible while ``seq`` 10 is still uncommitted. A consumer that read 11 and moved its cursor
past 10 would never see 10. ``changes_after`` documents how that is prevented.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import stats
from models.catalog import Change, DailyPrice, Product, SyncRun, TimedSession

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
# A selected row of any columns.
AnyRow: TypeAlias = "sa.Row[*tuple[Any, ...]]"

# What the API shows of a product: every contract field and the local bookkeeping consumers need.
PRODUCT_COLUMNS = (
    *(getattr(Product, name) for name in PRODUCT_FIELDS),
    Product.is_authorized,
    Product.updated_at,
    Product.prices_refreshed_at,
    Product.deauthorized_at,
)
_DAY_COLUMNS = (
    DailyPrice.day,
    DailyPrice.price,
    DailyPrice.sale_price,
    DailyPrice.market_price,
    DailyPrice.stock,
    DailyPrice.booking_days,
)
_SESSION_COLUMNS = (
    TimedSession.day,
    TimedSession.start_time,
    TimedSession.end_time,
    TimedSession.seats_code,
    TimedSession.seats_num,
)


@dataclass(frozen=True)
class ProductFilter:
    """What a consumer may filter the product list on; ``None`` means "any"."""

    product_status: int | None = None
    scenic_id: int | None = None
    is_authorized: bool | None = True
    updated_since: datetime | None = None


@dataclass(frozen=True)
class CalendarDay:
    """One resolved day of a product's calendar with that day's timed sessions."""

    price: AnyRow
    sessions: Sequence[AnyRow]


def list_products(
    session: Session, where: ProductFilter, after_product_id: int | None, limit: int
) -> list[AnyRow]:
    """Up to ``limit`` products matching ``where`` with ``product_id`` above the key, in key order.

    The key is the immutable primary key, so rows inserted or updated between two pages never
    shift a page boundary: nothing already listed comes back and nothing not yet listed is passed.
    """
    stmt = sa.select(*PRODUCT_COLUMNS).order_by(Product.product_id).limit(limit)
    if after_product_id is not None:
        stmt = stmt.where(Product.product_id > after_product_id)
    if where.product_status is not None:
        stmt = stmt.where(Product.product_status == where.product_status)
    if where.scenic_id is not None:
        stmt = stmt.where(Product.scenic_id == where.scenic_id)
    if where.is_authorized is not None:
        stmt = stmt.where(Product.is_authorized == where.is_authorized)
    if where.updated_since is not None:
        stmt = stmt.where(Product.updated_at >= where.updated_since)
    return list(session.execute(stmt))


def get_product(session: Session, product_id: int) -> AnyRow | None:
    """The product with this id, authorized or not, or ``None``."""
    stmt = sa.select(*PRODUCT_COLUMNS).where(Product.product_id == product_id)
    return session.execute(stmt).first()


def product_exists(session: Session, product_id: int) -> bool:
    stmt = sa.select(Product.product_id).where(Product.product_id == product_id)
    return session.scalar(stmt) is not None


def lowest_sale_price(session: Session, product_id: int, first: date, last: date) -> Decimal | None:
    """The lowest resolved sale price between ``first`` and ``last`` inclusive, or ``None``."""
    stmt = sa.select(sa.func.min(DailyPrice.sale_price)).where(
        DailyPrice.product_id == product_id, DailyPrice.day >= first, DailyPrice.day <= last
    )
    value = session.scalar(stmt)
    return None if value is None else Decimal(value)


def booking_terms(session: Session, product_id: int) -> tuple[str | None, bool]:
    """The product's BookingTime and whether it sells by session (any session stored)."""
    booking_time = session.scalar(
        sa.select(Product.booking_time).where(Product.product_id == product_id)
    )
    has_sessions = session.scalar(
        sa.select(TimedSession.id).where(TimedSession.product_id == product_id).limit(1)
    )
    return booking_time, has_sessions is not None


def calendar(session: Session, product_id: int, first: date, last: date) -> list[CalendarDay]:
    """The priced days between ``first`` and ``last`` inclusive, in date order, with sessions."""
    prices = session.execute(
        sa.select(*_DAY_COLUMNS)
        .where(DailyPrice.product_id == product_id, DailyPrice.day >= first, DailyPrice.day <= last)
        .order_by(DailyPrice.day)
    ).all()
    if not prices:
        return []
    sessions: dict[date, list[AnyRow]] = {}
    for timed in session.execute(
        sa.select(*_SESSION_COLUMNS)
        .where(
            TimedSession.product_id == product_id,
            TimedSession.day >= first,
            TimedSession.day <= last,
        )
        .order_by(TimedSession.day, TimedSession.start_time, TimedSession.seats_code)
    ):
        sessions.setdefault(timed.day, []).append(timed)
    return [CalendarDay(price, sessions.get(price.day, [])) for price in prices]


class GapClock:
    """When this process first saw each gap in the feed; thread-safe, bounded."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._first_seen: dict[int, datetime] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def age(self, seq: int, now: datetime) -> timedelta:
        """How long the gap starting at ``seq`` has been seen (zero the first time)."""
        with self._lock:
            first = self._first_seen.setdefault(seq, now)
            if len(self._first_seen) > self._max_entries:
                for stale in sorted(self._first_seen)[: len(self._first_seen) // 2]:
                    del self._first_seen[stale]
            return now - first


def changes_after(
    session: Session,
    after: int,
    limit: int,
    *,
    now: datetime,
    settle: timedelta,
    gaps: GapClock,
) -> list[Change]:
    """Up to ``limit`` changes with ``seq > after``, in order, never passing a seq that a
    transaction still in flight may yet commit.

    SQLite serializes writers (a seq is assigned under the database write lock, and nothing else
    commits until that transaction ends), so every visible row is safe there.

    On PostgreSQL the rows are served as a run of consecutive seqs from the cursor: a run with
    no hole is safe whatever is in flight. A hole (seq missing between visible rows) is either a
    rollback, which stays a hole forever, or a transaction still in flight. It is passed when:

    * no other transaction holds a write lock on ``changes`` (checked in ``pg_locks`` after
      reading the sequence's last value, and the rows are read again afterwards). An INSERT
      takes that lock before it draws its seq and keeps it until it ends, so every seq drawn
      by then has committed or rolled back, and the fresh read sees the commits; or
    * this process first saw the hole at least ``settle`` ago. That is the fallback for a feed
      where some writer is always in flight, and it assumes no transaction keeps a change row
      uncommitted for ``settle`` after a later one committed (the sync writes its change rows
      in short per-batch or per-product transactions).

    The first hole that cannot be passed ends the page, so the cursor never moves past it.
    """
    rows = _changes_after(session, after, limit)
    if session.get_bind().dialect.name != "postgresql" or _is_run(after, rows):
        return rows
    high_water = _quiet_high_water(session)
    rows = _changes_after(session, after, limit)  # a snapshot taken after the check
    served: list[Change] = []
    expected = after + 1
    for row in rows:
        if row.seq != expected:
            settled = high_water is not None and row.seq - 1 <= high_water
            if not settled and gaps.age(expected, now) < settle:
                break
        served.append(row)
        expected = row.seq + 1
    return served


def _changes_after(session: Session, after: int, limit: int) -> list[Change]:
    stmt = sa.select(Change).where(Change.seq > after).order_by(Change.seq).limit(limit)
    return list(session.scalars(stmt))


def _is_run(after: int, rows: Sequence[Change]) -> bool:
    """Whether the rows are exactly ``after + 1, after + 2, ...`` with no hole."""
    return not rows or rows[-1].seq - after == len(rows)


def _quiet_high_water(session: Session) -> int | None:
    """The last seq drawn, if no other transaction is writing ``changes`` just after reading it."""
    last_value = session.scalar(
        sa.text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:table, 'seq')::regclass)"),
        {"table": Change.__tablename__},
    )
    writers = session.scalar(
        sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'relation'"
            " AND relation = CAST(:table AS regclass) AND mode = 'RowExclusiveLock'"
            " AND pid IS DISTINCT FROM pg_backend_pid()"
        ),
        {"table": Change.__tablename__},
    )
    if writers:
        return None
    return 0 if last_value is None else int(last_value)


# --- figures for the metrics endpoint --------------------------------------------------------


@dataclass(frozen=True)
class ProductCount:
    product_status: int
    is_authorized: bool
    count: int


@dataclass(frozen=True)
class LastRun:
    kind: str
    outcome: str
    started_at: datetime
    finished_at: datetime | None


def product_counts(session: Session) -> list[ProductCount]:
    stmt = sa.select(Product.product_status, Product.is_authorized, sa.func.count()).group_by(
        Product.product_status, Product.is_authorized
    )
    return [ProductCount(int(s), bool(a), int(n)) for s, a, n in session.execute(stmt)]


def last_runs(session: Session) -> list[LastRun]:
    """The latest finished run of each kind."""
    latest = (
        sa.select(SyncRun.kind, sa.func.max(SyncRun.id).label("id"))
        .where(SyncRun.finished_at.is_not(None))
        .group_by(SyncRun.kind)
        .subquery()
    )
    stmt = sa.select(SyncRun).join(latest, SyncRun.id == latest.c.id).order_by(SyncRun.kind)
    return [LastRun(r.kind, r.outcome, r.started_at, r.finished_at) for r in session.scalars(stmt)]


def last_successful_finish(session: Session) -> dict[str, datetime]:
    """When the latest run of each kind that ended ``ok`` finished."""
    stmt = (
        sa.select(SyncRun.kind, sa.func.max(SyncRun.id))
        .where(SyncRun.outcome == "ok", SyncRun.finished_at.is_not(None))
        .group_by(SyncRun.kind)
    )
    ids = [run_id for _, run_id in session.execute(stmt)]
    if not ids:
        return {}
    runs = session.scalars(sa.select(SyncRun).where(SyncRun.id.in_(ids)))
    return {r.kind: r.finished_at for r in runs if r.finished_at is not None}


def inbox_backlog(session: Session) -> int | None:
    """Inbox rows waiting or to retry; ``None`` before the inbox exists."""
    return stats.inbox_backlog(session) if stats.has_inbox(session) else None


def inbox_by_status(session: Session) -> dict[str, int] | None:
    """Inbox rows per status (``invalid`` and ``held`` wait for an operator); ``None`` before
    the inbox exists."""
    return stats.inbox_counts(session) if stats.has_inbox(session) else None
