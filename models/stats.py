"""Counts and freshness read by both ``catalog-sync status`` and the read API's metrics: one query
for each figure, so the two never disagree."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from models.catalog import Change, Product
from models.inbox import InboxMessage, InboxStatus


def oldest_price_refresh(session: Session) -> tuple[datetime | None, int]:
    """The oldest ``prices_refreshed_at`` among authorized products, and how many were never
    refreshed."""
    authorized = Product.is_authorized.is_(True)
    oldest = session.scalar(select(func.min(Product.prices_refreshed_at)).where(authorized))
    never = session.scalar(
        select(func.count()).where(authorized, Product.prices_refreshed_at.is_(None))
    )
    return oldest, int(never or 0)


def last_change_seq(session: Session) -> int | None:
    """The newest change row's sequence number; None when the feed is empty."""
    return session.scalar(select(func.max(Change.seq)))


def has_inbox(session: Session) -> bool:
    """Whether the inbox table exists yet (the read API may run before the first migration)."""
    return inspect(session.connection()).has_table(InboxMessage.__tablename__)


def inbox_counts(session: Session) -> dict[str, int]:
    """Callback inbox rows per status, every status present (0 when none)."""
    counts = {status.value: 0 for status in InboxStatus}
    rows = session.execute(
        select(InboxMessage.status, func.count()).group_by(InboxMessage.status)
    ).all()
    for status, count in rows:
        counts[str(status)] = int(count)
    return counts


def inbox_backlog(session: Session) -> int:
    """Inbox rows waiting (``pending``) or parked to replay (``failed``)."""
    waiting = (InboxStatus.PENDING, InboxStatus.FAILED)
    count = session.scalar(select(func.count()).where(InboxMessage.status.in_(waiting)))
    return int(count or 0)
