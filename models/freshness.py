"""What the adaptive price refresh learns and plans: each refresh's outcome, each product's
estimated change rate, weight and interval, and how often the read API serves it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, utcnow

# Refreshes kept per product: enough for the estimator (its error falls as 1/√n), bounded.
HISTORY_PER_PRODUCT = 64


class PriceRefresh(Base):
    """One stored price refresh: whether the calendar changed, and the seconds since the
    previous one (None for a product's first). Pruned to ``HISTORY_PER_PRODUCT`` per product."""

    __tablename__ = "price_refreshes"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.product_id", ondelete="CASCADE")
    )
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    interval_s: Mapped[float | None] = mapped_column(Float)
    changed: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (Index("ix_price_refreshes_product_id", "product_id", "id"),)


class PriceSchedule(Base):
    """The scheduler's per-product state: the last plan's rate, weight and interval, and a
    reset (a notice, a refused order, a Version change) that makes the product due now."""

    __tablename__ = "price_schedule"

    product_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("products.product_id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    rate: Mapped[float | None] = mapped_column(Float)  # changes per second
    weight: Mapped[float | None] = mapped_column(Float)
    interval_s: Mapped[float | None] = mapped_column(Float)
    planned_at: Mapped[datetime | None] = mapped_column(index=True)
    reset_at: Mapped[datetime | None]


class ProductReads(Base):
    """Reads of a product through the read API: ``pending`` is added to by the API (atomic
    increments, flushed in batches) and folded into ``per_day`` by the planner."""

    __tablename__ = "product_reads"

    product_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    per_day: Mapped[float] = mapped_column(Float, default=0.0)
    folded_at: Mapped[datetime | None]
