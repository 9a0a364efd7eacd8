"""The order ledger the supplier's order callbacks keep up to date.

Keyed by the supplier's ``OrderId``, with the distributor's ``OriginOrderId`` beside it.
Personal data is kept masked: per-visitor vouchers hold the ID number's last four characters
and the mobile as ``138****5678``, enough to match a visitor at a help desk.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, JSONType, utcnow
from models.limits import ORDER_ID_TEXT, SHORT_TEXT


class Order(Base):
    """One order: what our calls and the supplier's callbacks told us, in one row.

    A row the callbacks made for an order we did not place has ``status`` None (ledger only).
    A row we placed is claimed by ``origin_order_id`` (unique) before the supplier is called,
    so ``supplier_order_id`` is None until Create answers or a notice names it.
    """

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    supplier_order_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    origin_order_id: Mapped[str | None] = mapped_column(String(ORDER_ID_TEXT), unique=True)
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
    # --- the order as we placed it (None on a ledger-only row) ---------------------------
    # worker.orders.lifecycle.STATUSES
    status: Mapped[str | None] = mapped_column(String(24), index=True)
    # Which write lost its answer while ``unknown``: "create" or "pay".
    unknown_step: Mapped[str | None] = mapped_column(String(16))
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    visit_date: Mapped[date | None] = mapped_column(Date)
    session_code: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[int | None] = mapped_column(Integer)
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    pay_money: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    redeemed_quantity: Mapped[int] = mapped_column(Integer, default=0)  # only forward
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)  # only forward
    # {"name", "mobile" masked, "id_number" masked} and the visitors likewise
    holders: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Keyed digests of mobiles and ID numbers, for the products' per-mobile / per-ID limits.
    holder_keys: Mapped[list[Any] | None] = mapped_column(JSONType)
    # The product and calendar day as sold (what the checks saw).
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    remark: Mapped[str | None] = mapped_column(Text)
    reconcile_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_reconcile_at: Mapped[datetime | None] = mapped_column(index=True)


class OrderRefundBatch(Base):
    """One refund we applied for (1.1.7): ``refund_id`` is the unique batch number we sent."""

    __tablename__ = "order_refund_batches"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_ref: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    refund_id: Mapped[str] = mapped_column(String(64), unique=True)
    count: Mapped[int] = mapped_column(Integer)
    voucher_codes: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    apply_id: Mapped[str | None] = mapped_column(String(64))
    # pending | approved | rejected | unknown (the answer was lost)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderHistory(Base):
    """Each call and notice that moved (or tried to move) an order we placed."""

    __tablename__ = "order_history"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_ref: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(16))  # call | notice | reconcile
    action: Mapped[str] = mapped_column(String(32))  # create, pay, ticket_notice, ...
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(16))  # applied | same | stale | anomaly | ...
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


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
