"""Plain read queries over the local catalog. Each takes a session and returns rows or values;
none writes, commits or knows about HTTP.

The change feed's safe high-water mark (``changes_after``) is the one subtle part: on PostgreSQL
a ``seq`` is drawn from a sequence when a row is inserted, but transactions commit in any order,
so ``seq`` 11 can be visible while ``seq`` 10 is still uncommitted. A consumer that read 11 and
moved its cursor past 10 would never see 10. See ``changes_after`` for how that is prevented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer

from models.catalog import Change, DailyPrice, Product, SyncRun
from models.catalog import Session as TimedSession

ON_SHELF = 1
OFF_SHELF = 0


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

    price: DailyPrice
    sessions: Sequence[TimedSession]


def list_products(
    session: Session, where: ProductFilter, after_product_id: int | None, limit: int
) -> list[Product]:
    """Up to ``limit`` products matching ``where`` with ``product_id`` above the key, in key order.

    The key is the immutable primary key, so rows inserted or updated between two pages never
    shift a page boundary: nothing already listed comes back and nothing not yet listed is passed.
    """
    stmt = (
        sa.select(Product)
        .options(defer(Product.raw), defer(Product.content_hash), defer(Product.prices_hash))
        .order_by(Product.product_id)
        .limit(limit)
    )
    if after_product_id is not None:
        stmt = stmt.where(Product.product_id > after_product_id)
    if where.product_status is not None:
        stmt = stmt.where(Product.product_status == where.product_status)
    if where.scenic_id is not None:
        stmt = stmt.where(Product.scenic_id == where.scenic_id)
    if where.is_authorized is not None:
        stmt = stmt.where(Product.is_authorized.is_(where.is_authorized))
    if where.updated_since is not None:
        stmt = stmt.where(Product.updated_at >= where.updated_since)
    return list(session.scalars(stmt))


def get_product(session: Session, product_id: int) -> Product | None:
    """The product with this id, authorized or not, or ``None``."""
    return session.get(Product, product_id)


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


def calendar(session: Session, product_id: int, first: date, last: date) -> list[CalendarDay]:
    """The priced days between ``first`` and ``last`` inclusive, in date order, with sessions."""
    prices = session.scalars(
        sa.select(DailyPrice)
        .where(DailyPrice.product_id == product_id, DailyPrice.day >= first, DailyPrice.day <= last)
        .order_by(DailyPrice.day)
    ).all()
    sessions: dict[date, list[TimedSession]] = {}
    for timed in session.scalars(
        sa.select(TimedSession)
        .where(
            TimedSession.product_id == product_id,
            TimedSession.day >= first,
            TimedSession.day <= last,
        )
        .order_by(TimedSession.day, TimedSession.start_time, TimedSession.seats_code)
    ):
        sessions.setdefault(timed.day, []).append(timed)
    return [CalendarDay(price, sessions.get(price.day, [])) for price in prices]


def changes_after(
    session: Session, after: int, limit: int, *, now: datetime, settle: timedelta
) -> list[Change]:
    """Up to ``limit`` changes with ``seq > after``, in order, that can be served without a later
    commit ever filling a gap below them.

    SQLite serializes writers (a seq is assigned under the database write lock and nothing else
    can commit before it), so every visible row is safe there.

    On PostgreSQL a row is served when either:

    * its ``seq`` is at or below the *quiet high-water mark*: the sequence's last value read just
      before checking ``pg_locks`` and finding no other transaction holding a write lock on
      ``changes``. An INSERT takes that lock before it draws its ``seq`` and keeps it until it
      ends, so every seq at or below the mark has committed or rolled back by then; or
    * it was created more than ``settle`` ago, which covers a busy feed where some writer is
      always in flight. This relies on writers committing within ``settle`` of inserting their
      change row (the sync commits a product's change with the product, in short transactions).

    Rows are served as a prefix: the first row that is not yet safe stops the page, so a cursor
    never moves past an unsettled row.
    """
    rows = list(
        session.scalars(
            sa.select(Change).where(Change.seq > after).order_by(Change.seq).limit(limit)
        )
    )
    if session.get_bind().dialect.name != "postgresql" or not rows:
        return rows
    high_water = _quiet_high_water(session)
    cutoff = now - settle
    served: list[Change] = []
    for row in rows:
        if (high_water is not None and row.seq <= high_water) or row.created_at <= cutoff:
            served.append(row)
        else:
            break
    return served


def _quiet_high_water(session: Session) -> int | None:
    """The last seq drawn, if no other transaction is writing ``changes`` right after reading it.

    Each statement runs with its own snapshot (READ COMMITTED), so the rows read afterwards see
    every commit that happened before this check.
    """
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


def oldest_price_refresh(session: Session) -> tuple[datetime | None, int]:
    """The oldest ``prices_refreshed_at`` among authorized products, and how many were never
    refreshed."""
    authorized = Product.is_authorized.is_(True)
    oldest = session.scalar(sa.select(sa.func.min(Product.prices_refreshed_at)).where(authorized))
    never = session.scalar(
        sa.select(sa.func.count()).where(authorized, Product.prices_refreshed_at.is_(None))
    )
    return oldest, int(never or 0)


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


def last_change_seq(session: Session) -> int:
    return int(session.scalar(sa.select(sa.func.max(Change.seq))) or 0)


def inbox_backlog(session: Session) -> int | None:
    """Inbox rows waiting (``pending``) or to retry (``failed``); ``None`` before the inbox exists."""
    if not sa.inspect(session.connection()).has_table("inbox"):
        return None
    count = session.scalar(
        sa.text("SELECT count(*) FROM inbox WHERE status IN ('pending', 'failed')")
    )
    return int(count or 0)
