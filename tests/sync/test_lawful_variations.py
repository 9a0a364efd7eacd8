"""Property: any lawful way of writing a product or a calendar parses, and resolves like the oracle.

The variations (key case, date forms, null lists, sessions in the rules or in Data or both,
unlimited stock sent as -1) are produced by the sandbox's own quirks, and the expected calendar
by the sandbox's oracle over the canonical rules: neither shares code with the parser or the
resolver under test.
"""

from __future__ import annotations

import datetime
import json
import random
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from supplier_sandbox.envelope import camelize, dumps
from supplier_sandbox.oracle import resolve_calendar as oracle_calendar
from supplier_sandbox.pricing import PriceRule as TruthRule
from supplier_sandbox.quirks import SHAPE_QUIRKS, dotnet_date, price_data
from supplier_sandbox.seats import Seat as TruthSeat
from worker.supplier.payloads import PriceCalendar, Product
from worker.sync.calendar import resolve_calendar

START = datetime.date(2026, 7, 1)
WINDOW = 40
END = START + datetime.timedelta(days=WINDOW - 1)

days = st.integers(min_value=-10, max_value=WINDOW + 10).map(
    lambda n: START + datetime.timedelta(days=n)
)
cents = st.integers(min_value=1, max_value=10**7).map(lambda n: Decimal(n).scaleb(-2))


@st.composite
def truth_rules(draw: st.DrawFn) -> TruthRule:
    price_type = draw(st.sampled_from((1, 2, 3)))
    begin = draw(days)
    span = draw(st.integers(min_value=0, max_value=30))
    end: datetime.date | None = begin + datetime.timedelta(days=span)
    if price_type == 3:
        end = draw(st.sampled_from((None, end)))
    return TruthRule(
        price_type=price_type,
        begin=begin,
        end=end,
        price=draw(cents),
        sale_price=draw(cents),
        market_price=draw(cents),
        daily_stock=draw(st.sampled_from((0, 0, 1, 50, 999))),
        booking_day=draw(st.integers(min_value=0, max_value=3)),
        blank_end_as_empty=draw(st.booleans()),
    )


@st.composite
def truth_seats(draw: st.DrawFn) -> list[TruthSeat]:
    chosen = draw(st.lists(days, max_size=6, unique=True))
    return [
        TruthSeat(1, day, "09:00", "10:30", f"S1-{day:%Y%m%d}-01", draw(st.integers(0, 300)))
        for day in chosen
    ]


def _recase(value: Any, style: int) -> Any:
    """Keys in another case: 0 as sent, 1 camelCase (.NET), 2 lower, 3 upper."""
    if style == 1:
        return camelize(value)
    if isinstance(value, dict):
        return {
            (k.lower() if style == 2 else k.upper()) if style else k: _recase(v, style)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_recase(item, style) for item in value]
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(truth_rules(), max_size=6),
    seats=truth_seats(),
    quirks=st.sets(st.sampled_from(SHAPE_QUIRKS)),
    style=st.integers(min_value=0, max_value=3),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_any_lawful_calendar_resolves_like_the_oracle(
    rules: list[TruthRule], seats: list[TruthSeat], quirks: set[str], style: int, seed: int
) -> None:
    data = price_data(
        [rule.to_payload() for rule in rules],
        [seat.to_payload() for seat in seats],
        frozenset(quirks),
        random.Random(seed),
    )
    wire = json.loads(dumps(_recase(data, style)), parse_float=Decimal)

    calendar = PriceCalendar.model_validate(wire)

    resolved = [
        (d.day, d.price, d.sale_price, d.market_price, d.stock, d.booking_days)
        for d in resolve_calendar(calendar.daily_price_stock, START, END)
    ]
    expected = [
        (d.date, d.price, d.sale_price, d.market_price, d.stock, d.booking_days)
        for d in oracle_calendar(rules, START, END)
    ]
    assert resolved == expected
    assert sorted(
        (s.time, s.seats_start_time, s.seats_end_time, s.seats_code, s.seats_num)
        for s in calendar.product_seats
    ) == sorted((s.day, s.start, s.end, s.code, s.capacity) for s in seats)


junk = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
)
INFORMATIONAL = (
    "ProductCode",
    "IsTicket",
    "TicketGetAddress",
    "ProductDesc",
    "EntranceMode",
    "ProductKind",
    "AdultNumber",
    "ChildNumber",
    "MaxNumberByOrder",
    "MaxNumberByMobile",
    "LimitDayByMobile",
    "MaxNumberByCardID",
    "LimitDayByCardID",
    "CustomerSet",
    "TotoalStock",
    "RefundSet",
    "ScenicSpots",
    "ScenicId",
    "OutId",
    "MinAge",
    "MaxAge",
    "EffectiveTimeMode",
    "EffectiveTime",
    "BecomeEffectiveTime",
    "BeginEffectiveTime",
    "EndEffectiveTime",
    "BookingTime",
)


@settings(max_examples=200, deadline=None)
@given(
    fields=st.dictionaries(st.sampled_from(INFORMATIONAL), junk),
    version=st.integers(min_value=-5, max_value=2**31 - 1),
    style=st.integers(min_value=0, max_value=3),
)
def test_informational_fields_never_quarantine_a_product(
    fields: dict[str, Any], version: int, style: int
) -> None:
    payload = {
        "ProductId": 7,
        "Version": version,
        "ProductName": "票",
        "ProductStatus": 1,
        **fields,
    }
    product = Product.model_validate(_recase(payload, style))
    assert (product.product_id, product.version, product.product_status) == (7, version, 1)


@settings(max_examples=100, deadline=None)
@given(
    day=days,
    variant=st.integers(min_value=0, max_value=7),
    hour=st.integers(0, 23),
    required=st.sampled_from(("ProductId", "Version", "ProductStatus")),
    bad=st.one_of(st.none(), st.text(alphabet="abcxyz", min_size=1, max_size=5)),
)
def test_dates_parse_in_every_lawful_form_and_required_fields_quarantine(
    day: datetime.date, variant: int, hour: int, required: str, bad: Any
) -> None:
    written = dotnet_date(day, variant).replace(" 0:00:00", f" {hour}:00:00")
    product = Product.model_validate(
        {"ProductId": 1, "Version": 0, "ProductName": "x", "ProductStatus": 1,
         "EndEffectiveTime": written}
    )  # fmt: skip
    assert isinstance(product.end_effective_time, datetime.datetime)
    assert product.end_effective_time.date() == day
    broken = {"ProductId": 1, "Version": 0, "ProductName": "x", "ProductStatus": 1, required: bad}
    try:
        Product.model_validate(broken)
    except ValidationError:
        return  # the quarantine path
    raise AssertionError(f"{required}={bad!r} should not validate")
