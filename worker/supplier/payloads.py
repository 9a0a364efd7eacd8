"""Every payload crossing the supplier boundary, as validated pydantic models.

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
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

log = logging.getLogger(__name__)

# yyyy-MM-dd, yyyy/M/d, with an optional time (space or T), fraction and offset.
_DATE_TIME = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def parse_supplier_datetime(text: str) -> datetime:
    """Any date form the contract allows, as written (a date alone is midnight); ValueError else."""
    match = _DATE_TIME.match(text.strip())
    if match is None:
        raise ValueError(f"not a supplier date: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    tz = None
    if offset:
        if offset == "Z":
            tz = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micro,
        tzinfo=tz,
    )


def _parse_date(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        return parse_supplier_datetime(value).date()
    if isinstance(value, datetime):
        return value.date()
    return value


def _parse_datetime(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        return parse_supplier_datetime(value)
    return value


_negatives: ContextVar[list[int] | None] = ContextVar("negatives", default=None)


@contextmanager
def negatives_read_as_zero() -> Iterator[list[int]]:
    """Collect the negative values read as 0 while validating, so the caller logs them once,
    naming the product, instead of one line per value."""
    found: list[int] = []
    token = _negatives.set(found)
    try:
        yield found
    finally:
        _negatives.reset(token)


def _not_negative(value: Any) -> Any:
    """A negative stock or count means nothing the contract defines: read as 0, logged as drift."""
    value = _blank_to_none(value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        return value
    if number < 0 and not isinstance(value, bool):
        sink = _negatives.get()
        if sink is None:
            log.warning("drift: negative stock or count %s read as 0", number)
        else:
            sink.append(number)
        return 0
    return value


def _informational(
    fallback: Any,
) -> WrapValidator:
    """A field the sync can do without: when it does not parse, ``fallback(value)`` instead."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except (ValidationError, ValueError, TypeError):
            return fallback(value)

    return WrapValidator(validate)


def _none(_: Any) -> None:
    return None


def _raw_text(value: Any) -> str | None:
    """An unparsed date kept as the text it came as (clipped to its column)."""
    if value is None:
        return None
    text = str(value).strip()
    return text[:DATETIME_TEXT] or None


def _storable_datetime(value: datetime | None) -> datetime | None:
    """Fits the ``String(32)`` column its ISO 8601 text is kept in."""
    if value is not None and len(value.isoformat()) > DATETIME_TEXT:
        raise ValueError(f"date and time longer than {DATETIME_TEXT} characters as ISO 8601")
    return value


def _parse_time_of_day(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, str):
        return datetime.strptime(value.strip()[:5], "%H:%M").time()
    return value


def _money(value: Any) -> Any:
    value = _blank_to_none(value)
    if isinstance(value, float):
        # A float here means someone parsed JSON without parse_float=Decimal; repr is exact enough
        # for 2-decimal prices, Decimal(float) would not be.
        return Decimal(repr(value))
    return value


def _storable_money(value: Decimal) -> Decimal:
    """Fits ``Numeric(12, 2)``: finite, under 1e10, at most two decimals once normalized."""
    if not value.is_finite() or abs(value) >= MONEY_LIMIT:
        raise ValueError(f"money must be finite and below {MONEY_LIMIT:,}")
    if value != value.quantize(CENT):
        raise ValueError("money must have at most two decimals")
    return value


def _to_str(value: Any) -> Any:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


# What the columns hold: Integer, BigInteger, Numeric(12, 2).
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MONEY_LIMIT = Decimal(10) ** 10
CENT = Decimal("0.01")
# String column lengths (models.catalog).
SHORT_TEXT = 255
NAME_TEXT = 500
TIME_TEXT = 8
DATETIME_TEXT = 32

OptDate = Annotated[date | None, BeforeValidator(_parse_date)]
ReqDate = Annotated[date, BeforeValidator(_parse_date)]
OptDateTime = Annotated[
    datetime | None, BeforeValidator(_parse_datetime), AfterValidator(_storable_datetime)
]
OptTime = Annotated[time | None, BeforeValidator(_parse_time_of_day)]
Money = Annotated[Decimal, BeforeValidator(_money), AfterValidator(_storable_money)]
# Unbounded: an order's PayMoney must be read back whatever it is, after the payment is made.
OptMoney = Annotated[Decimal | None, BeforeValidator(_money)]
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
OptInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
OptInt32 = Annotated[Int32 | None, BeforeValidator(_blank_to_none)]
OptInt64 = Annotated[Int64 | None, BeforeValidator(_blank_to_none)]
OptStr = Annotated[str | None, BeforeValidator(_to_str)]
Str = Annotated[str, BeforeValidator(_to_str)]
# Informational product fields: never a reason to quarantine.
InfoInt32 = Annotated[OptInt32, _informational(_none)]
InfoInt64 = Annotated[OptInt64, _informational(_none)]
InfoStr = Annotated[OptStr, _informational(_none)]
InfoTime = Annotated[OptTime, _informational(_none)]
# A date-time that does not parse keeps its text (the column holds text).
InfoDateTime = Annotated[
    datetime | str | None,
    BeforeValidator(_parse_datetime),
    AfterValidator(_storable_datetime),
    _informational(_raw_text),
]
Count = Annotated[Int32, BeforeValidator(_not_negative)]
OptCount = Annotated[Int32 | None, BeforeValidator(_not_negative), _informational(_none)]


class SupplierModel(BaseModel):
    """Incoming model: keys matched case-insensitively against the PascalCase aliases."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")
    _extra_aliases: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        canonical: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            canonical[alias.lower()] = alias
            canonical[name.lower()] = alias
        canonical.update({k.lower(): v for k, v in cls._extra_aliases.items()})
        folded: dict[str, Any] = {}
        for key, value in data.items():
            target = canonical.get(str(key).lower(), str(key))
            if target not in folded or folded[target] is None:
                folded[target] = value
        return folded


class OutgoingModel(BaseModel):
    """Outgoing request body: built with snake_case names, sent with the contract's keys."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


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

    @property
    def is_on_shelf(self) -> bool:
        return self.product_status == 1


class InvalidProduct(BaseModel):
    """A product entry that failed validation: kept raw, with the error, for quarantine."""

    model_config = ConfigDict(frozen=True)

    product_id: int | None
    raw: dict[str, Any] | Any
    error: str


class ProductPage(BaseModel):
    """One page of 1.1.1 as received."""

    model_config = ConfigDict(frozen=True)

    page_index: int
    page_size: int
    total_count: int
    products: list[Product]
    invalid: list[InvalidProduct]
    raw_by_id: dict[int, dict[str, Any]]
    fetched_at: datetime | None = None  # when its request started (one clock: worker.clock)

    @property
    def size(self) -> int:
        return len(self.products) + len(self.invalid)


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
        rules_key = next((k for k in data if str(k).lower() == "dailypricestock"), None)
        seats_key = next((k for k in data if str(k).lower() == "productseats"), "ProductSeats")
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
        seen: set[tuple[str, date]] = set()
        distinct: list[Seat] = []
        for seat in self.product_seats:
            key = (seat.seats_code, seat.time)
            if key not in seen:
                seen.add(key)
                distinct.append(seat)
        if len(distinct) != len(self.product_seats):
            object.__setattr__(self, "product_seats", distinct)
        return self


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
OptNoticeInt32 = Annotated[NoticeInt32 | None, BeforeValidator(_blank_to_none)]


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
