"""The order ledger: plain functions applying order notices inside the caller's transaction.

Each is idempotent (a notice applied twice leaves the same ledger) and independent of the
order notices are processed in (relay retries reorder them): "received earlier" means a
lower inbox id. A ticket notice older than the one that set the ticket fields changes
nothing (``failed`` received before ``issued`` never overwrites it); the order's refund
status is the review received last; redemption counts never move backwards; refunded and
redeemed vouchers are unions. A notice for an unknown order creates its row.

Receipt order stands in for the supplier's event order because the contract carries no
event time: a notice the supplier resends (after a 503) gets a new, higher inbox id and so
counts as later than one sent after it.

Every applied notice also leaves an ``order_events`` row: what it said and what it changed
(before and after), so an operator can see what a bad notice did and correct it, instead of
reading a running maximum alone. ``implausibility`` runs first: a notice that contradicts the
ledger (another origin order for this order, or this origin order on another order) is
marked invalid and changes nothing. Refunds are idempotent per refund batch (``RefundApplyNo``
and review status) and per voucher (refunded vouchers are a union); refunds without an apply
number are distinguished only by their delivery, so each one is a row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.base import utcnow
from models.dialect import insert_ignore
from models.orders import Order, OrderEvent, OrderRefund
from worker.logs import mask, mask_id_card, mask_mobile
from worker.supplier.notices import RedemptionNotice, RefundNotice, TicketNotice


def order_for(session: Session, order_id: int, origin_order_id: str | None = None) -> Order:
    """The ledger row for a supplier order, created when first heard of, locked for update.

    An order we placed whose Create answer has not come back (or was lost) has its row already,
    under its OriginOrderId and without an OrderId: a notice naming both adopts that row.
    """
    now = utcnow()
    if origin_order_id:
        ours = session.scalars(
            select(Order)
            .where(Order.origin_order_id == origin_order_id, Order.supplier_order_id.is_(None))
            .with_for_update()
        ).one_or_none()
        if ours is not None:
            from worker.orders.service import attach_supplier_order

            attach_supplier_order(session, ours, order_id, source="notice")
    insert_ignore(
        session,
        Order,
        {
            "supplier_order_id": order_id,
            "origin_order_id": origin_order_id or None,
            "visitor_vouchers": [],
            "redeemed_vouchers": [],
            "refunded_vouchers": [],
            "checked_number": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    order = session.scalars(
        select(Order)
        .where(Order.supplier_order_id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if origin_order_id and not order.origin_order_id:
        order.origin_order_id = origin_order_id
    order.updated_at = now
    return order


def _union(existing: list[Any], new: list[str]) -> list[Any]:
    merged = list(existing or [])
    merged.extend(code for code in new if code and code not in merged)
    return merged


def record_ticket(session: Session, notice: TicketNotice, inbox_id: int) -> Order:
    """Tickets issued (1) or failed (2), with vouchers; unless a later-received notice set them."""
    order = order_for(session, notice.order_id, notice.origin_order_id)
    before = _snapshot(order, _TICKET_FIELDS)
    if order.ticket_inbox_id is not None and order.ticket_inbox_id > inbox_id:
        _record_event(session, order, inbox_id, "ticket", notice, before, note="older notice")
        return order
    order.ticket_inbox_id = inbox_id
    order.ticket_status = notice.ticket_status
    vouchers = notice.voucher_code
    if vouchers is not None:
        if vouchers.order_voucher_code:
            order.order_voucher_code = vouchers.order_voucher_code
        if vouchers.order_user_vouchers:
            # Masked again here: the inbox holds masked values already; this keeps it so.
            order.visitor_vouchers = [
                {
                    "voucher_code": v.voucher_code,
                    "id_card_no": mask_id_card(v.id_card_no),
                    "mobile": _masked_mobile(v.mobile),
                }
                for v in vouchers.order_user_vouchers
            ]
    _record_event(session, order, inbox_id, "ticket", notice, before)
    return order


def _masked_mobile(value: str | None) -> str | None:
    if value and "*" in value:
        return value
    return mask_mobile(value)


def record_redemption(session: Session, notice: RedemptionNotice, inbox_id: int) -> Order:
    """Gate redemptions: ``CheckedNumber`` of ``OrderTotal``; a late, lower count changes nothing."""
    order = order_for(session, notice.order_id, notice.origin_order_id)
    before = _snapshot(order, _REDEMPTION_FIELDS)
    if notice.checked_number >= order.checked_number:
        order.checked_number = notice.checked_number
        order.order_total = notice.order_total
        if notice.voucher_type is not None:
            order.voucher_type = notice.voucher_type
    elif order.order_total is None:
        order.order_total = notice.order_total
    order.redeemed_vouchers = _union(order.redeemed_vouchers, list(notice.voucher_code))
    _record_event(session, order, inbox_id, "redemption", notice, before)
    return order


def record_refund(session: Session, notice: RefundNotice, inbox_id: int) -> Order:
    """A refund review (approved 1 / rejected 2), kept as its own row; once per inbox row and
    once per refund batch and status (a batch notified again adds nothing)."""
    order = order_for(session, notice.order_id)
    before = _snapshot(order, _REFUND_FIELDS)
    apply_no = (notice.refund_apply_no or "").strip() or None
    repeated = apply_no is not None and session.scalar(
        select(OrderRefund.id).where(
            OrderRefund.supplier_order_id == notice.order_id,
            OrderRefund.refund_apply_no == apply_no,
            OrderRefund.refund_status == notice.refund_status,
            OrderRefund.inbox_id != inbox_id,
        )
    )
    if repeated:
        _record_event(session, order, inbox_id, "refund", notice, before, note="batch seen")
        return order
    added = None is not insert_ignore(
        session,
        OrderRefund,
        {
            "supplier_order_id": notice.order_id,
            "inbox_id": inbox_id,
            "refund_apply_no": apply_no,
            "refund_status": notice.refund_status,
            "refund_reason": mask((notice.refund_reason or "").strip()) or None,
            "voucher_codes": list(notice.voucher_code),
            "is_supplier_forced": notice.is_supplier_forced,
            "received_at": utcnow(),
        },
    )
    if added and notice.refund_status == 1:
        order.refunded_vouchers = _union(order.refunded_vouchers, list(notice.voucher_code))
    order.refund_status = session.scalar(
        select(OrderRefund.refund_status)
        .where(OrderRefund.supplier_order_id == notice.order_id)
        .order_by(OrderRefund.inbox_id.desc())
        .limit(1)
    )
    _record_event(session, order, inbox_id, "refund", notice, before)
    return order


def implausibility(session: Session, notice: Any) -> str | None:
    """Why an order notice contradicts the ledger, or ``None``: checked before it is applied.

    The notice's own counts are checked by its model (``CheckedNumber`` <= ``OrderTotal``,
    neither negative); here, its ``OriginOrderId`` against the ledger rows that already exist.
    """
    origin = (getattr(notice, "origin_order_id", None) or "").strip()
    if not origin:
        return None
    known = session.scalar(
        select(Order.origin_order_id).where(Order.supplier_order_id == notice.order_id)
    )
    if known and known != origin:
        return f"OriginOrderId differs from the ledger's for OrderId {notice.order_id}"
    other = session.scalar(
        select(Order.supplier_order_id).where(
            Order.origin_order_id == origin, Order.supplier_order_id != notice.order_id
        )
    )
    if other is not None:
        return f"OriginOrderId already belongs to OrderId {other}, not {notice.order_id}"
    return None


_TICKET_FIELDS = ("ticket_status", "order_voucher_code", "visitor_vouchers", "ticket_inbox_id")
_REDEMPTION_FIELDS = ("checked_number", "order_total", "voucher_type", "redeemed_vouchers")
_REFUND_FIELDS = ("refund_status", "refunded_vouchers")


def _snapshot(order: Order, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(order, name)) for name in fields}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _record_event(
    session: Session,
    order: Order,
    inbox_id: int,
    kind: str,
    notice: Any,
    before: dict[str, Any],
    *,
    note: str | None = None,
) -> None:
    """One history row: what the notice said (personal data masked) and what it changed."""
    after = _snapshot(order, tuple(before))
    changed = {name: [before[name], after[name]] for name in before if before[name] != after[name]}
    said = notice.model_dump(by_alias=True, mode="json")
    vouchers = said.get("VoucherCode")
    if isinstance(vouchers, dict):
        for voucher in vouchers.get("OrderUserVouchers") or []:
            voucher["IDCardNo"] = mask_id_card(voucher.get("IDCardNo"))
            voucher["Mobile"] = _masked_mobile(voucher.get("Mobile"))
    if isinstance(said.get("RefundReason"), str):
        said["RefundReason"] = mask(said["RefundReason"])
    effect: dict[str, Any] = {"notice": said, "changed": changed}
    if note:
        effect["note"] = note
    session.add(
        OrderEvent(
            supplier_order_id=order.supplier_order_id,
            inbox_id=inbox_id,
            kind=kind,
            effect=effect,
            applied_at=utcnow(),
        )
    )
