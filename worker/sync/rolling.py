"""The rolling price refresh's pacing and the calendar's expiry.

Each tick refreshes the least recently attempted authorized products, enough to spread the
catalog over the maximum age and to catch up on overdue ones; days that fell out of the window
are deleted.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.catalog import DailyPrice, Product, TimedSession
from worker.supplier.contract import supplier_today


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
        for table in (DailyPrice, TimedSession):
            result = session.execute(delete(table).where(table.day < today))
            deleted += getattr(result, "rowcount", 0) or 0
        return deleted
