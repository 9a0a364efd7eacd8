"""The order lifecycle on the supplier's side: verify, create, pay, issue, redeem, refund, cancel.

Every refusal is a ``Rejected`` with the Chinese message the distributor will see.
Notifications go out through ``notify`` as the real supplier would send them.
"""

from __future__ import annotations

import datetime
import random
import threading
from collections import Counter
from typing import Any

from supplier_sandbox.envelope import Rejected
from supplier_sandbox.oracle import CalendarDay, resolve_day
from supplier_sandbox.order_records import (
    AWAITING_PAYMENT,
    AWAITING_TICKET,
    PAID,
    REFUND_APPROVED,
    REFUND_PENDING,
    REFUND_REJECTED,
    TICKET_FAILED,
    TICKET_ISSUED,
    Booking,
    CreateRequest,
    Order,
    PayRequest,
    RefundApplication,
    RefundRequest,
)
from supplier_sandbox.seats import Seat
from supplier_sandbox.store import CatalogStore, Notify, UnknownEntity

FIRST_ORDER_ID = 4553010


def _int_field(payload: dict[str, Any], key: str) -> int:
    try:
        return int(payload.get(key) or 0)
    except (TypeError, ValueError):
        return 0


class OrderBook:
    """Orders and refund applications; every method takes the shared lock."""

    def __init__(
        self,
        lock: threading.RLock,
        catalog: CatalogStore,
        *,
        partner_id: int,
        seed: int,
        notify: Notify,
    ) -> None:
        self._lock = lock
        self._catalog = catalog
        self._partner_id = partner_id
        self._notify = notify
        self._rng = random.Random(f"vouchers-{seed}")
        self.auto_issue = True
        self._orders: dict[int, Order] = {}
        self._by_origin: dict[str, int] = {}
        self._applications: dict[int, RefundApplication] = {}
        self._refund_ids: set[str] = set()
        self._sold_day: Counter[tuple[int, datetime.date]] = Counter()
        self._sold_session: Counter[tuple[int, datetime.date, str]] = Counter()
        self._sold_total: Counter[int] = Counter()

    # -- the distributor's calls ---------------------------------------------------------------

    def verify(self, booking: Booking) -> None:
        """1.1.3: refuse exactly what Create would refuse for this booking."""
        with self._lock:
            self._check(booking)

    def create(self, request: CreateRequest) -> dict[str, Any]:
        """1.1.4: a new unpaid order; the OriginOrderId must be new."""
        booking = request.booking
        with self._lock:
            if request.origin_order_id in self._by_origin:
                raise Rejected("分销商订单号已存在，请勿重复下单")
            day, seat = self._check(booking)
            order = Order(
                order_id=FIRST_ORDER_ID + len(self._orders),
                origin_order_id=request.origin_order_id,
                product_id=booking.product_id,
                visit_date=booking.visit_date,
                quantity=booking.quantity,
                contact=request.contact,
                visitors=booking.visitors,
                unit_price=day.price,
                entrance_mode=_int_field(self._catalog.product(booking.product_id), "EntranceMode"),
                begin_play_time=seat.start if seat else None,
                end_play_time=seat.end if seat else None,
                remark=request.remark,
            )
            self._orders[order.order_id] = order
            self._by_origin[order.origin_order_id] = order.order_id
            self._hold_stock(order, +order.quantity)
            return {
                "OriginOrderId": order.origin_order_id,
                "DistributorId": self._partner_id,
                "OrderId": order.order_id,
                "OrderStatus": order.status,
            }

    def pay(self, request: PayRequest) -> dict[str, Any]:
        """1.1.5: pay an unpaid order; tickets are issued at once unless auto_issue is off."""
        with self._lock:
            order = self._order(request.order_id)
            if order.is_cancelled:
                order.pays_refused += 1
                raise Rejected("订单已取消，不能支付")
            if order.status != AWAITING_PAYMENT:
                order.pays_refused += 1
                raise Rejected("订单已支付，请勿重复支付")
            if request.ticket_count is not None and request.ticket_count != order.quantity:
                raise Rejected("支付票数与订单票数不一致")
            unit = request.unit_price if request.unit_price is not None else order.unit_price
            order.pay_money = unit * order.quantity
            order.pays_accepted += 1
            order.status = PAID
            if self.auto_issue:
                self._issue(order, ok=True)
            else:
                order.status = AWAITING_TICKET
            return self._pay_data(order)

    def person_qr_codes(self, origin_order_id: str) -> list[dict[str, Any]]:
        """1.1.6: each visitor's entry code (the contact's, for a one-code order)."""
        with self._lock:
            order_id = self._by_origin.get(origin_order_id)
            if order_id is None:
                raise Rejected("订单不存在")
            order = self._orders[order_id]
            if order.status != TICKET_ISSUED:
                raise Rejected("订单未出票")
            if order.voucher_code:
                return [{"Name": order.contact.name, "QrCode": order.voucher_code}]
            return [
                {"Name": visitor.name, "QrCode": voucher["VoucherCode"]}
                for visitor, voucher in zip(order.visitors, order.user_vouchers, strict=True)
            ]

    def apply_refund(self, request: RefundRequest) -> dict[str, Any]:
        """1.1.7: a refund application awaiting review; RefundId must be new."""
        with self._lock:
            if request.refund_id in self._refund_ids:
                raise Rejected("退款申请批次号重复")
            order = self._order(request.order_id)
            if order.status != TICKET_ISSUED:
                raise Rejected("订单未出票，不能申请退款")
            product = self._catalog.product(order.product_id)
            if _int_field(product, "RefundSet") != 1:
                raise Rejected("该产品不支持退款")
            codes = set(order.voucher_codes())
            if any(code not in codes for code in request.voucher_codes):
                raise Rejected("入园凭证不属于该订单")
            if request.count > self._refundable(order):
                raise Rejected("可退票数不足")
            application = RefundApplication(
                apply_id=len(self._applications) + 1,
                refund_id=request.refund_id,
                order_id=order.order_id,
                count=request.count,
                voucher_codes=request.voucher_codes,
            )
            self._applications[application.apply_id] = application
            self._refund_ids.add(request.refund_id)
            return {"ApplyId": application.apply_id, "RefundStatus": application.status}

    def cancel(self, order_id: int) -> None:
        """1.1.8: cancel an unpaid order and release its stock."""
        with self._lock:
            order = self._order(order_id)
            if order.is_cancelled:
                raise Rejected("订单已取消，请勿重复取消")
            if order.status != AWAITING_PAYMENT:
                raise Rejected("订单已支付，不能取消")
            order.is_cancelled = True
            self._hold_stock(order, -order.quantity)

    # -- the supplier's own moves (admin) ------------------------------------------------------

    def issue_tickets(self, order_id: int, *, ok: bool = True) -> dict[str, Any]:
        """Issue (or fail to issue) a paid order's tickets and send order_ticket_notify."""
        with self._lock:
            order = self._known(order_id)
            if order.is_cancelled or order.status in (AWAITING_PAYMENT,):
                raise ValueError("order is not paid")
            self._issue(order, ok=ok)
            return order.to_json()

    def redeem(self, order_id: int, count: int = 1) -> dict[str, Any]:
        """Tickets used at the gate: send order_verify_notify with the running total."""
        with self._lock:
            order = self._known(order_id)
            if order.status != TICKET_ISSUED:
                raise ValueError("order has no issued tickets")
            if count < 1 or order.checked + count > order.usable:
                raise ValueError("not that many unused tickets")
            codes = order.voucher_codes()
            redeemed = (
                codes[:1] if order.voucher_code else codes[order.checked : order.checked + count]
            )
            order.checked += count
            self._notify(
                "order_verify_notify",
                {
                    "TicketStatus": 1,
                    "OriginOrderId": order.origin_order_id,
                    "OrderId": order.order_id,
                    "VoucherCode": redeemed,
                    "OrderTotal": order.usable,
                    "CheckedNumber": order.checked,
                    "VoucherType": 1,
                },
            )
            return order.to_json()

    def review_refund(self, apply_id: int, *, approve: bool, reason: str = "") -> dict[str, Any]:
        """Approve or reject a pending application and send order_refund_notify."""
        with self._lock:
            application = self._applications.get(apply_id)
            if application is None:
                raise UnknownEntity(f"no refund application {apply_id}")
            if application.status != REFUND_PENDING:
                raise ValueError("refund application already reviewed")
            order = self._orders[application.order_id]
            codes = list(application.voucher_codes) or self._codes_to_refund(
                order, application.count
            )
            application.status = REFUND_APPROVED if approve else REFUND_REJECTED
            application.reason = reason
            if approve:
                self._refund(order, application.count)
            self._notify(
                "order_refund_notify",
                {
                    "OrderId": order.order_id,
                    "RefundApplyNo": application.refund_id,
                    "RefundStatus": application.status,
                    "RefundReason": reason or (" " if not approve else ""),
                    "VoucherCode": codes if approve else [],
                },
            )
            return application.to_json()

    def force_refund(self, order_id: int, count: int, reason: str = "") -> dict[str, Any]:
        """A refund the supplier decides on its own: RefundApplyNo is empty."""
        with self._lock:
            order = self._known(order_id)
            if order.status != TICKET_ISSUED:
                raise ValueError("order has no issued tickets")
            if count < 1 or count > order.usable - order.checked:
                raise ValueError("not that many unused tickets")
            codes = self._codes_to_refund(order, count)
            self._refund(order, count)
            self._notify(
                "order_refund_notify",
                {
                    "OrderId": order.order_id,
                    "RefundApplyNo": "",
                    "RefundStatus": REFUND_APPROVED,
                    "RefundReason": reason,
                    "VoucherCode": codes,
                },
            )
            return order.to_json()

    # -- truth ---------------------------------------------------------------------------------

    def orders(self) -> list[dict[str, Any]]:
        """Every order, oldest first."""
        with self._lock:
            return [order.to_json() for order in self._orders.values()]

    def order(self, order_id: int) -> dict[str, Any]:
        """One order by the supplier's OrderId."""
        with self._lock:
            return self._known(order_id).to_json()

    def refund_applications(self) -> list[dict[str, Any]]:
        """Every refund application, oldest first."""
        with self._lock:
            return [application.to_json() for application in self._applications.values()]

    def sold(self, product_id: int, day: datetime.date) -> int:
        """Tickets held by live orders for a product and day."""
        with self._lock:
            return self._sold_day[(product_id, day)]

    # -- internals ----------------------------------------------------------------------------

    def _check(self, booking: Booking) -> tuple[CalendarDay, Seat | None]:
        catalog = self._catalog
        if not catalog.is_authorized(booking.product_id):
            raise Rejected("产品不存在或未授权")
        product = catalog.product(booking.product_id)
        if _int_field(product, "ProductStatus") != 1:
            raise Rejected("产品已下架，暂不可预订")
        today = catalog.today
        if booking.visit_date < today:
            raise Rejected("游玩日期不能早于今天")
        day = resolve_day(catalog.rules(booking.product_id), booking.visit_date)
        if day is None:
            raise Rejected("所选游玩日期不可售")
        if day.booking_days and (booking.visit_date - today).days < day.booking_days:
            raise Rejected("游玩预订时间不符合产品预订时间限制")
        limit = _int_field(product, "MaxNumberByOrder")
        if limit and booking.quantity > limit:
            raise Rejected(f"超过单笔订单最大购买数量（{limit}张）")
        if (
            day.stock is not None
            and self._sold_day[(booking.product_id, day.date)] + booking.quantity > day.stock
        ):
            raise Rejected("库存不足")
        total = _int_field(product, "TotoalStock")
        if total and self._sold_total[booking.product_id] + booking.quantity > total:
            raise Rejected("产品总库存不足")
        if _int_field(product, "EntranceMode") == 1:
            if len(booking.visitors) != booking.quantity:
                raise Rejected("一人一码产品需提供每位游客信息，游客人数须与票数一致")
            if any(not visitor.id_card for visitor in booking.visitors):
                raise Rejected("一人一码产品需提供每位游客的身份证号")
        return day, self._check_seat(booking)

    def _check_seat(self, booking: Booking) -> Seat | None:
        if not self._catalog.has_seats(booking.product_id):
            return None
        seats = self._catalog.seats(booking.product_id, booking.visit_date, booking.visit_date)
        if not seats:
            raise Rejected("所选日期无可售场次")
        if booking.begin_play_time is None:
            raise Rejected("该产品需选择场次，请传入BeginPlayTime")
        seat = next((seat for seat in seats if seat.start == booking.begin_play_time), None)
        if seat is None or booking.end_play_time not in (None, seat.end):
            raise Rejected("场次不存在")
        held = self._sold_session[(booking.product_id, booking.visit_date, seat.start)]
        if held + booking.quantity > seat.capacity:
            raise Rejected("场次余票不足")
        return seat

    def _hold_stock(self, order: Order, quantity: int) -> None:
        self._sold_day[(order.product_id, order.visit_date)] += quantity
        self._sold_total[order.product_id] += quantity
        if order.begin_play_time is not None:
            self._sold_session[(order.product_id, order.visit_date, order.begin_play_time)] += (
                quantity
            )

    def _issue(self, order: Order, *, ok: bool) -> None:
        if ok:
            if not order.voucher_codes():
                self._make_vouchers(order)
            order.status = TICKET_ISSUED
        else:
            order.status = TICKET_FAILED
        self._notify(
            "order_ticket_notify",
            {
                "OriginOrderId": order.origin_order_id,
                "OrderId": order.order_id,
                "VoucherCode": {
                    "OrderVoucherCode": (order.voucher_code or "") if ok else "",
                    "OrderUserVouchers": list(order.user_vouchers) if ok else [],
                },
                "TicketStatus": 1 if ok else 2,
            },
        )

    def _make_vouchers(self, order: Order) -> None:
        base = f"{self._catalog.today:%Y%m%d}{order.order_id:08d}{self._rng.randrange(100000):05d}"
        if order.entrance_mode == 1:
            order.user_vouchers = [
                {
                    "IDCardNo": visitor.id_card,
                    "VoucherCode": f"{base}-{n}",
                    "Mobile": visitor.mobile,
                }
                for n, visitor in enumerate(order.visitors, start=1)
            ]
        else:
            order.voucher_code = base

    def _pay_data(self, order: Order) -> dict[str, Any]:
        return {
            "VoucherCode": order.voucher_code,
            "OrderUserVouchers": list(order.user_vouchers),
            "OrderStatus": order.status,
            "PayMoney": order.pay_money,
        }

    def _pending_count(self, order: Order) -> int:
        return sum(
            application.count
            for application in self._applications.values()
            if application.order_id == order.order_id and application.status == REFUND_PENDING
        )

    def _refundable(self, order: Order) -> int:
        return order.usable - order.checked - self._pending_count(order)

    def _codes_to_refund(self, order: Order, count: int) -> list[str]:
        if order.voucher_code:
            return [order.voucher_code]
        unused = order.voucher_codes()[order.checked : order.usable]
        return unused[-count:] if count else []

    def _refund(self, order: Order, count: int) -> None:
        order.refunded += count
        self._hold_stock(order, -count)

    def _order(self, order_id: int) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise Rejected("订单不存在")
        return order

    def _known(self, order_id: int) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise UnknownEntity(f"no order {order_id}")
        return order
