"""The supplier API's answers and requests (1.1.1 - 1.1.8), as validated pydantic models.

Tolerant of the contract's lawful variations: keys in any case (PascalCase or camelCase),
``TotoalStock`` or ``TotalStock``, nulls and empty strings for optional values, ``null`` for
any list, money as ``Decimal`` (parse JSON with ``parse_float=Decimal``), dates as
``yyyy-MM-dd``, ``yyyy-MM-dd HH:mm:ss``, ``yyyy/M/d H:mm:ss`` (.NET) or ISO 8601 with ``T``,
``ProductSeats`` in ``Data`` or inside each price rule (merged, each SeatsCode and Time once),
negative stock or counts read as 0 (logged as drift). Outgoing requests serialize by alias.

Only what the sync cannot do without (ProductId, Version, ProductStatus, ProductName, prices,
rule dates) fails a product or a calendar. Informational product fields that do not parse are
read as None (a date-time keeps its text) and stay in the raw payload: they never quarantine.

Incoming values are bounded by the columns that store them (string lengths, 32- and 64-bit
integers, money as ``Numeric(12, 2)``): a value the database would refuse fails validation
here, so one bad product is quarantined and one bad calendar fails one refresh, instead of a
database error aborting a whole page or batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    model_validator,
)
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from models.limits import NAME_TEXT, SHORT_TEXT, TIME_TEXT
from worker.supplier import canonical
from worker.supplier.contract import ShelfStatus, casefold_key
from worker.supplier.fields import (
    Count,
    InfoDateTime,
    InfoInt32,
    InfoInt64,
    InfoStr,
    InfoTime,
    Int32,
    Int64,
    Money,
    OptCount,
    OptDate,
    OptInt,
    OptMoney,
    OptStr,
    OutgoingModel,
    ReqDate,
    Str,
    SupplierModel,
)

# --- 1.1.1 products -------------------------------------------------------------------------


class Product(SupplierModel):
    """One authorized product (1.1.1). Field comments follow CONTRACT.md."""

    _extra_aliases: ClassVar[dict[str, str]] = {"TotalStock": "TotoalStock"}

    product_id: Int64 = Field(alias="ProductId")
    version: Int32 = Field(alias="Version")  # a change marker, not an order (CONTRACT.md)
    product_code: InfoStr = Field(default=None, alias="ProductCode")
    is_ticket: InfoInt32 = Field(default=None, alias="IsTicket")  # 1 must exchange for a ticket
    ticket_get_address: InfoStr = Field(default=None, alias="TicketGetAddress")
    product_name: Str = Field(alias="ProductName", max_length=NAME_TEXT)
    product_desc: InfoStr = Field(default=None, alias="ProductDesc")
    entrance_mode: InfoInt32 = Field(default=None, alias="EntranceMode")  # 0 order, 1 visitor
    product_kind: InfoStr = Field(default=None, alias="ProductKind")
    adult_number: OptCount = Field(default=None, alias="AdultNumber")
    child_number: OptCount = Field(default=None, alias="ChildNumber")
    max_number_by_order: OptCount = Field(default=None, alias="MaxNumberByOrder")  # 0 unlimited
    max_number_by_mobile: OptCount = Field(default=None, alias="MaxNumberByMobile")
    limit_day_by_mobile: OptCount = Field(default=None, alias="LimitDayByMobile")
    max_number_by_card_id: OptCount = Field(default=None, alias="MaxNumberByCardID")
    limit_day_by_card_id: OptCount = Field(default=None, alias="LimitDayByCardID")
    customer_set: InfoInt32 = Field(default=None, alias="CustomerSet")  # 1 info needed, 2 not
    total_stock: OptCount = Field(default=None, alias="TotoalStock")  # sic; 0 unlimited
    product_status: Int32 = Field(alias="ProductStatus")  # 0 off shelf, 1 on shelf
    refund_set: InfoInt32 = Field(default=None, alias="RefundSet")  # 0 no refunds, 1 free
    scenic_spots: InfoStr = Field(default=None, alias="ScenicSpots")
    scenic_id: InfoInt64 = Field(default=None, alias="ScenicId")
    out_id: InfoStr = Field(default=None, alias="OutId")
    min_age: InfoInt32 = Field(default=None, alias="MinAge")
    max_age: InfoInt32 = Field(default=None, alias="MaxAge")
    effective_time_mode: InfoInt32 = Field(default=None, alias="EffectiveTimeMode")
    effective_time: InfoInt32 = Field(default=None, alias="EffectiveTime")
    become_effective_time: InfoInt32 = Field(default=None, alias="BecomeEffectiveTime")
    begin_effective_time: InfoDateTime = Field(default=None, alias="BeginEffectiveTime")
    end_effective_time: InfoDateTime = Field(default=None, alias="EndEffectiveTime")
    booking_time: InfoTime = Field(default=None, alias="BookingTime")  # HH:mm, latest booking

    @model_validator(mode="after")
    def _fit_columns(self) -> Product:
        """Informational text longer than its column is cut, not refused."""
        limits = {
            "product_code": SHORT_TEXT,
            "product_kind": SHORT_TEXT,
            "scenic_spots": NAME_TEXT,
            "out_id": SHORT_TEXT,
        }
        for name, limit in limits.items():
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                object.__setattr__(self, name, value[:limit])
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _canonical_first(cls, data: Any, handler: ModelWrapValidatorHandler[Product]) -> Product:
        """An entry in the plain form goes through ``worker.supplier.canonical`` (same result, a
        fraction of the CPU: validation was most of a new product's cost in a pass); anything
        else, or anything it refuses, through the fields above."""
        product: Product | None = canonical.plain(_CANONICAL_PRODUCTS, _product_style(data), data)
        return handler(data) if product is None else product

    @property
    def is_on_shelf(self) -> bool:
        return self.product_status == ShelfStatus.ON_SHELF


def _product_style(data: Any) -> canonical.KeyStyle | None:
    """Which key style a product entry's own keys are in, when one of the canonical ones."""
    if not isinstance(data, dict):
        return None
    if "ProductId" in data:
        return "pascal"
    if "productId" in data:
        return "camel"
    return None


def _canonical_product(style: canonical.KeyStyle) -> SchemaValidator:
    """The lane's text bounds are ``_fit_columns``' limits: longer text, which the lenient model
    cuts, is refused here and left to it."""
    info_int32, count = canonical.optional(canonical.INT32), canonical.optional(canonical.COUNT)
    info_text = canonical.optional(canonical.text())
    product = canonical.model(
        Product,
        {
            "product_id": canonical.INT64,
            "version": canonical.INT32,
            "product_code": canonical.optional(canonical.text(SHORT_TEXT)),
            "is_ticket": info_int32,
            "ticket_get_address": info_text,
            "product_name": canonical.text(NAME_TEXT),
            "product_desc": info_text,
            "entrance_mode": info_int32,
            "product_kind": canonical.optional(canonical.text(SHORT_TEXT)),
            "adult_number": count,
            "child_number": count,
            "max_number_by_order": count,
            "max_number_by_mobile": count,
            "limit_day_by_mobile": count,
            "max_number_by_card_id": count,
            "limit_day_by_card_id": count,
            "customer_set": info_int32,
            "total_stock": count,
            "product_status": canonical.INT32,
            "refund_set": info_int32,
            "scenic_spots": canonical.optional(canonical.text(NAME_TEXT)),
            "scenic_id": canonical.optional(canonical.INT64),
            "out_id": canonical.optional(canonical.text(SHORT_TEXT)),
            "min_age": info_int32,
            "max_age": info_int32,
            "effective_time_mode": info_int32,
            "effective_time": info_int32,
            "become_effective_time": info_int32,
            "begin_effective_time": canonical.INFO_DATETIME,
            "end_effective_time": canonical.INFO_DATETIME,
            "booking_time": canonical.INFO_TIME,
        },
        style,
    )
    return canonical.validator(product, (Product,))


_CANONICAL_PRODUCTS = {style: _canonical_product(style) for style in canonical.STYLES}


class InvalidProduct(BaseModel):
    """A product entry that failed validation: kept raw, with the error, for quarantine."""

    model_config = ConfigDict(frozen=True)

    product_id: int | None
    raw: dict[str, Any] | Any
    error: str


@dataclass(frozen=True, eq=False)
class ProductPage:
    """One page of 1.1.1 as received: its entries, each validated only when asked for.

    ``products``, ``invalid`` and ``raw_by_id`` validate every entry (once). A pass that holds
    an entry byte for byte already reads only the others, with ``read_entry``: validating a
    page is most of what a pass over an unchanged catalog costs.
    """

    page_index: int
    page_size: int
    total_count: int
    entries: list[Any]
    read_entry: Callable[[Any], Product | InvalidProduct] = field(repr=False)
    fetched_at: datetime | None = None  # when its request started (one clock: worker.clock)

    @cached_property
    def _read(self) -> list[Product | InvalidProduct]:
        return [self.read_entry(item) for item in self.entries]

    @property
    def products(self) -> list[Product]:
        return [entry for entry in self._read if isinstance(entry, Product)]

    @property
    def invalid(self) -> list[InvalidProduct]:
        return [entry for entry in self._read if isinstance(entry, InvalidProduct)]

    @property
    def raw_by_id(self) -> dict[int, dict[str, Any]]:
        """Each valid product's entry as received, by ProductId (the last one of an id wins)."""
        return {
            entry.product_id: item
            for entry, item in zip(self._read, self.entries, strict=True)
            if isinstance(entry, Product)
        }

    @property
    def size(self) -> int:
        return len(self.entries)


# --- 1.1.2 price calendar -----------------------------------------------------------------


class PriceRule(SupplierModel):
    """A raw price rule (1.1.2). Rules overlap; see CONTRACT.md for the precedence."""

    daily_stock: Count = Field(alias="DailyStock")  # 0 unlimited; negative read as 0
    market_price: Money = Field(alias="MarketPrice")
    price: Money = Field(alias="Price")  # the distributor's cost
    sale_price: Money = Field(alias="SalePrice")
    booking_day: Count = Field(default=0, alias="BookingDay")  # 0 no limit
    begin_time: ReqDate = Field(alias="BeginTime")
    end_time: OptDate = Field(default=None, alias="EndTime")
    price_type: Literal[1, 2, 3] = Field(
        alias="PriceType"
    )  # 1 range, 2 specific date, 3 open-ended


class Seat(SupplierModel):
    """A timed session (场次)."""

    time: ReqDate = Field(alias="Time")
    seats_start_time: Str = Field(alias="SeatsStartTime", max_length=TIME_TEXT)
    seats_end_time: Str = Field(alias="SeatsEndTime", max_length=TIME_TEXT)
    seats_code: Str = Field(alias="SeatsCode", max_length=SHORT_TEXT)
    seats_num: Count = Field(default=0, alias="SeatsNum")


class PriceCalendar(SupplierModel):
    """Data of 1.1.2: the raw rules and the sessions.

    ``ProductSeats`` may sit in ``Data``, inside each rule, or both: all are merged in the
    order met (Data first), each ``SeatsCode`` and ``Time`` once.
    """

    daily_price_stock: list[PriceRule] = Field(default_factory=list, alias="DailyPriceStock")
    product_seats: list[Seat] = Field(default_factory=list, alias="ProductSeats")

    @model_validator(mode="before")
    @classmethod
    def _null_lists(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: ([] if v is None else v) for k, v in data.items()}
        rules_key = casefold_key(data, "DailyPriceStock")
        seats_key = casefold_key(data, "ProductSeats") or "ProductSeats"
        rules = data.get(rules_key) if rules_key is not None else None
        if isinstance(rules, list):
            nested: list[Any] = []
            for rule in rules:
                if isinstance(rule, dict):
                    for key, value in rule.items():
                        if str(key).lower() == "productseats" and isinstance(value, list):
                            nested.extend(value)
            if nested:
                held = data.get(seats_key)
                data[seats_key] = [*(held if isinstance(held, list) else []), *nested]
        return data

    @model_validator(mode="after")
    def _distinct_seats(self) -> PriceCalendar:
        return _distinct_seats(self)

    @model_validator(mode="wrap")
    @classmethod
    def _canonical_first(
        cls, data: Any, handler: ModelWrapValidatorHandler[PriceCalendar]
    ) -> PriceCalendar:
        """A calendar in the plain form goes through ``worker.supplier.canonical`` (same result,
        a fraction of the CPU); anything else, or anything it refuses, through the fields above."""
        calendar: PriceCalendar | None = canonical.plain(
            _CANONICAL_CALENDARS, _calendar_style(data), data
        )
        return handler(data) if calendar is None else _distinct_seats(calendar)


def _distinct_seats(calendar: PriceCalendar) -> PriceCalendar:
    """Each ``SeatsCode`` and ``Time`` once, the first met."""
    seen: set[tuple[str, date]] = set()
    distinct: list[Seat] = []
    for seat in calendar.product_seats:
        key = (seat.seats_code, seat.time)
        if key not in seen:
            seen.add(key)
            distinct.append(seat)
    if len(distinct) != len(calendar.product_seats):
        object.__setattr__(calendar, "product_seats", distinct)
    return calendar


def _calendar_style(data: Any) -> canonical.KeyStyle | None:
    """Which key style a calendar's own keys are in, when one of the canonical ones."""
    if not isinstance(data, dict):
        return None
    if "DailyPriceStock" in data or "ProductSeats" in data:
        return "pascal"
    if "dailyPriceStock" in data or "productSeats" in data:
        return "camel"
    return None


def _canonical_calendar(style: canonical.KeyStyle) -> SchemaValidator:
    rule = canonical.model(
        PriceRule,
        {
            "daily_stock": canonical.COUNT,
            "market_price": canonical.MONEY,
            "price": canonical.MONEY,
            "sale_price": canonical.MONEY,
            "booking_day": canonical.COUNT,
            "begin_time": canonical.DATE,
            "end_time": canonical.OPT_DATE,
            "price_type": canonical.PRICE_TYPE,
        },
        style,
    )
    seat = canonical.model(
        Seat,
        {
            "time": canonical.DATE,
            "seats_start_time": canonical.text(TIME_TEXT),
            "seats_end_time": canonical.text(TIME_TEXT),
            "seats_code": canonical.text(SHORT_TEXT),
            "seats_num": canonical.COUNT,
        },
        style,
    )
    calendar = canonical.model(
        PriceCalendar,
        {"daily_price_stock": cs.list_schema(rule), "product_seats": cs.list_schema(seat)},
        style,
    )
    return canonical.validator(calendar, (PriceCalendar, PriceRule, Seat))


_CANONICAL_CALENDARS = {style: _canonical_calendar(style) for style in canonical.STYLES}


# --- 1.1.3 - 1.1.8 orders --------------------------------------------------------------------


class Passenger(OutgoingModel):
    """A visitor in an order pre-check (1.1.3)."""

    user_name: str = Field(alias="UserName")
    mobile: str = Field(alias="Mobile", repr=False)
    card_id: str = Field(alias="CardID", repr=False)
    card_type: int | None = Field(default=None, alias="CardType")


class VerifyOrderRequest(OutgoingModel):
    product_id: int = Field(alias="ProductId")
    visit_date: date = Field(alias="VisitDate")
    order_users: list[Passenger] = Field(alias="OrderUsers")
    product_item_name: str | None = Field(default=None, alias="ProductItemName")
    begin_play_time: str | None = Field(default=None, alias="BeginPlayTime")
    end_play_time: str | None = Field(default=None, alias="EndPlayTime")


class Person(OutgoingModel):
    """A contact or visitor in an order (1.1.4)."""

    name: str = Field(alias="Name")
    mobile: str = Field(alias="Mobile", repr=False)
    id_card: str = Field(alias="IdCard", repr=False)
    id_card_type: int | None = Field(default=None, alias="IDCardType")
    memo: str | None = Field(default=None, alias="Memo")


class CreateOrderRequest(OutgoingModel):
    origin_order_id: str = Field(alias="OriginOrderId")
    contact_person: Person = Field(alias="ContactPerson")
    product_id: int = Field(alias="ProductId")
    order_quantity: int = Field(alias="OrderQuantity", ge=1)
    visit_date: date = Field(alias="VisitDate")
    visit_person: list[Person] | None = Field(default=None, alias="VisitPerson")
    begin_play_time: str | None = Field(default=None, alias="BeginPlayTime")
    end_play_time: str | None = Field(default=None, alias="EndPlayTime")
    order_remark: str | None = Field(default=None, alias="OrderRemark")


class CreateOrderResult(SupplierModel):
    origin_order_id: Str = Field(alias="OriginOrderId")
    distributor_id: OptInt = Field(default=None, alias="DistributorId")
    order_id: int = Field(alias="OrderId")
    order_status: int = Field(alias="OrderStatus")


class PayOrderRequest(OutgoingModel):
    order_id: int = Field(alias="OrderId")
    unit_price: Decimal | None = Field(default=None, alias="UnitPrice")
    eticket_no: str | None = Field(default=None, alias="EticketNo")
    ticket_count: int | None = Field(default=None, alias="TicketCount")

    def to_wire(self) -> dict[str, Any]:
        """``UnitPrice`` stays a Decimal: ``wire_json`` writes it as a JSON number, exactly."""
        wire = super().to_wire()
        if self.unit_price is not None:
            wire["UnitPrice"] = self.unit_price
        return wire


def wire_json(wire: dict[str, Any]) -> bytes:
    """The JSON text of an outgoing body; a Decimal is a JSON number with its exact decimal text
    (1.1.5 types ``UnitPrice`` as a decimal number: a string is refused by a strict binder)."""
    numbers: dict[str, str] = {}

    def swap(value: Any) -> Any:
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError("a money amount must be finite")
            token = f"@@decimal-{len(numbers)}-{id(numbers)}@@"
            numbers[json.dumps(token)] = format(value, "f")
            return token
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    text = json.dumps(swap(wire), ensure_ascii=False)
    for token, number in numbers.items():
        text = text.replace(token, number)
    return text.encode()


class UserVoucher(SupplierModel):
    """A per-visitor entry voucher."""

    id_card_no: OptStr = Field(default=None, alias="IDCardNo", repr=False)
    voucher_code: Str = Field(alias="VoucherCode")
    mobile: OptStr = Field(default=None, alias="Mobile", repr=False)


class PayOrderResult(SupplierModel):
    voucher_code: OptStr = Field(default=None, alias="VoucherCode")
    order_user_vouchers: list[UserVoucher] = Field(default_factory=list, alias="OrderUserVouchers")
    order_status: int = Field(alias="OrderStatus")
    pay_money: OptMoney = Field(default=None, alias="PayMoney")

    @model_validator(mode="before")
    @classmethod
    def _null_list(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                k: ([] if v is None and k.lower() == "orderuservouchers" else v)
                for k, v in data.items()
            }
        return data


class PersonQrCode(SupplierModel):
    name: OptStr = Field(default=None, alias="Name")
    qr_code: Str = Field(alias="QrCode")


class RefundRequest(OutgoingModel):
    order_id: int = Field(alias="OrderId")
    refund_count: int = Field(alias="RefundCount", ge=1)
    refund_id: str = Field(alias="RefundId")
    voucher_code: list[str] | None = Field(default=None, alias="VoucherCode")


class RefundResult(SupplierModel):
    apply_id: Str = Field(alias="ApplyId")
    refund_status: int = Field(alias="RefundStatus")  # 0 pending, 1 approved, 2 rejected
