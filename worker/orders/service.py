"""Order use cases: plain functions over a session factory and the supplier.

Contract (the issue's "no duplicate supplier orders or payments"):

- Checks run from the synced catalog before anything is sent (``checks.check_order``); a
  refusal writes nothing and calls nothing.
- ``origin_order_id`` is claimed (unique) and committed *before* Create leaves, with status
  ``unknown``: a crash or a lost answer leaves an ``unknown`` row, never a forgotten order.
- Create and Pay are sent once. ``SupplierOutcomeUnknown`` (the request left, the answer did
  not come back) keeps the order ``unknown``; nothing sends it again. ``pay`` on an ``unknown``
  or paid order does not call Pay: it reconciles by ``PersonQrCodes`` (a read) and explains.
- Reconciliation: the ticket notice (``on_notice``, it carries OriginOrderId and OrderId),
  ``PersonQrCodes`` (``qr_codes``, ``pay``, ``reconcile_unknown``), the beat task with bounded
  back-off (``reconcile_unknown``).

``SupplierOutcomeUnknown`` is always caught before, and apart from, ``SupplierUnavailable``
and ``SupplierRejected``: the code relies on neither being a subclass of another.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog_api.booking import parse_booking_time
from catalog_api.queries import booking_terms
from models.catalog import DailyPrice, Product, TimedSession
from models.orders import Order, OrderHistory, OrderRefund, OrderRefundBatch
from worker.logs import mask, mask_id_card, mask_mobile
from worker.orders import lifecycle as lc
from worker.orders.checks import (
    Approved,
    DayFacts,
    Facts,
    OrderRequest,
    ProductFacts,
    Refusal,
    SessionFacts,
    check_order,
    holder_keys,
    needs_visitor_ids,
)
from worker.supplier.errors import (
    SupplierBadPayload,
    SupplierError,
    SupplierOutcomeUnknown,
    SupplierRejected,
    SupplierUnavailable,
)
from worker.supplier.payloads import (
    CreateOrderRequest,
    CreateOrderResult,
    Passenger,
    PayOrderRequest,
    PayOrderResult,
    Person,
    PersonQrCode,
    RefundRequest,
    RefundResult,
    VerifyOrderRequest,
)
from worker.sync.refresh_history import reset_clocks

log = logging.getLogger(__name__)

# Reconciliation of unknown orders by the beat task: attempts before it leaves them to an operator.
MAX_RECONCILE_ATTEMPTS = 12
# A Create or Pay in flight is unknown until it answers; beat looks at it only after this.
IN_FLIGHT_GRACE = timedelta(minutes=5)


class OrderSupplier(Protocol):
    """The six order endpoints of the supplier (``worker.supplier.client.SupplierClient``)."""

    def verify_order(self, request: VerifyOrderRequest) -> None: ...
    def create_order(self, request: CreateOrderRequest) -> CreateOrderResult: ...
    def pay_order(self, request: PayOrderRequest) -> PayOrderResult: ...
    def person_qr_codes(self, origin_order_id: str) -> list[PersonQrCode]: ...
    def refund_order(self, request: RefundRequest) -> RefundResult: ...
    def cancel_order(self, order_id: int) -> None: ...


Result = Literal["done", "refused", "unknown"]


@dataclass(frozen=True)
class Outcome:
    """What a use case did: ``done`` (exit 0), ``refused`` naming a rule (1), ``unknown`` (3)."""

    result: Result
    message: str
    rule: str | None = None
    order: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"result": self.result, "message": self.message}
        if self.rule is not None:
            body["rule"] = self.rule
        if self.order is not None:
            body["order"] = self.order
        body.update(self.extra)
        return body


def _utcnow() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], datetime]


def new_origin_order_id() -> str:
    """A unique distributor order number (32 hex characters)."""
    return uuid.uuid4().hex


# --- facts from the synced catalog ---------------------------------------------------------


def gather_facts(session: Session, request: OrderRequest, now: datetime) -> Facts:
    """What the checks need, read from the local catalog and our own ledger."""
    row = session.get(Product, request.product_id)
    if row is None:
        return Facts(None, None)
    booking_time, sells_by_session = booking_terms(session, request.product_id)
    product = ProductFacts(
        product_id=row.product_id,
        is_authorized=row.is_authorized,
        product_status=row.product_status,
        product_name=row.product_name,
        entrance_mode=row.entrance_mode,
        customer_set=row.customer_set,
        max_number_by_order=row.max_number_by_order,
        max_number_by_mobile=row.max_number_by_mobile,
        limit_day_by_mobile=row.limit_day_by_mobile,
        max_number_by_card_id=row.max_number_by_card_id,
        limit_day_by_card_id=row.limit_day_by_card_id,
        min_age=row.min_age,
        max_age=row.max_age,
        booking_time=parse_booking_time(booking_time),
        sells_by_session=sells_by_session,
    )
    price = session.get(DailyPrice, (request.product_id, request.visit_date))
    day = None
    if price is not None:
        day = DayFacts(
            day=price.day,
            price=Decimal(price.price),
            sale_price=Decimal(price.sale_price),
            market_price=Decimal(price.market_price),
            stock=price.stock,
            booking_days=price.booking_days,
        )
    sessions = [
        SessionFacts(s.seats_code, s.start_time, s.end_time, s.seats_num)
        for s in session.scalars(
            select(TimedSession)
            .where(
                TimedSession.product_id == request.product_id,
                TimedSession.day == request.visit_date,
            )
            .order_by(TimedSession.start_time)
        )
    ]
    return Facts(product, day, sessions, _prior_by_holder(session, product, now))


def _prior_by_holder(session: Session, product: ProductFacts, now: datetime) -> dict[str, int]:
    if not (product.max_number_by_mobile or product.max_number_by_card_id):
        return {}
    days = max(product.limit_day_by_mobile or 1, product.limit_day_by_card_id or 1)
    rows = session.execute(
        select(Order.holder_keys, Order.quantity).where(
            Order.product_id == product.product_id,
            Order.created_at >= now - timedelta(days=days),
            Order.status.not_in([lc.REJECTED, lc.CANCELLED, lc.PAYMENT_FAILED]),
        )
    )
    counts: dict[str, int] = {}
    for keys, quantity in rows:
        for key in keys or []:
            counts[key] = counts.get(key, 0) + (quantity or 0)
    return counts


def precheck(session: Session, request: OrderRequest, now: datetime) -> Approved | Refusal:
    """The catalog's checks for ``request``, plus origin_order_id not used yet."""
    used = session.scalar(
        select(Order.status).where(Order.origin_order_id == request.origin_order_id)
    )
    if used is not None or session.scalar(
        select(Order.id).where(Order.origin_order_id == request.origin_order_id)
    ):
        return Refusal(
            "origin_order_id", f"origin order id {request.origin_order_id} is already used"
        )
    return check_order(request, gather_facts(session, request, now), now)


