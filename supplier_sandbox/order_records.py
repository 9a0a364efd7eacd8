"""Orders and refund applications the sandbox keeps, and the request bodies that drive them."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from supplier_sandbox.envelope import Rejected
from supplier_sandbox.params import (
    lookup,
    object_list,
    optional_decimal,
    optional_int,
    optional_str,
    required_date,
    required_int,
    required_str,
)

AWAITING_PAYMENT = 0
PAID = 1
PAYMENT_FAILED = 2
AWAITING_TICKET = 3
TICKET_ISSUED = 4
TICKET_FAILED = 5

REFUND_PENDING = 0
REFUND_APPROVED = 1
REFUND_REJECTED = 2

_MOBILE = re.compile(r"^1\d{10}$")


@dataclass(frozen=True)
class Person:
    """A contact or visitor (``Person`` in 1.1.4, ``Passengers`` in 1.1.3)."""

    name: str
    mobile: str
    id_card: str
    id_card_type: int = 0

    def to_json(self) -> dict[str, Any]:
        """Admin view of the person."""
        return {
            "name": self.name,
            "mobile": self.mobile,
            "id_card": self.id_card,
            "id_card_type": self.id_card_type,
        }


@dataclass(frozen=True)
class Booking:
    """What Verify and Create both check: product, day, session, quantity and visitors."""

    product_id: int
    visit_date: datetime.date
    quantity: int
    visitors: tuple[Person, ...]
    begin_play_time: str | None = None
    end_play_time: str | None = None


@dataclass(frozen=True)
class CreateRequest:
    """A parsed 1.1.4 body."""

    booking: Booking
    origin_order_id: str
    contact: Person
    remark: str | None


@dataclass(frozen=True)
class PayRequest:
    """A parsed 1.1.5 body."""

    order_id: int
    unit_price: Decimal | None
    eticket_no: str | None
    ticket_count: int | None


@dataclass(frozen=True)
class RefundRequest:
    """A parsed 1.1.7 body."""

    order_id: int
    count: int
    voucher_codes: tuple[str, ...]
    refund_id: str


@dataclass
class Order:
    """A supplier-side order through its life: created, paid, issued, redeemed, refunded."""

    order_id: int
    origin_order_id: str
    product_id: int
    visit_date: datetime.date
    quantity: int
    contact: Person
    visitors: tuple[Person, ...]
    unit_price: Decimal
    entrance_mode: int
    begin_play_time: str | None = None
    end_play_time: str | None = None
    remark: str | None = None
    status: int = AWAITING_PAYMENT
    is_cancelled: bool = False
    pay_money: Decimal | None = None
    voucher_code: str | None = None
    user_vouchers: list[dict[str, str]] = field(default_factory=list)
    checked: int = 0
    refunded: int = 0
    pays_accepted: int = 0  # Pay calls that paid this order (a real supplier takes one)
    pays_refused: int = 0

    @property
    def usable(self) -> int:
        """Tickets still valid for entry (bought, less refunded)."""
        return self.quantity - self.refunded

    def voucher_codes(self) -> list[str]:
        """Every entry code the order holds, order-level or per visitor."""
        if self.voucher_code:
            return [self.voucher_code]
        return [voucher["VoucherCode"] for voucher in self.user_vouchers]

    def to_json(self) -> dict[str, Any]:
        """Admin view of the order (money as Decimal for the encoder)."""
        return {
            "order_id": self.order_id,
            "origin_order_id": self.origin_order_id,
            "product_id": self.product_id,
            "visit_date": self.visit_date.isoformat(),
            "quantity": self.quantity,
            "status": self.status,
            "cancelled": self.is_cancelled,
            "unit_price": self.unit_price,
            "pay_money": self.pay_money,
            "voucher_code": self.voucher_code,
            "user_vouchers": list(self.user_vouchers),
            "checked": self.checked,
            "refunded": self.refunded,
            "pays_accepted": self.pays_accepted,
            "pays_refused": self.pays_refused,
            "begin_play_time": self.begin_play_time,
            "end_play_time": self.end_play_time,
            "remark": self.remark,
            "contact": self.contact.to_json(),
            "visitors": [visitor.to_json() for visitor in self.visitors],
        }


@dataclass
class RefundApplication:
    """A distributor's refund application awaiting (or after) the supplier's review."""

    apply_id: int
    refund_id: str
    order_id: int
    count: int
    voucher_codes: tuple[str, ...]
    status: int = REFUND_PENDING
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Admin view of the application."""
        return {
            "apply_id": self.apply_id,
            "refund_id": self.refund_id,
            "order_id": self.order_id,
            "count": self.count,
            "voucher_codes": list(self.voucher_codes),
            "status": self.status,
            "reason": self.reason,
        }


