"""The content hash of a calendar is pinned: stored hashes are compared with new ones, so the
same calendar must hash to the same text forever (a different hash would rewrite every stored
calendar and flood the change feed).

The literal hashes below were computed by the first implementation (rules and sessions dumped
with pydantic in JSON mode, ``json.dumps(sort_keys=True)``, sha256); ``_reference_hash`` is that
implementation, kept here as the oracle for random calendars.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from worker.supplier.fields import negatives_read_as_zero
from worker.supplier.payloads import PriceCalendar, PriceRule, Seat
from worker.sync.calendar import resolve_calendar
from worker.sync.price_plan import price_content

D = date(2026, 7, 1)
T = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)
_RULES = TypeAdapter(list[PriceRule])
_SEATS = TypeAdapter(list[Seat])


def _reference_hash(calendar: PriceCalendar, start: date, end: date) -> str:
    """The content hash as first written; every later implementation must agree with it."""
    days = resolve_calendar(calendar.daily_price_stock, start, end)
    seats = [seat for seat in calendar.product_seats if start <= seat.time <= end]
    body = {
        "rules": _RULES.dump_python(calendar.daily_price_stock, mode="json"),
        "days": [[day.day.isoformat(), *(str(part) for part in day[1:])] for day in days],
        "seats": _SEATS.dump_python(seats, mode="json"),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def rule(price_type: int, begin: str, end: str | None, price: Any, **extra: Any) -> dict[str, Any]:
    return {
        "PriceType": price_type,
        "BeginTime": begin,
        "EndTime": end,
        "Price": price,
        "SalePrice": extra.get("sale", price),
        "MarketPrice": extra.get("market", price),
        "DailyStock": extra.get("stock", 10),
        "BookingDay": extra.get("booking", 0),
        **({"ProductSeats": extra["seats"]} if "seats" in extra else {}),
    }


def seat(
    day: str, code: str, start: str = "09:00", end: str = "10:30", num: Any = 50
) -> dict[str, Any]:
    return {
        "Time": day,
        "SeatsStartTime": start,
        "SeatsEndTime": end,
        "SeatsCode": code,
        "SeatsNum": num,
    }


CALENDARS: dict[str, tuple[dict[str, Any], str]] = {
    "empty": (
        {"DailyPriceStock": [], "ProductSeats": []},
        "6ae4524b3c708f81be2a3fb2325eb7374392f58ae021592881962bc3ceb91e07",
    ),
    "null lists": (
        {"DailyPriceStock": None, "ProductSeats": None},
        "6ae4524b3c708f81be2a3fb2325eb7374392f58ae021592881962bc3ceb91e07",
    ),
    "money forms": (
        {
            "DailyPriceStock": [
                rule(3, "2026-06-01", None, Decimal("12"), sale=Decimal("12.5"), market=12),
                rule(1, "2026-07-02", "2026-07-04", Decimal("12.50"), sale="0.1", stock=0),
                rule(2, "2026-07-03", None, Decimal("9999999999.99"), sale=Decimal("-0.50")),
                rule(2, "2026-07-05", "", Decimal("1E+1"), sale=Decimal("1.000"), booking=2),
                rule(2, "2026-07-06", "2026-07-06", Decimal("0.00"), sale=Decimal("-0"), stock=-3),
                rule(1, "2026-07-08", None, "5.05"),  # a range without an end covers nothing
            ]
        },
        "de912f724241ceded7e7c0fbb31fd8993506f662bee6d2eda9fa53586cff6995",
    ),
    "sessions and unicode": (
        {
            "DailyPriceStock": [
                rule(
                    1,
                    "2026-07-01",
                    "2026-07-10",
                    Decimal("88.80"),
                    stock=2147483647,
                    seats=[seat("2026-07-02", "夜场-01"), seat("2026-07-02", 'S"q\\uote')],
                ),
            ],
            "ProductSeats": [
                seat("2026-07-01", "S1-20260701-01", num=0),
                seat("2026-07-01", "S1-20260701-02", "13:00", "14:30", -1),
                seat("2026-06-30", "before the window"),
                seat("2026-07-20", "after the window"),
                seat("2026-07-02", "夜场-01", "20:00", "21:00"),  # the same code and day: once
                seat("2026-07-03", "tab\tand é", "", "", 12),
                seat("2026-07-04", 42),
            ],
        },
        "7b0a5174917707d9485ea6d9954232fd56c24b2b8900c06bba32b24ff1450fab",
    ),
    "camel case, .NET dates": (
        {
            "dailyPriceStock": [
                {
                    "priceType": 3,
                    "beginTime": "2026/6/3 0:00:00",
                    "endTime": "2026-12-31T00:00:00",
                    "price": Decimal("100"),
                    "salePrice": Decimal("120.00"),
                    "marketPrice": Decimal("150.0"),
                    "dailyStock": -1,
                },
                {
                    "priceType": 1,
                    "beginTime": "2026-07-03 00:00:00",
                    "endTime": "2026/7/5 0:00:00",
                    "price": "110.10",
                    "salePrice": 130,
                    "marketPrice": "160",
                    "dailyStock": "7",
                    "bookingDay": "2",
                },
            ],
            "productSeats": [seat("2026/7/4 0:00:00", "A")],
        },
        "3a664ffd2467c99fed2dde9f7c870613e7473bb390c24a939ce53cbdb47bfddc",
    ),
}


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_content_hash_is_pinned(name: str) -> None:
    payload, expected = CALENDARS[name]
    calendar = PriceCalendar.model_validate(payload)
    content = price_content(calendar, D, D + timedelta(days=9), T)
    assert content.content_hash == _reference_hash(calendar, D, D + timedelta(days=9))
    assert content.content_hash == expected


money = st.one_of(
    st.integers(min_value=1 - 10**12, max_value=10**12 - 1).map(lambda n: Decimal(n).scaleb(-2)),
    st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False),
    st.sampled_from(
        [Decimal("12"), Decimal("12.5"), Decimal("12.50"), Decimal("0.1"), Decimal("1E+1"),
         Decimal("-0"), Decimal("1.000"), Decimal("9999999999.99"), 7, "3.30", "-1"]
    ),
)  # fmt: skip
days = st.integers(min_value=-40, max_value=80).map(lambda n: D + timedelta(days=n))
text = st.text(max_size=8)


@st.composite
def payload_rules(draw: st.DrawFn) -> dict[str, Any]:
    begin = draw(days)
    end = draw(st.one_of(st.none(), st.just(""), days.filter(lambda d: d >= begin)))
    return {
        "PriceType": draw(st.sampled_from((1, 2, 3))),
        "BeginTime": begin.isoformat(),
        "EndTime": end.isoformat() if isinstance(end, date) else end,
        "Price": draw(money),
        "SalePrice": draw(money),
        "MarketPrice": draw(money),
        "DailyStock": draw(st.integers(min_value=-3, max_value=2**31 - 1)),
        "BookingDay": draw(st.integers(min_value=0, max_value=5)),
    }


@st.composite
def payload_seats(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "Time": draw(days).isoformat(),
        "SeatsStartTime": draw(text),
        "SeatsEndTime": draw(text),
        "SeatsCode": draw(st.one_of(text, st.integers(min_value=0, max_value=10**6))),
        "SeatsNum": draw(st.integers(min_value=-2, max_value=2**31 - 1)),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(payload_rules(), max_size=8),
    seats=st.lists(payload_seats(), max_size=8),
    first=days,
    length=st.integers(min_value=1, max_value=70),
)
def test_content_hash_agrees_with_the_first_implementation(
    rules: list[dict[str, Any]], seats: list[dict[str, Any]], first: date, length: int
) -> None:
    with negatives_read_as_zero():
        calendar = PriceCalendar.model_validate({"DailyPriceStock": rules, "ProductSeats": seats})
    last = first + timedelta(days=length - 1)
    assert price_content(calendar, first, last, T).content_hash == _reference_hash(
        calendar, first, last
    )