# --- requests to the supplier --------------------------------------------------------------


def _play_times(approved: Approved) -> tuple[str | None, str | None]:
    if approved.session is None:
        return None, None
    return approved.session.start, approved.session.end


def _verify_request(request: OrderRequest, approved: Approved) -> VerifyOrderRequest:
    begin, end = _play_times(approved)
    people = request.visitors or (request.contact,)
    return VerifyOrderRequest(
        product_id=request.product_id,
        visit_date=request.visit_date,
        order_users=[
            Passenger(user_name=p.name, mobile=p.mobile, card_id=p.id_number or "") for p in people
        ],
        begin_play_time=begin,
        end_play_time=end,
    )


def _person(holder: Any) -> Person:
    return Person(name=holder.name, mobile=holder.mobile, id_card=holder.id_number or "")


def _create_request(request: OrderRequest, approved: Approved) -> CreateOrderRequest:
    begin, end = _play_times(approved)
    return CreateOrderRequest(
        origin_order_id=request.origin_order_id,
        contact_person=_person(request.contact),
        product_id=request.product_id,
        order_quantity=request.quantity,
        visit_date=request.visit_date,
        visit_person=[_person(v) for v in request.visitors] or None,
        begin_play_time=begin,
        end_play_time=end,
        order_remark=request.remark,
    )


def _masked_holder(holder: Any) -> dict[str, Any]:
    return {
        "name": holder.name,
        "mobile": mask_mobile(holder.mobile),
        "id_number": mask_id_card(holder.id_number),
    }


def _snapshot(approved: Approved) -> dict[str, Any]:
    product, day = approved.product, approved.day
    return {
        "product": {
            "product_id": product.product_id,
            "product_name": product.product_name,
            "product_status": product.product_status,
            "entrance_mode": product.entrance_mode,
            "customer_set": product.customer_set,
            "max_number_by_order": product.max_number_by_order,
            "booking_time": product.booking_time.strftime("%H:%M")
            if product.booking_time
            else None,
            "min_age": product.min_age,
            "max_age": product.max_age,
            "sells_by_session": product.sells_by_session,
            "one_code_per_visitor": needs_visitor_ids(product),
        },
        "day": {
            "date": day.day.isoformat(),
            "price": str(day.price),
            "sale_price": str(day.sale_price),
            "market_price": str(day.market_price),
            "stock": day.stock,
            "booking_days": day.booking_days,
            "bookable_until": approved.bookable_until.isoformat(),
        },
        "session": None
        if approved.session is None
        else {
            "code": approved.session.code,
            "start": approved.session.start,
            "end": approved.session.end,
            "capacity": approved.session.capacity,
        },
    }


# --- history and moves ---------------------------------------------------------------------