def _person(raw: Mapping[str, Any], label: str, *, names: tuple[str, str, str, str]) -> Person:
    name_key, mobile_key, card_key, card_type_key = names
    mobile = required_str(lookup(raw, mobile_key), f"{label}.{mobile_key}")
    if not _MOBILE.match(mobile):
        raise Rejected(f"{label}手机号格式错误")
    return Person(
        name=required_str(lookup(raw, name_key), f"{label}.{name_key}"),
        mobile=mobile,
        id_card=optional_str(lookup(raw, card_key)) or "",
        id_card_type=optional_int(lookup(raw, card_type_key), f"{label}.{card_type_key}") or 0,
    )


_PERSON_KEYS = ("Name", "Mobile", "IdCard", "IDCardType")
_PASSENGER_KEYS = ("UserName", "Mobile", "CardID", "CardType")


def _play_times(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    return optional_str(lookup(body, "BeginPlayTime")), optional_str(lookup(body, "EndPlayTime"))


def parse_verify(body: Mapping[str, Any]) -> Booking:
    """1.1.3: the visitors are ``OrderUsers`` and their number is the quantity."""
    users = [
        _person(raw, "游客", names=_PASSENGER_KEYS)
        for raw in object_list(lookup(body, "OrderUsers"), "OrderUsers")
    ]
    if not users:
        raise Rejected("参数OrderUsers不能为空")
    begin, end = _play_times(body)
    return Booking(
        product_id=required_int(lookup(body, "ProductId"), "ProductId"),
        visit_date=required_date(lookup(body, "VisitDate"), "VisitDate"),
        quantity=len(users),
        visitors=tuple(users),
        begin_play_time=begin,
        end_play_time=end,
    )


def parse_create(body: Mapping[str, Any]) -> CreateRequest:
    """1.1.4: the full order body."""
    contact_raw = lookup(body, "ContactPerson")
    if not isinstance(contact_raw, Mapping):
        raise Rejected("参数ContactPerson不能为空")
    visitors = tuple(
        _person(raw, "游玩人", names=_PERSON_KEYS)
        for raw in object_list(lookup(body, "VisitPerson"), "VisitPerson")
    )
    begin, end = _play_times(body)
    quantity = required_int(lookup(body, "OrderQuantity"), "OrderQuantity")
    if quantity < 1:
        raise Rejected("购买数量必须大于0")
    booking = Booking(
        product_id=required_int(lookup(body, "ProductId"), "ProductId"),
        visit_date=required_date(lookup(body, "VisitDate"), "VisitDate"),
        quantity=quantity,
        visitors=visitors,
        begin_play_time=begin,
        end_play_time=end,
    )
    return CreateRequest(
        booking=booking,
        origin_order_id=required_str(lookup(body, "OriginOrderId"), "OriginOrderId"),
        contact=_person(contact_raw, "取票人", names=_PERSON_KEYS),
        remark=optional_str(lookup(body, "OrderRemark")),
    )


def parse_pay(body: Mapping[str, Any]) -> PayRequest:
    """1.1.5: which order, and optionally the unit price and ticket count paid for."""
    ticket_count = optional_int(lookup(body, "TicketCount"), "TicketCount")
    if isinstance(lookup(body, "UnitPrice"), str):
        # 1.1.5 types UnitPrice as a decimal number; a strict binder refuses a string.
        raise Rejected("参数UnitPrice格式错误，应为数字")
    return PayRequest(
        order_id=required_int(lookup(body, "OrderId"), "OrderId"),
        unit_price=optional_decimal(lookup(body, "UnitPrice"), "UnitPrice"),
        eticket_no=optional_str(lookup(body, "EticketNo")),
        ticket_count=ticket_count,
    )


def parse_refund(body: Mapping[str, Any]) -> RefundRequest:
    """1.1.7: how many tickets, optionally which codes, under a unique batch number."""
    codes = lookup(body, "VoucherCode")
    if codes is None:
        codes = []
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise Rejected("参数VoucherCode格式错误")
    count = required_int(lookup(body, "RefundCount"), "RefundCount")
    if count < 1:
        raise Rejected("退票数量必须大于0")
    return RefundRequest(
        order_id=required_int(lookup(body, "OrderId"), "OrderId"),
        count=count,
        voucher_codes=tuple(codes),
        refund_id=required_str(lookup(body, "RefundId"), "RefundId"),
    )
