"""The local catalog: products, raw price rules, the resolved daily calendar, sessions,
the append-only change feed and the record of sync runs."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JSONType, money, utcnow
from models.limits import (
    BOOKING_TIME_TEXT,
    DATETIME_TEXT,
    HASH_TEXT,
    NAME_TEXT,
    SHORT_TEXT,
    TIME_TEXT,
)


class ChangeKind(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    STATUS = "status"
    PRICES = "prices"
    DEAUTHORIZED = "deauthorized"
    REAUTHORIZED = "reauthorized"


class Product(Base):
    """One supplier product: typed columns for every contract field, plus the raw payload.

    ``last_seen_at`` moves only when the row is written: a pass over an unchanged catalog
    writes nothing per product, and the last complete product pass (``sync_runs``) is what
    proves every authorized row was seen.
    """

    __tablename__ = "products"

    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
    product_code: Mapped[str | None] = mapped_column(String(SHORT_TEXT))
    is_ticket: Mapped[int | None]
    ticket_get_address: Mapped[str | None] = mapped_column(Text)
    product_name: Mapped[str] = mapped_column(String(NAME_TEXT))
    product_desc: Mapped[str | None] = mapped_column(Text)
    entrance_mode: Mapped[int | None]
    product_kind: Mapped[str | None] = mapped_column(String(SHORT_TEXT))
    adult_number: Mapped[int | None]
    child_number: Mapped[int | None]
    max_number_by_order: Mapped[int | None]
    max_number_by_mobile: Mapped[int | None]
    limit_day_by_mobile: Mapped[int | None]
    max_number_by_card_id: Mapped[int | None]
    limit_day_by_card_id: Mapped[int | None]
    customer_set: Mapped[int | None]
    total_stock: Mapped[int | None]
    product_status: Mapped[int] = mapped_column(Integer, index=True)
    refund_set: Mapped[int | None]
    scenic_spots: Mapped[str | None] = mapped_column(String(NAME_TEXT))
    scenic_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    out_id: Mapped[str | None] = mapped_column(String(SHORT_TEXT))
    min_age: Mapped[int | None]
    max_age: Mapped[int | None]
    effective_time_mode: Mapped[int | None]
    effective_time: Mapped[int | None]
    become_effective_time: Mapped[int | None]
    begin_effective_time: Mapped[str | None] = mapped_column(
        String(DATETIME_TEXT)
    )  # as sent, ISO 8601
    end_effective_time: Mapped[str | None] = mapped_column(String(DATETIME_TEXT))
    booking_time: Mapped[str | None] = mapped_column(String(BOOKING_TIME_TEXT))  # HH:mm

    raw: Mapped[dict[str, Any]] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(HASH_TEXT))
    # A fingerprint of ``raw`` as received: a page entry with the same one is the same product,
    # so the pass need not validate it again (None: unknown, the next entry is read in full).
    raw_hash: Mapped[str | None] = mapped_column(String(HASH_TEXT))
    is_authorized: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    deauthorized_at: Mapped[datetime | None]
    prices_refreshed_at: Mapped[datetime | None] = mapped_column(index=True)
    prices_hash: Mapped[str | None] = mapped_column(String(HASH_TEXT))
    # When the fetch whose calendar is stored started: an older fetch never overwrites it.
    prices_fetched_at: Mapped[datetime | None]
    # When a refresh last started, failed ones included: the rolling refresh goes oldest first.
    prices_attempted_at: Mapped[datetime | None] = mapped_column(index=True)
    # The window (supplier dates) the stored calendar covers and ``prices_hash`` was taken over.
    prices_window_start: Mapped[date | None] = mapped_column(Date)
    prices_window_end: Mapped[date | None] = mapped_column(Date)
    # Why the last price refresh failed after its retries (None once one succeeds).
    prices_error: Mapped[str | None] = mapped_column(Text)
    # When the fetch (or notice) whose content this row holds started, on the database's
    # clock: an upsert, shelf change, deauthorization or re-authorization lands only when
    # its own fetch started later. Version is a change marker, never an order.
    fetched_at: Mapped[datetime | None]


class QuarantinedProduct(Base):
    """A product entry that failed validation, kept raw with its error; the last good row stays."""

    __tablename__ = "quarantined_products"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    product_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    raw: Mapped[Any] = mapped_column(JSONType)
    error: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class PriceRule(Base):
    """A raw price rule as received, in response order (``position`` breaks precedence ties)."""

    __tablename__ = "price_rules"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.product_id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    price_type: Mapped[int]
    begin_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    daily_stock: Mapped[int]
    market_price: Mapped[money]
    price: Mapped[money]
    sale_price: Mapped[money]
    booking_day: Mapped[int]


class DailyPrice(Base):
    """The resolved calendar: one row per product and day in the price window."""

    __tablename__ = "daily_prices"

    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.product_id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    price: Mapped[money]  # the distributor's cost
    sale_price: Mapped[money]
    market_price: Mapped[money]
    stock: Mapped[int | None]  # None = unlimited (DailyStock 0)
    booking_days: Mapped[int]


class TimedSession(Base):
    """A timed session (场次) of a product on a day."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.product_id", ondelete="CASCADE")
    )
    day: Mapped[date] = mapped_column(Date)
    start_time: Mapped[str] = mapped_column(String(TIME_TEXT))
    end_time: Mapped[str] = mapped_column(String(TIME_TEXT))
    seats_code: Mapped[str] = mapped_column(String(SHORT_TEXT))
    seats_num: Mapped[int]

    __table_args__ = (Index("ix_sessions_product_day", "product_id", "day"),)


class Change(Base):
    """The append-only change feed; ``seq`` is monotonic and never reused or rewritten."""

    __tablename__ = "changes"

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class SyncRun(Base):
    """One pass (products, prices, one product): what it did and how it ended."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(32), default="running")  # running|ok|failed|anomaly
    is_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    pages: Mapped[int] = mapped_column(default=0)
    seen: Mapped[int] = mapped_column(default=0)
    new: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    deauthorized: Mapped[int] = mapped_column(default=0)
    reauthorized: Mapped[int] = mapped_column(default=0)
    quarantined: Mapped[int] = mapped_column(default=0)
    prices_refreshed: Mapped[int] = mapped_column(default=0)
    prices_changed: Mapped[int] = mapped_column(default=0)
    requests: Mapped[int] = mapped_column(default=0)
    retries: Mapped[int] = mapped_column(default=0)  # requests repeated after a transient failure
    version_regressions: Mapped[int] = mapped_column(
        default=0
    )  # products applied at a lower Version
    errors: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
