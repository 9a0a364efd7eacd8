"""The supplier's signed callbacks (notifications) as validated models, and their safe JSON reader."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from worker.supplier.fields import Int32, Int64, OptStr, Str, SupplierModel, blank_to_none
from worker.supplier.payloads import UserVoucher

# --- callbacks ----------------------------------------------------------------------------

# A callback body that a number can make expensive: ``1e100000000`` parses to a Decimal at once
# but costs minutes (and memory) when turned into an int, so such numbers fail the parse.
MAX_NUMBER_DIGITS = 40
MAX_EXPONENT = 40


class UnreadableNumber(ValueError):
    """A number in a callback body that no column holds and that is costly to convert."""


def _bounded_float(text: str) -> Decimal:
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    if (
        len(text) > MAX_NUMBER_DIGITS + 8
        or not isinstance(exponent, int)
        or abs(exponent) > MAX_EXPONENT
        or value.adjusted() > MAX_EXPONENT
    ):
        raise UnreadableNumber("number out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise UnreadableNumber("number out of range")
    return int(text)


def _no_constant(text: str) -> Any:
    raise UnreadableNumber(f"{text} is not JSON")


def loads_notice_json(text: str) -> Any:
    """``json.loads`` for callback bodies: money exact (Decimal), absurd numbers and
    ``NaN``/``Infinity`` (not JSON; no database stores them) refused fast.

    Raises ``ValueError`` (``json.JSONDecodeError`` is one) or ``RecursionError``.
    """
    return json.loads(
        text, parse_float=_bounded_float, parse_int=_bounded_int, parse_constant=_no_constant
    )


def _no_vouchers_as_empty_list(value: Any) -> Any:
    """``null``, ``""`` and ``{}`` mean "no vouchers" (a .NET ``List<>`` left uninitialised)."""
    if value is None or value == {} or (isinstance(value, str) and not value.strip()):
        return []
    return value


def _no_vouchers_as_none(value: Any) -> Any:
    """For the ticket notice's voucher object: ``null``, ``""`` and ``[]`` mean none."""
    if value is None or value == [] or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _not_a_bool(value: Any) -> Any:
    """``true`` is not an order id or a count (pydantic's lax mode would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


VoucherCodes = Annotated[list[Str], BeforeValidator(_no_vouchers_as_empty_list)]
NoticeInt32 = Annotated[Int32, BeforeValidator(_not_a_bool)]
NoticeInt64 = Annotated[Int64, BeforeValidator(_not_a_bool)]
OptNoticeInt32 = Annotated[NoticeInt32 | None, BeforeValidator(blank_to_none)]


class NotifyHeader(SupplierModel):
    partner_id: int = Field(alias="PartnerId")
    notify_service_name: Str = Field(alias="NotifyServiceName")


class Notification(SupplierModel):
    """The callback envelope. ``OrderNotifyBody`` may be a JSON string or an object."""

    header: NotifyHeader = Field(alias="OrderNotifyHeader")
    body: dict[str, Any] = Field(alias="OrderNotifyBody")

    @model_validator(mode="before")
    @classmethod
    def _decode_body(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in list(data):
                if str(key).lower() == "ordernotifybody" and isinstance(data[key], str):
                    data[key] = loads_notice_json(data[key])
        return data


class ProductNotice(SupplierModel):
    """``order_product_notify``: Status 0 off shelf, 1 on shelf, 2 details changed, 3 prices changed."""

    product_id: NoticeInt64 = Field(alias="ProductId")
    status: Annotated[Literal[0, 1, 2, 3], BeforeValidator(_not_a_bool)] = Field(alias="Status")


class TicketVouchers(SupplierModel):
    order_voucher_code: OptStr = Field(default=None, alias="OrderVoucherCode")
    order_user_vouchers: Annotated[
        list[UserVoucher], BeforeValidator(_no_vouchers_as_empty_list)
    ] = Field(default_factory=list, alias="OrderUserVouchers")


class TicketNotice(SupplierModel):
    """``order_ticket_notify``: tickets issued (TicketStatus 1) or failed (2)."""

    origin_order_id: OptStr = Field(default=None, alias="OriginOrderId")
    order_id: NoticeInt64 = Field(alias="OrderId")
    voucher_code: Annotated[TicketVouchers | None, BeforeValidator(_no_vouchers_as_none)] = Field(
        default=None, alias="VoucherCode"
    )
    ticket_status: NoticeInt32 = Field(alias="TicketStatus")


class RedemptionNotice(SupplierModel):
    """``order_verify_notify``: tickets redeemed at the gate."""

    ticket_status: OptNoticeInt32 = Field(default=None, alias="TicketStatus")
    origin_order_id: OptStr = Field(default=None, alias="OriginOrderId")
    order_id: NoticeInt64 = Field(alias="OrderId")
    voucher_code: VoucherCodes = Field(default_factory=list, alias="VoucherCode")
    order_total: NoticeInt32 = Field(alias="OrderTotal", ge=0)
    checked_number: NoticeInt32 = Field(alias="CheckedNumber", ge=0)
    voucher_type: OptNoticeInt32 = Field(default=None, alias="VoucherType")

    @model_validator(mode="after")
    def _plausible(self) -> RedemptionNotice:
        # Counts are checked here, before anything reaches the ledger (which never lowers them).
        if self.order_total < 0 or self.checked_number < 0:
            raise ValueError("OrderTotal and CheckedNumber must not be negative")
        if self.checked_number > self.order_total:
            raise ValueError("CheckedNumber is greater than OrderTotal")
        return self


class RefundNotice(SupplierModel):
    """``order_refund_notify``: a refund reviewed; empty ``RefundApplyNo`` = not one we applied for."""

    order_id: NoticeInt64 = Field(alias="OrderId")
    refund_apply_no: OptStr = Field(default=None, alias="RefundApplyNo")
    refund_status: NoticeInt32 = Field(alias="RefundStatus")  # 1 approved, 2 rejected
    refund_reason: OptStr = Field(default=None, alias="RefundReason")
    voucher_code: VoucherCodes = Field(default_factory=list, alias="VoucherCode")

    @property
    def is_supplier_forced(self) -> bool:
        return not (self.refund_apply_no or "").strip()


NOTICE_MODELS: dict[str, type[SupplierModel]] = {
    "order_product_notify": ProductNotice,
    "order_ticket_notify": TicketNotice,
    "order_verify_notify": RedemptionNotice,
    "order_refund_notify": RefundNotice,
}