def _history(
    session: Session,
    order: Order,
    *,
    source: str,
    action: str,
    outcome: str,
    before: str | None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    session.add(
        OrderHistory(
            order_ref=order.id,
            at=now or _utcnow(),
            source=source,
            action=action,
            from_status=before,
            to_status=order.status,
            outcome=outcome,
            detail=detail,
        )
    )


def _move(
    session: Session,
    order: Order,
    target: str,
    *,
    source: str,
    action: str,
    detail: dict[str, Any] | None = None,
    quiet_same: bool = False,
) -> lc.Move:
    """Propose ``target``; apply it when the machine allows, record it either way."""
    before = order.status or lc.UNKNOWN
    move = lc.decide(before, target)
    if move.changes:
        order.status = move.status
        if move.status != lc.UNKNOWN:
            order.unknown_step = None
            order.next_reconcile_at = None
    order.updated_at = _utcnow()
    if move.verdict == "same" and quiet_same:
        return move
    note = dict(detail or {})
    if move.verdict == "anomaly":
        note["proposed"] = target
        log.warning(
            "order %s: %s proposed %s while %s: recorded as an anomaly, not applied",
            order.origin_order_id,
            action,
            target,
            before,
        )
    _history(
        session,
        order,
        source=source,
        action=action,
        outcome=move.verdict,
        before=before,
        detail=note or None,
    )
    _settle(session, order)
    return move


def _pending_batches(session: Session, order: Order) -> list[OrderRefundBatch]:
    return list(
        session.scalars(
            select(OrderRefundBatch).where(
                OrderRefundBatch.order_ref == order.id,
                OrderRefundBatch.status.in_(["pending", "unknown"]),
            )
        )
    )


def _settle(session: Session, order: Order) -> None:
    """Derive redeemed / refund_pending / refunded / issued from quantities and batches."""
    if order.status is None or order.status not in lc.TICKETED:
        return
    settled = lc.settle(
        order.status,
        order.quantity or 0,
        order.redeemed_quantity or 0,
        order.refunded_quantity or 0,
        len(_pending_batches(session, order)),
    )
    order.status = settled


def _lock(session: Session, origin_order_id: str) -> Order | None:
    return session.scalars(
        select(Order)
        .where(Order.origin_order_id == origin_order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def _schedule_reconcile(order: Order, now: datetime) -> None:
    order.next_reconcile_at = now + timedelta(
        seconds=lc.reconcile_delay_s(order.reconcile_attempts or 0)
    )


def _write_refused(
    session: Session,
    order: Order,
    status: str,
    action: str,
    rejected: SupplierRejected | None,
    unreachable: SupplierError | None,
) -> Outcome:
    """A write the supplier refused, or one that never left: recorded in the history, and the
    refusal named (``supplier_create``, ``supplier_pay`` or ``supplier_unavailable``)."""
    detail = (
        _rejection(rejected) if rejected is not None else {"error": str(unreachable), "sent": False}
    )
    _move(session, order, status, source="call", action=action, detail=detail)
    view = order_view(session, order)
    if rejected is not None:
        # The supplier refused what our copy allowed: its price or stock may be stale.
        reset_clocks(session, [order.product_id] if order.product_id else [], _utcnow())
        return Outcome(
            "refused",
            f"the supplier refused {action.capitalize()}: {mask(rejected.message)}",
            f"supplier_{action}",
            view,
        )
    return Outcome(
        "refused", f"the supplier is unreachable: {unreachable}", "supplier_unavailable", view
    )


def _recheck_prices(sessions: sessionmaker[Session], product_id: int, refused: Outcome) -> None:
    """A Verify the supplier refused after the catalog's checks passed: our price or stock
    may be stale, so the product's price refresh is due now."""
    if refused.rule == "supplier_verify":
        with sessions.begin() as session:
            reset_clocks(session, [product_id], _utcnow())


def _rejection(exc: SupplierRejected) -> dict[str, Any]:
    return {"code": exc.code, "message": mask(exc.message), "log_id": exc.log_id}


# --- use cases -----------------------------------------------------------------------------


def verify(
    sessions: sessionmaker[Session],
    supplier: OrderSupplier,
    request: OrderRequest,
    *,
    use_verify: bool = True,
    clock: Clock = _utcnow,
) -> Outcome:
    """The catalog's checks, then ``/order/Verify`` (unless ``use_verify`` is off). No order."""
    with sessions() as session:
        verdict = precheck(session, request, clock())
    if isinstance(verdict, Refusal):
        return Outcome("refused", verdict.message, verdict.rule)
    refused = _supplier_verify(supplier, request, verdict, use_verify)
    if refused is not None:
        _recheck_prices(sessions, request.product_id, refused)
        return refused
    return Outcome(
        "done",
        "the order passes every check" + ("" if use_verify else " (supplier Verify off)"),
        extra={"unit_price": str(verdict.day.price)},
    )


def _supplier_verify(
    supplier: OrderSupplier, request: OrderRequest, approved: Approved, use_verify: bool
) -> Outcome | None:
    if not use_verify:
        return None
    try:
        supplier.verify_order(_verify_request(request, approved))
    except SupplierOutcomeUnknown:  # Verify changes nothing; treated as not answered
        return Outcome("refused", "the supplier's Verify did not answer", "supplier_unavailable")
    except SupplierRejected as exc:
        return Outcome(
            "refused",
            f"the supplier's Verify refused: {mask(exc.message)}",
            "supplier_verify",
            extra={"supplier": _rejection(exc)},
        )
    except SupplierUnavailable as exc:
        return Outcome("refused", f"the supplier is unavailable: {exc}", "supplier_unavailable")
    except SupplierError as exc:
        return Outcome("refused", f"the supplier's Verify failed: {exc}", "supplier_verify")
    return None


def place(
    sessions: sessionmaker[Session],
    supplier: OrderSupplier,
    request: OrderRequest,
    *,
    use_verify: bool = True,
    clock: Clock = _utcnow,
) -> Outcome:
    """Check, verify, claim ``origin_order_id``, then send Create once."""
    now = clock()
    with sessions() as session:
        verdict = precheck(session, request, now)
    if isinstance(verdict, Refusal):
        return Outcome("refused", verdict.message, verdict.rule)
    refused = _supplier_verify(supplier, request, verdict, use_verify)
    if refused is not None:
        _recheck_prices(sessions, request.product_id, refused)
        return refused
    try:
        with sessions.begin() as session:
            order = Order(
                origin_order_id=request.origin_order_id,
                status=lc.UNKNOWN,
                unknown_step="create",
                product_id=request.product_id,
                visit_date=request.visit_date,
                session_code=request.session_code,
                quantity=request.quantity,
                unit_price=verdict.day.price,
                redeemed_quantity=0,
                refunded_quantity=0,
                checked_number=0,
                visitor_vouchers=[],
                redeemed_vouchers=[],
                refunded_vouchers=[],
                holders={
                    "contact": _masked_holder(request.contact),
                    "visitors": [_masked_holder(v) for v in request.visitors],
                },
                holder_keys=holder_keys(request),
                snapshot=_snapshot(verdict),
                remark=request.remark,
                reconcile_attempts=0,
                # Should this process die before the answer, beat reconciles it after this.
                next_reconcile_at=now + IN_FLIGHT_GRACE,
                created_at=now,
                updated_at=now,
            )
            session.add(order)
            session.flush()
            _history(
                session,
                order,
                source="call",
                action="create_sent",
                outcome="sent",
                before=None,
                detail={"quantity": request.quantity, "unit_price": str(verdict.day.price)},
            )
    except IntegrityError:
        return Outcome(
            "refused",
            f"origin order id {request.origin_order_id} is already used",
            "origin_order_id",
        )
    lost: str | None = None
    result: CreateOrderResult | None = None
    rejected: SupplierRejected | None = None
    unreachable: SupplierError | None = None
    try:
        result = supplier.create_order(_create_request(request, verdict))
    except SupplierOutcomeUnknown as exc:
        lost = str(exc)
    except SupplierBadPayload as exc:  # a success we could not read: it may exist
        lost = str(exc)
    except SupplierRejected as exc:
        rejected = exc
    except SupplierUnavailable as exc:  # never left this machine
        unreachable = exc
    except SupplierError as exc:
        lost = str(exc)
    with sessions.begin() as session:
        placed = _lock(session, request.origin_order_id)
        assert placed is not None
        order = placed
        if lost is not None:
            _schedule_reconcile(order, clock())
            _history(
                session,
                order,
                source="call",
                action="create",
                outcome="lost",
                before=order.status,
                detail={"error": lost},
            )
            view = order_view(session, order)
            return Outcome(
                "unknown",
                "Create was sent but its answer was lost: the order is unknown; it is not sent "
                "again and will be reconciled (ticket notice, PersonQrCodes, beat task)",
                "outcome_unknown",
                view,
            )
        if rejected is not None or unreachable is not None:
            return _write_refused(session, order, lc.REJECTED, "create", rejected, unreachable)
        assert result is not None
        attach_supplier_order(session, order, result.order_id, source="call")
        target = lc.from_supplier_status(result.order_status)
        _move(
            session,
            order,
            target,
            source="call",
            action="create",
            detail={"order_id": result.order_id, "order_status": result.order_status},
        )
        view = order_view(session, order)
    return Outcome("done", f"order {result.order_id} created: {view['status']}", order=view)


def pay(
    sessions: sessionmaker[Session],
    supplier: OrderSupplier,
    origin_order_id: str,
    *,
    clock: Clock = _utcnow,
) -> Outcome:
    """Send Pay once for an order awaiting payment; never for an unknown or paid one."""
    with sessions.begin() as session:
        order = _lock(session, origin_order_id)
        if order is None or order.status is None:
            return Outcome("refused", f"no order {origin_order_id} placed here", "order_known")
        status = order.status
        if status == lc.UNKNOWN:
            pass  # reconciled below, outside this transaction
        elif status in lc.PAID_OR_LATER:
            return Outcome(
                "done",
                f"already paid ({status}): Pay is not sent again",
                order=order_view(session, order),
            )
        elif status != lc.AWAITING_PAYMENT or order.supplier_order_id is None:
            return Outcome(
                "refused", f"an order {status} cannot be paid", "status", order_view(session, order)
            )
        else:
            order.status = lc.UNKNOWN
            order.unknown_step = "pay"
            order.next_reconcile_at = clock() + IN_FLIGHT_GRACE
            _history(
                session,
                order,
                source="call",
                action="pay_sent",
                outcome="sent",
                before=lc.AWAITING_PAYMENT,
                detail={"unit_price": str(order.unit_price), "ticket_count": order.quantity},
            )
            supplier_order_id = order.supplier_order_id
            unit_price = order.unit_price
            quantity = order.quantity
    if status == lc.UNKNOWN:
        outcome = reconcile_one(sessions, supplier, origin_order_id, clock=clock)
        with sessions() as session:
            order = _lock(session, origin_order_id)
            assert order is not None
            view = order_view(session, order)
        if view["status"] in lc.PAID_OR_LATER:
            return Outcome(
                "done", f"already paid ({view['status']}): Pay is not sent again", order=view
            )
        return Outcome(
            "unknown",
            f"the earlier {order.unknown_step or 'call'}'s outcome is unknown; Pay is not sent "
            f"again until it is reconciled ({outcome})",
            "outcome_unknown",
            view,
        )
    lost: str | None = None
    result: PayOrderResult | None = None
    rejected: SupplierRejected | None = None
    unreachable: SupplierError | None = None
    try:
        result = supplier.pay_order(
            PayOrderRequest(
                order_id=supplier_order_id, unit_price=unit_price, ticket_count=quantity
            )
        )
    except SupplierOutcomeUnknown as exc:
        lost = str(exc)
    except SupplierBadPayload as exc:
        lost = str(exc)
    except SupplierRejected as exc:
        rejected = exc
    except SupplierUnavailable as exc:
        unreachable = exc
    except SupplierError as exc:
        lost = str(exc)
    with sessions.begin() as session:
        order = _lock(session, origin_order_id)
        assert order is not None
        if lost is not None:
            if order.status == lc.UNKNOWN:
                _schedule_reconcile(order, clock())
            _history(
                session,
                order,
                source="call",
                action="pay",
                outcome="lost",
                before=order.status,
                detail={"error": lost},
            )
            return Outcome(
                "unknown",
                "Pay was sent but its answer was lost: the order is unknown; Pay is not sent "
                "again and the order will be reconciled (ticket notice, PersonQrCodes, beat task)",
                "outcome_unknown",
                order_view(session, order),
            )
        if rejected is not None or unreachable is not None:
            return _write_refused(session, order, lc.AWAITING_PAYMENT, "pay", rejected, unreachable)
        assert result is not None
        order.pay_money = result.pay_money
        _keep_vouchers(order, result)
        target = lc.from_supplier_status(result.order_status)
        _move(
            session,
            order,
            target,
            source="call",
            action="pay",
            detail={
                "order_status": result.order_status,
                "pay_money": None if result.pay_money is None else str(result.pay_money),
            },
        )
        view = order_view(session, order)
    if target in lc.FAILURES:
        return Outcome(
            "refused", f"Pay answered OrderStatus {result.order_status}: {target}", target, view
        )
    return Outcome("done", f"paid: {view['status']}", order=view)


def _keep_vouchers(order: Order, result: PayOrderResult) -> None:
    if result.voucher_code and not order.order_voucher_code:
        order.order_voucher_code = result.voucher_code
    if result.order_user_vouchers and not order.visitor_vouchers:
        order.visitor_vouchers = [
            {
                "voucher_code": v.voucher_code,
                "id_card_no": mask_id_card(v.id_card_no),
                "mobile": mask_mobile(v.mobile),
            }
            for v in result.order_user_vouchers
        ]


def cancel(
    sessions: sessionmaker[Session], supplier: OrderSupplier, origin_order_id: str
) -> Outcome:
    """Cancel an order awaiting payment (1.1.8), sent once."""
    with sessions() as session:
        order = _lock(session, origin_order_id)
        if order is None or order.status is None:
            return Outcome("refused", f"no order {origin_order_id} placed here", "order_known")
        if order.status != lc.AWAITING_PAYMENT or order.supplier_order_id is None:
            return Outcome(
                "refused",
                f"an order {order.status} cannot be cancelled",
                "status",
                order_view(session, order),
            )
        supplier_order_id = order.supplier_order_id
    try:
        supplier.cancel_order(supplier_order_id)
    except SupplierOutcomeUnknown as exc:
        return _cancel_not_done(
            sessions,
            origin_order_id,
            ("lost", {"error": str(exc)}),
            Outcome(
                "unknown",
                "Cancel was sent but its answer was lost; run it again "
                "(cancelling twice is refused by the supplier, never harmful)",
                "outcome_unknown",
            ),
        )
    except SupplierRejected as exc:
        return _cancel_not_done(
            sessions,
            origin_order_id,
            ("refused", _rejection(exc)),
            Outcome(
                "refused", f"the supplier refused Cancel: {mask(exc.message)}", "supplier_cancel"
            ),
        )
    except SupplierUnavailable as exc:
        return Outcome("refused", f"the supplier is unreachable: {exc}", "supplier_unavailable")
    with sessions.begin() as session:
        order = _lock(session, origin_order_id)
        assert order is not None
        _move(session, order, lc.CANCELLED, source="call", action="cancel")
        return Outcome("done", "cancelled", order=order_view(session, order))


def _cancel_not_done(
    sessions: sessionmaker[Session],
    origin_order_id: str,
    history: tuple[str, dict[str, Any]],
    outcome: Outcome,
) -> Outcome:
    """A Cancel refused or with its answer lost: recorded in the history, the order unchanged."""
    with sessions.begin() as session:
        order = _lock(session, origin_order_id)
        assert order is not None
        result, detail = history
        _history(
            session,
            order,
            source="call",
            action="cancel",
            outcome=result,
            before=order.status,
            detail=detail,
        )
        return replace(outcome, order=order_view(session, order))


def refund(
    sessions: sessionmaker[Session],
    supplier: OrderSupplier,
    origin_order_id: str,
    count: int,
    voucher_codes: Iterable[str] = (),
    *,
    clock: Clock = _utcnow,
) -> Outcome:
    """Apply for a refund of ``count`` tickets (1.1.7) under a new, unique RefundId."""
    codes = [c for c in voucher_codes if c]
    with sessions.begin() as session:
        order = _lock(session, origin_order_id)
        if order is None or order.status is None:
            return Outcome("refused", f"no order {origin_order_id} placed here", "order_known")
        if order.status not in lc.TICKETED or order.supplier_order_id is None:
            return Outcome(
                "refused",
                f"an order {order.status} has no tickets to refund",
                "status",
                order_view(session, order),
            )
        pending = sum(b.count for b in _pending_batches(session, order))
        left = (order.quantity or 0) - order.redeemed_quantity - order.refunded_quantity - pending
        if count < 1 or count > left:
            return Outcome(
                "refused",
                f"{left} ticket(s) can be refunded, not {count}",
                "refund_count",
                order_view(session, order),
            )
        batch = OrderRefundBatch(
            order_ref=order.id,
            refund_id=uuid.uuid4().hex,
            count=count,
            voucher_codes=codes,
            status="unknown",
            created_at=clock(),
            updated_at=clock(),
        )
        before = order.status
        session.add(batch)
        session.flush()
        _settle(session, order)
        _history(
            session,
            order,
            source="call",
            action="refund_sent",
            outcome="sent",
            before=before,
            detail={"refund_id": batch.refund_id, "count": count},
        )
        _settle(session, order)
        refund_id = batch.refund_id
        supplier_order_id = order.supplier_order_id
    try:
        result = supplier.refund_order(
            RefundRequest(
                order_id=supplier_order_id,
                refund_count=count,
                refund_id=refund_id,
                voucher_code=codes or None,
            )
        )
    except SupplierOutcomeUnknown as exc:
        with sessions.begin() as session:
            order = _lock(session, origin_order_id)
            assert order is not None
            _history(
                session,
                order,
                source="call",
                action="refund",
                outcome="lost",
                before=order.status,
                detail={"refund_id": refund_id, "error": str(exc)},
            )
            return Outcome(
                "unknown",
                f"Refund {refund_id} was sent but its answer was lost; "
                "the review notice will settle it",
                "outcome_unknown",
                order_view(session, order),
            )
    except (SupplierRejected, SupplierUnavailable) as exc:
        with sessions.begin() as session:
            order = _lock(session, origin_order_id)
            assert order is not None
            found = _batch(session, refund_id)
            found.status = "refused"
            found.reason = mask(getattr(exc, "message", str(exc)))
            _history(
                session,
                order,
                source="call",
                action="refund",
                outcome="refused",
                before=order.status,
                detail={"refund_id": refund_id, "error": found.reason},
            )
            _settle(session, order)
            return Outcome(
                "refused",
                f"the supplier refused Refund: {found.reason}",
                "supplier_refund",
                order_view(session, order),
            )
    with sessions.begin() as session:
        order = _lock(session, origin_order_id)
        assert order is not None
        found = _batch(session, refund_id)
        found.apply_id = result.apply_id
        if found.status == "unknown":  # a review notice may have come first
            found.status = {0: "pending", 1: "approved", 2: "rejected"}.get(
                result.refund_status, "pending"
            )
        found.updated_at = clock()
        _history(
            session,
            order,
            source="call",
            action="refund",
            outcome="applied",
            before=order.status,
            detail={
                "refund_id": refund_id,
                "apply_id": result.apply_id,
                "refund_status": result.refund_status,
            },
        )
        _recount_refunds(session, order)
        _settle(session, order)
        return Outcome(
            "done",
            f"refund {refund_id} applied for: {found.status}",
            order=order_view(session, order),
            extra={"refund_id": refund_id},
        )


def _batch(session: Session, refund_id: str) -> OrderRefundBatch:
    return session.scalars(
        select(OrderRefundBatch).where(OrderRefundBatch.refund_id == refund_id)
    ).one()


def qr_codes(
    sessions: sessionmaker[Session],
    supplier: OrderSupplier,
    origin_order_id: str,
    *,
    clock: Clock = _utcnow,
) -> Outcome:
    """Visitors' entry codes (1.1.6); finding them also reconciles an unknown order."""
    with sessions() as session:
        order = _lock(session, origin_order_id)
        if order is None or order.status is None:
            return Outcome("refused", f"no order {origin_order_id} placed here", "order_known")
    try:
        codes = supplier.person_qr_codes(origin_order_id)
    except SupplierOutcomeUnknown as exc:
        return Outcome("refused", f"the supplier did not answer: {exc}", "supplier_unavailable")
    except SupplierRejected as exc:
        return Outcome(
            "refused", f"the supplier has no codes: {mask(exc.message)}", "supplier_qr_codes"
        )
    except SupplierUnavailable as exc:
        return Outcome("refused", f"the supplier is unreachable: {exc}", "supplier_unavailable")
    with sessions.begin() as session:
        order = _lock(session, origin_order_id)
        assert order is not None
        if codes:
            _move(
                session,
                order,
                lc.ISSUED,
                source="reconcile",
                action="person_qr_codes",
                detail={"codes": len(codes)},
                quiet_same=True,
            )
        view = order_view(session, order)
    return Outcome(
        "done",
        f"{len(codes)} code(s)",
        order=view,
        extra={"qr_codes": [{"name": c.name, "qr_code": c.qr_code} for c in codes]},
    )


def reconcile_one(
    sessions: sessionmaker[Session],
    supplier: OrderSupplier,
    origin_order_id: str,
    *,
    clock: Clock = _utcnow,
) -> str:
    """Ask ``PersonQrCodes`` about an unknown order (a read: safe to repeat); what it said."""
    codes: list[PersonQrCode] | None = None
    try:
        codes = supplier.person_qr_codes(origin_order_id)
    except SupplierOutcomeUnknown:
        codes, said = None, "no answer"
    except SupplierRejected as exc:
        codes, said = None, f"no codes: {mask(exc.message)}"
    except SupplierUnavailable:
        codes, said = None, "no answer"
    else:
        said = f"{len(codes or [])} code(s)"
    with sessions.begin() as session:
        order = _lock(session, origin_order_id)
        if order is None or order.status != lc.UNKNOWN:
            return said
        order.reconcile_attempts = (order.reconcile_attempts or 0) + 1
        if codes:
            _move(
                session,
                order,
                lc.ISSUED,
                source="reconcile",
                action="person_qr_codes",
                detail={"codes": len(codes)},
            )
        else:
            _history(
                session,
                order,
                source="reconcile",
                action="person_qr_codes",
                outcome="still_unknown",
                before=order.status,
                detail={"said": said},
            )
            if order.reconcile_attempts >= MAX_RECONCILE_ATTEMPTS:
                order.next_reconcile_at = None  # left to an operator: order list --status unknown
            else:
                _schedule_reconcile(order, clock())
    return said


def reconcile_unknown(
    sessions: sessionmaker[Session],
    supplier: OrderSupplier,
    *,
    clock: Clock = _utcnow,
    limit: int = 50,
) -> dict[str, int]:
    """The beat task's work: unknown orders whose next attempt is due, with bounded back-off."""
    now = clock()
    with sessions() as session:
        due = list(
            session.scalars(
                select(Order.origin_order_id)
                .where(
                    Order.status == lc.UNKNOWN,
                    Order.next_reconcile_at.is_not(None),
                    Order.next_reconcile_at <= now,
                )
                .order_by(Order.next_reconcile_at)
                .limit(limit)
            )
        )
    resolved = 0
    for origin in due:
        if origin is None:
            continue
        reconcile_one(sessions, supplier, origin, clock=clock)
        with sessions() as session:
            if session.scalar(select(Order.status).where(Order.origin_order_id == origin)) != (
                lc.UNKNOWN
            ):
                resolved += 1
    return {"checked": len(due), "resolved": resolved}


# --- the callbacks' side: notices move the same rows ---------------------------------------


def attach_supplier_order(
    session: Session, order: Order, supplier_order_id: int, *, source: str
) -> None:
    """Give our row its supplier OrderId; a ledger-only row the notices made first is merged
    into it (their notices are then applied to our order)."""
    if order.supplier_order_id == supplier_order_id:
        return
    other = session.scalars(
        select(Order).where(Order.supplier_order_id == supplier_order_id).with_for_update()
    ).one_or_none()
    if other is not None and other.id != order.id:
        if other.status is not None:
            _history(
                session,
                order,
                source=source,
                action="attach",
                outcome="anomaly",
                before=order.status,
                detail={"order_id": supplier_order_id, "held_by": other.origin_order_id},
            )
            return
        for name in _LEDGER_FIELDS:
            setattr(order, name, getattr(other, name))
        session.execute(delete(Order).where(Order.id == other.id))
        session.flush()
        order.supplier_order_id = supplier_order_id
        session.flush()
        apply_ledger(
            session,
            order,
            source="notice",
            action="held_notices",
            parts=("ticket", "redemption", "refund"),
        )
        return
    order.supplier_order_id = supplier_order_id
    session.flush()


_LEDGER_FIELDS = (
    "ticket_status",
    "ticket_inbox_id",
    "order_voucher_code",
    "visitor_vouchers",
    "order_total",
    "checked_number",
    "redeemed_vouchers",
    "voucher_type",
    "refund_status",
    "refunded_vouchers",
)


def apply_ledger(
    session: Session,
    order: Order,
    *,
    source: str,
    action: str,
    parts: Iterable[str],
    detail: dict[str, Any] | None = None,
) -> None:
    """Move our lifecycle from what the notices put in the ledger columns of this row."""
    if order.status is None:
        return  # a ledger-only row: not an order placed here
    wanted = set(parts)
    if "ticket" in wanted and order.ticket_status in (1, 2):
        target = lc.ISSUED if order.ticket_status == 1 else lc.TICKET_FAILED
        _move(session, order, target, source=source, action=action, detail=detail)
    if "redemption" in wanted:
        before = order.redeemed_quantity or 0
        order.redeemed_quantity = lc.forward(before, order.checked_number or 0)
        if order.redeemed_quantity != before:
            status = order.status
            _settle(session, order)
            _history(
                session,
                order,
                source=source,
                action=action,
                outcome="applied",
                before=status,
                detail={**(detail or {}), "redeemed_quantity": [before, order.redeemed_quantity]},
            )
    if "refund" in wanted:
        status = order.status
        changes = _recount_refunds(session, order)
        _settle(session, order)
        if changes:
            _history(
                session,
                order,
                source=source,
                action=action,
                outcome="anomaly" if "anomaly" in changes else "applied",
                before=status,
                detail={**(detail or {}), **changes},
            )


def _recount_refunds(session: Session, order: Order) -> dict[str, Any]:
    """Batches from their review notices; refunded_quantity only forward. What changed."""
    changes: dict[str, Any] = {}
    if order.supplier_order_id is None:
        return changes
    reviews = list(
        session.scalars(
            select(OrderRefund)
            .where(OrderRefund.supplier_order_id == order.supplier_order_id)
            .order_by(OrderRefund.inbox_id)
        )
    )
    batches = {
        b.refund_id: b
        for b in session.scalars(
            select(OrderRefundBatch).where(OrderRefundBatch.order_ref == order.id)
        )
    }
    forced = 0
    for review in reviews:
        verdict = "approved" if review.refund_status == 1 else "rejected"
        batch = batches.get(review.refund_apply_no or "")
        if batch is None:
            if review.refund_status == 1:
                # A refund we did not apply for: one ticket per voucher code it names.
                forced += max(1, len(review.voucher_codes or []))
            continue
        if batch.status in ("pending", "unknown"):
            batch.status = verdict
            batch.reason = review.refund_reason
            batch.updated_at = _utcnow()
            changes[f"batch {batch.refund_id}"] = verdict
        elif batch.status != verdict:
            changes["anomaly"] = f"batch {batch.refund_id} {batch.status}, notice says {verdict}"
    approved = sum(b.count for b in batches.values() if b.status == "approved")
    before = order.refunded_quantity or 0
    order.refunded_quantity = lc.forward(before, min(order.quantity or 0, approved + forced))
    if order.refunded_quantity != before:
        changes["refunded_quantity"] = [before, order.refunded_quantity]
    return changes


def on_notice(session: Session, order: Order, kind: str, inbox_id: int) -> None:
    """A ticket, redemption or refund notice was recorded on ``order``'s row: move our order."""
    apply_ledger(
        session,
        order,
        source="notice",
        action=f"{kind}_notice",
        parts=(kind,),
        detail={"inbox_id": inbox_id},
    )


# --- reading -------------------------------------------------------------------------------


def order_view(session: Session, order: Order) -> dict[str, Any]:
    """The order as ``order show --json`` and ``GET /orders/{id}`` give it (personal data masked)."""
    vouchers: list[dict[str, Any]] = []
    if order.order_voucher_code:
        contact = (order.holders or {}).get("contact") or {}
        vouchers.append({"voucher_code": order.order_voucher_code, "holder": contact})
    for v in order.visitor_vouchers or []:
        vouchers.append(
            {
                "voucher_code": v.get("voucher_code"),
                "holder": {
                    "id_number": mask_id_card(v.get("id_card_no")),
                    "mobile": v.get("mobile")
                    if "*" in str(v.get("mobile") or "*")
                    else mask_mobile(v.get("mobile")),
                },
            }
        )
    batches = session.scalars(
        select(OrderRefundBatch)
        .where(OrderRefundBatch.order_ref == order.id)
        .order_by(OrderRefundBatch.id)
    )
    history = session.scalars(
        select(OrderHistory).where(OrderHistory.order_ref == order.id).order_by(OrderHistory.id)
    )
    return {
        "origin_order_id": order.origin_order_id,
        "order_id": order.supplier_order_id,
        "status": order.status,
        "unknown_step": order.unknown_step,
        "product_id": order.product_id,
        "visit_date": order.visit_date.isoformat() if order.visit_date else None,
        "session_code": order.session_code,
        "quantity": order.quantity,
        "redeemed_quantity": order.redeemed_quantity,
        "refunded_quantity": order.refunded_quantity,
        "unit_price": None if order.unit_price is None else str(Decimal(order.unit_price)),
        "pay_money": None if order.pay_money is None else str(Decimal(order.pay_money)),
        "contact": (order.holders or {}).get("contact"),
        "vouchers": vouchers,
        "refund_batches": [
            {
                "refund_id": b.refund_id,
                "count": b.count,
                "status": b.status,
                "apply_id": b.apply_id,
                "voucher_codes": list(b.voucher_codes or []),
                "reason": b.reason,
            }
            for b in batches
        ],
        "snapshot": order.snapshot,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "history": [
            {
                "at": h.at.isoformat(),
                "source": h.source,
                "action": h.action,
                "from": h.from_status,
                "to": h.to_status,
                "outcome": h.outcome,
                "detail": h.detail,
            }
            for h in history
        ],
    }


def show(session: Session, origin_order_id: str) -> dict[str, Any] | None:
    """One order placed here, or None."""
    order = session.scalars(
        select(Order).where(Order.origin_order_id == origin_order_id, Order.status.is_not(None))
    ).one_or_none()
    return None if order is None else order_view(session, order)


def list_orders(
    session: Session,
    *,
    status: str | None = None,
    updated_since: datetime | None = None,
    cursor: int = 0,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], int | None]:
    """Orders placed here in id order after ``cursor``; the next cursor when there may be more."""
    stmt = select(Order).where(Order.status.is_not(None), Order.id > cursor)
    if status:
        stmt = stmt.where(Order.status == status)
    if updated_since is not None:
        stmt = stmt.where(Order.updated_at >= updated_since)
    rows = list(session.scalars(stmt.order_by(Order.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "origin_order_id": o.origin_order_id,
            "order_id": o.supplier_order_id,
            "status": o.status,
            "unknown_step": o.unknown_step,
            "product_id": o.product_id,
            "visit_date": o.visit_date.isoformat() if o.visit_date else None,
            "quantity": o.quantity,
            "redeemed_quantity": o.redeemed_quantity,
            "refunded_quantity": o.refunded_quantity,
            "unit_price": None if o.unit_price is None else str(Decimal(o.unit_price)),
            "updated_at": o.updated_at.isoformat(),
        }
        for o in rows
    ]
    return items, (rows[-1].id if more and rows else None)
