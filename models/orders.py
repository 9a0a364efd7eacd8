"""The order ledger the supplier's order callbacks keep up to date.

Keyed by the supplier's ``OrderId``, with the distributor's ``OriginOrderId`` beside it.
Personal data is kept masked: per-visitor vouchers hold the ID number's last four characters
and the mobile as ``138****5678``, enough to match a visitor at a help desk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JSONType, utcnow
from models.limits import ORDER_ID_TEXT, SHORT_TEXT


class Order(Base):
    """What the callbacks told us about one supplier order; rows may precede our own record."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    supplier_order_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    origin_order_id: Mapped[str | None] = mapped_column(String(ORDER_ID_TEXT), index=True)
    ticket_status: Mapped[int | None] = mapped_column(Integer)  # 1 issued, 2 failed
    # The inbox row whose ticket notice set the ticket fields: an older one never overwrites.
    ticket_inbox_id: Mapped[int | None] = mapped_column(BigInteger)
    order_voucher_code: Mapped[str | None] = mapped_column(String(SHORT_TEXT))
    # [{"voucher_code", "id_card_no" (masked to last 4), "mobile" (masked)}]
    visitor_vouchers: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    order_total: Mapped[int | None] = mapped_column(Integer)
    checked_number: Mapped[int] = mapped_column(Integer, default=0)  # never moves backwards
    redeemed_vouchers: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    voucher_type: Mapped[int | None] = mapped_column(Integer)
    # The review received last (highest inbox id), whatever order they were processed in.
    refund_status: Mapped[int | None] = mapped_column(Integer)  # 1 ok, 2 no
    refunded_vouchers: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderRefund(Base):
    """One refund review as notified; ``inbox_id`` is unique so a notice applies once."""

    __tablename__ = "order_refunds"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    supplier_order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    inbox_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("inbox.id", ondelete="CASCADE"), unique=True
    )
    refund_apply_no: Mapped[str | None] = mapped_column(
        String(ORDER_ID_TEXT)
    )  # None: supplier-forced
    refund_status: Mapped[int] = mapped_column(Integer)
    refund_reason: Mapped[str | None] = mapped_column(Text)
    voucher_codes: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    is_supplier_forced: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderEvent(Base):
    """What one applied notice did to an order: the ledger's history, for operators to audit
    and correct (the order row alone keeps only running maxima and unions)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    supplier_order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    inbox_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ticket | redemption | refund
    # {"notice": what it said (masked), "changed": {field: [before, after]}}
    effect: Mapped[dict[str, Any]] = mapped_column(JSONType)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
